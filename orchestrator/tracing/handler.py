"""LangChain callbacks as OpenTelemetry spans: every chain, model call, retriever and tool a
runnable starts becomes a span, its parent the span of LangChain's ``parent_run_id``.

A run without a parent is the child of the run opened by :func:`orchestrator.tracing.run`
(the CLI command, the server request, the MCP tool call) when there is one in this context,
else the root of a new run. Runs in other threads and tasks never mix: LangChain's run ids
name each parent, and the open run lives in a context variable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from orchestrator.tracing import attributes as attrs
from orchestrator.tracing import names
from orchestrator.tracing.runs import open_run_context

Attributes = dict[str, Any]


class _Open:
    """A span in flight, with when it started and when its first token came."""

    __slots__ = ("first_token", "kind", "span", "started")

    def __init__(self, span: Span, kind: str) -> None:
        self.span, self.kind, self.started = span, kind, time.monotonic()
        self.first_token: float | None = None


def component_name(serialized: dict[str, Any] | None, default: str = "") -> str:
    """The class LangChain serialized a run's component as (its name, else its id's last)."""
    found = serialized or {}
    ids = found.get("id")
    return str(found.get("name") or (ids[-1] if isinstance(ids, list) and ids else default))


def chain_kind(name: str, run_type: str | None) -> str:
    """agent, agent_step, eval_item, prompt, parser or chain, from the run's name and type."""
    if run_type in ("prompt", "parser"):
        return run_type
    lowered = name.lower()
    for prefix, kind in (("agent step", "agent_step"), ("eval item", "eval_item")):
        if lowered.startswith(prefix):
            return kind
    return "agent" if "agent" in lowered and "step" not in lowered else "chain"


