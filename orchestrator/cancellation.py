"""Cancellation: stop a generation, a chain or an agent once its caller no longer waits.

One :class:`CancellationToken` per piece of work (a server request, an ``astream`` consumer).
Whoever waits for the work calls :meth:`~CancellationToken.cancel` when it stops waiting;
the work runs inside :func:`cancellation_scope` and stops at its next checkpoint by raising
:class:`GenerationCancelled`:

- every token: the llama.cpp engine checks before it samples the next one (and between the
  chunks of a prompt it reads), so a model call inside a non-streamed ``invoke`` stops
  mid-answer and frees the model at once;
- every step: the token is a LangChain callback handler that raises when a chain, a model
  call, a tool or a retriever starts. The scope installs it with LangChain's configure hook
  (the mechanism of ``tracing_v2_enabled``), so every run inside the scope gets it, a user's
  own runnables included, even one that does not pass its ``config`` on. It does not raise on
  a model's new token: the engine, which stops itself, releases the model at once, whereas
  an exception raised around a suspended engine stream would leave the model held until the
  stream is collected (a model that is not ours, a remote one, stops at its next step).

Why a context variable rather than an argument: the check has to reach the engine's token loop
through LangChain's ``invoke`` / ``stream``, whose signatures cannot carry it, and LangChain's
worker threads (``RunnableParallel``, ``batch``) copy context variables, so the scope follows
the work wherever LangChain runs it.

:class:`GenerationCancelled` derives from ``BaseException``, like ``asyncio.CancelledError``:
``except Exception`` (a tool failing into an observation, ``with_retry``, ``with_fallbacks``)
does not swallow it, so it travels up to the caller, releasing the model and every lock on
the way. (Closing a LangChain stream is no substitute: a sequence drains the input of a
closed step for its trace, which runs the model upstream to the end.)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook


class GenerationCancelled(BaseException):
    """The caller stopped waiting (a client went away), so the work stopped at a checkpoint.

    ``usage``: the token accounting of the model call it stopped (the engine's ``Usage``,
    with the tokens generated so far), or ``None`` when it stopped between calls."""

    def __init__(self, usage: Any = None) -> None:
        super().__init__("the caller stopped waiting, so the generation was cancelled")
        self.usage = usage


class CancellationToken(BaseCallbackHandler):
    """Set once the caller stopped waiting; a child token is also set when its parent is.

    As a LangChain callback handler it raises :class:`GenerationCancelled` when a chain, a
    model call, a tool or a retriever starts (``raise_error``: the exception is not logged
    and dropped)."""

    raise_error = True
    run_inline = True

    def __init__(self, parent: CancellationToken | None = None) -> None:
        super().__init__()
        self._event = threading.Event()
        self._parent = parent

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or (self._parent is not None and self._parent.cancelled)

    def raise_if_cancelled(self, usage: Any = None) -> None:
        if self.cancelled:
            raise GenerationCancelled(usage)

    def _checkpoint(self, *args: Any, **kwargs: Any) -> None:
        self.raise_if_cancelled()

    on_chain_start = _checkpoint
    on_llm_start = _checkpoint
    on_chat_model_start = _checkpoint
    on_tool_start = _checkpoint
    on_retriever_start = _checkpoint
    on_agent_action = _checkpoint


_active: ContextVar[CancellationToken | None] = ContextVar(
    "orchestrator_cancellation", default=None
)
register_configure_hook(_active, inheritable=True)


def current_cancellation() -> CancellationToken | None:
    """The token of the innermost :func:`cancellation_scope`, if any."""
    return _active.get()


@contextlib.contextmanager
def cancellation_scope(token: CancellationToken) -> Iterator[CancellationToken]:
    """Run the body so that ``token`` stops it: the engine checks it at every token, and every
    LangChain run started inside gets it as a callback handler."""
    reset = _active.set(token)
    try:
        yield token
    finally:
        _active.reset(reset)


def raise_if_cancelled(usage: Any = None) -> None:
    """A checkpoint: raise :class:`GenerationCancelled` if the current scope was cancelled."""
    token = _active.get()
    if token is not None:
        token.raise_if_cancelled(usage)
