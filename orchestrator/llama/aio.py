"""Async streaming without deadlocks: one whole generation runs in one worker thread.

LangChain's default ``astream`` fetches each chunk with a separate ``run_in_executor(next)``.
Our stream holds the engine lock from its first chunk to its last, so with more concurrent
streams than executor threads, the stream holding the lock could wait forever for a thread
to produce its next chunk. Here the producer thread runs the generator to the end and hands
chunks to the event loop through a queue.

A consumer that stops early (``break``, ``aclose``, a cancelled task) cancels the run's
:class:`~orchestrator.cancellation.CancellationToken`: the producer runs inside its scope, so
the model stops at its next token and a chain at its next step, even in the middle of a step
that yields nothing (a non-streamed ``invoke``). Closing the iterator alone would not do:
LangChain drains a closed sequence's input for tracing, running its model to the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from orchestrator.cancellation import (
    CancellationToken,
    cancellation_scope,
    current_cancellation,
)

T = TypeVar("T")
_DONE = object()


async def iterate_in_thread(
    make_iter: Callable[[], Iterator[T]], cancel: CancellationToken | None = None
) -> AsyncIterator[T]:
    """Yield the items of ``make_iter()``, produced in a worker thread (in a copy of the
    caller's context, as ``asyncio.to_thread`` runs a function).

    ``cancel``: the token that stops the run (its own, child of the caller's, by default).
    Stopping early cancels it, and the run stops at its next token or step; the consumer
    leaves only once the producer has stopped (unless it is cancelled again meanwhile).
    A run cancelled by the token while the consumer still listens raises
    :class:`~orchestrator.cancellation.GenerationCancelled` here."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue()
    stop = threading.Event()
    token = cancel if cancel is not None else CancellationToken(parent=current_cancellation())

    def put(item: Any, error: BaseException | None = None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed under us: nobody listens
            loop.call_soon_threadsafe(queue.put_nowait, (item, error))

    def produce() -> None:
        try:
            with cancellation_scope(token):
                iterator = make_iter()
                try:
                    for item in iterator:
                        if stop.is_set():
                            break
                        put(item)
                finally:
                    close = getattr(iterator, "close", None)
                    if close is not None:
                        close()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            # nobody listens once the consumer left: drop the error (and with it the frames
            # its traceback holds) here
            put(_DONE, None if stop.is_set() else exc)
            return
        put(_DONE)

    done = loop.run_in_executor(None, contextvars.copy_context().run, produce)
    finished = False
    try:
        while True:
            item, error = await queue.get()
            if item is _DONE:
                finished = True
                if error is not None:
                    try:
                        raise error
                    finally:  # no cycle (this frame -> error -> its traceback -> this frame)
                        del error  # that would keep the frames it passed through alive
                return
            yield item
    finally:
        if not finished:
            token.cancel()
        stop.set()
        await asyncio.shield(done)


async def relay_chunks(make_iter: Callable[[], Iterator[T]], run_manager: Any) -> AsyncIterator[T]:
    """:func:`iterate_in_thread` for a model's ``_astream``: each chunk with text is also
    reported to the async callbacks, as the sync path reports it to the sync ones."""
    async for chunk in iterate_in_thread(make_iter):
        text = getattr(chunk, "text", "")
        if run_manager and text:
            await run_manager.on_llm_new_token(text, chunk=chunk)
        yield chunk