class TraceHandler(BaseCallbackHandler):
    """Records LangChain runs through ``tracer``; ``privacy`` says what to leave out;
    ``command`` labels runs that start outside any open run (``None``: ``python``)."""

    run_inline = True  # called in the caller's thread and context, in order
    raise_error = False  # a recording failure is logged by LangChain, never raised

    def __init__(
        self, tracer: trace.Tracer, privacy: attrs.Privacy, command: str | None = None
    ) -> None:
        self.tracer, self.privacy, self.command = tracer, privacy, command or "python"
        self._open: dict[UUID, _Open] = {}

    def _start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        name: str,
        kind: str,
        make: Callable[[], Attributes],
    ) -> None:
        parent = self._open.get(parent_run_id) if parent_run_id is not None else None
        if parent is not None:
            span = self.tracer.start_span(name, trace.set_span_in_context(parent.span))
            if span.is_recording():
                span.set_attributes({names.KIND: kind, **make()})
        else:
            context, is_root = open_run_context()
            if is_root and kind in ("prompt", "parser"):
                return  # formatting a prompt on its own is not a run worth keeping
            extra = {names.COMMAND: self.command, **self.privacy.hidden()} if is_root else {}
            span = self.tracer.start_span(
                name, context, attributes={names.KIND: kind, **extra, **make()}
            )
        self._open[run_id] = _Open(span, kind)

    def _end(self, run_id: UUID, make: Callable[[_Open], Attributes] | None = None) -> None:
        entry = self._open.pop(run_id, None)
        if entry is None:
            return
        if make is not None and entry.span.is_recording():
            entry.span.set_attributes({k: v for k, v in make(entry).items() if v is not None})
        entry.span.end()

    def _fail(self, run_id: UUID, error: BaseException) -> None:
        entry = self._open.get(run_id)
        if entry is not None and entry.span.is_recording():
            found = attrs.error(error)
            entry.span.set_attributes(found)
            entry.span.set_status(Status(StatusCode.ERROR, found[names.ERROR_MESSAGE]))
        self._end(run_id)

    def _io(self, key: str, value: Any) -> Attributes:
        hidden = self.privacy.hide_inputs if key == names.INPUT else self.privacy.hide_outputs
        return {} if hidden else {key: attrs.dumps(value, attrs.CHAIN_TEXT_LIMIT)}

    # chains and runnables --------------------------------------------------------------
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = kwargs.get("name") or (serialized or {}).get("name") or "chain"
        kind = chain_kind(name, kwargs.get("run_type"))

        def make() -> Attributes:
            found: Attributes = {names.COMPONENT: name, **attrs.session_of(metadata)}
            if kind == "agent":
                found |= {names.OPERATION: names.AGENT, names.AGENT_NAME: name}
            if kind not in ("prompt", "parser") and not kwargs.get("defers_inputs"):
                found |= self._io(names.INPUT, inputs)
            return found

        self._start(run_id, parent_run_id, name, kind, make)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        def make(entry: _Open) -> Attributes:
            if entry.kind in ("prompt", "parser"):
                return {}
            found = self._io(names.OUTPUT, outputs)
            if "inputs" in kwargs:  # a stream's input, known only once it was read
                found |= self._io(names.INPUT, kwargs["inputs"])
            return found

        self._end(run_id, make)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._fail(run_id, error)

    # model calls -----------------------------------------------------------------------
    def _model_start(
        self, run_id: UUID, parent_run_id: UUID | None, operation: str, prompt: list[Any],
        kwargs: dict[str, Any],
    ) -> None:  # fmt: skip
        metadata = kwargs.get("metadata")
        request = attrs.model_request(kwargs.get("invocation_params"), metadata)
        label = request.get(names.REQUEST_MODEL) or kwargs.get("name") or "model"

        def make() -> Attributes:
            found = {names.OPERATION: operation, names.COMPONENT: kwargs.get("name") or "",
                     **request, **attrs.session_of(metadata)}  # fmt: skip
            if not self.privacy.hide_inputs:
                found[names.INPUT_MESSAGES] = attrs.dumps(prompt)
            return found

        self._start(run_id, parent_run_id, f"{operation} {label}", "llm", make)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs["name"] = kwargs.get("name") or component_name(serialized)
        self._model_start(
            run_id, parent_run_id, names.CHAT, messages[0] if messages else [], kwargs
        )

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs["name"] = kwargs.get("name") or component_name(serialized)
        turns = [{"role": "user", "parts": [{"type": "text", "content": p}]} for p in prompts[:1]]
        self._model_start(run_id, parent_run_id, names.COMPLETION, turns, kwargs)

    def on_llm_new_token(
        self, token: str | list[str | dict[str, Any]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        entry = self._open.get(run_id)
        if entry is not None and entry.first_token is None:
            entry.first_token = time.monotonic()

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        def make(entry: _Open) -> Attributes:
            found = attrs.usage(response)
            if entry.first_token is not None:
                found[names.TIME_TO_FIRST_TOKEN] = round(entry.first_token - entry.started, 6)
            if not self.privacy.hide_outputs:
                found[names.OUTPUT_MESSAGES] = attrs.reply(response)
            return found

        self._end(run_id, make)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._fail(run_id, error)

    # tools -----------------------------------------------------------------------------
    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = kwargs.get("name") or (serialized or {}).get("name") or "tool"

        def make() -> Attributes:
            found: Attributes = {names.OPERATION: names.TOOL, names.TOOL_NAME: name}
            if not self.privacy.hide_inputs:
                found[names.TOOL_ARGUMENTS] = attrs.dumps(
                    inputs if inputs is not None else input_str
                )
            return found

        self._start(run_id, parent_run_id, f"{names.TOOL} {name}", "tool", make)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        content = getattr(output, "content", output)
        text = content if isinstance(content, str) else attrs.dumps(content)
        self._end(run_id, lambda _e: {} if self.privacy.hide_outputs else {names.TOOL_RESULT: text})

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._fail(run_id, error)

    # retrievers ------------------------------------------------------------------------
    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = kwargs.get("name") or (serialized or {}).get("name") or "retriever"

        def make() -> Attributes:
            found: Attributes = {names.OPERATION: names.RETRIEVAL, names.COMPONENT: name}
            meta = metadata or {}
            if meta.get("ls_retriever_name"):
                found[names.RETRIEVER] = str(meta["ls_retriever_name"])
            for key in attrs.RETRIEVAL_KEYS:
                if isinstance(meta.get(key), str | int | float):
                    found[f"orchestrator.retrieval.{key}"] = meta[key]
            if not self.privacy.hide_inputs:
                found[names.QUERY] = query
            return found

        self._start(run_id, parent_run_id, f"{names.RETRIEVAL} {name}", "retriever", make)

    def on_retriever_end(
        self, documents: Sequence[Document], *, run_id: UUID, **kwargs: Any
    ) -> None:
        self._end(run_id, lambda _e: attrs.documents(documents, self.privacy.hide_outputs))

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._fail(run_id, error)
