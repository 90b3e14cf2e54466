"""Open runs: ``with orchestrator.tracing.run("my-job"):`` makes everything traced inside
(in this thread or task, and in the threads and tasks that copy its context) one run.

The CLI opens one per command, the server one per request, the MCP server one per tool call.
A run opened inside another is a span of it. Without tracing enabled, a run costs nothing.
A ``lazy`` run (the CLI's) is recorded only once something in it is traced or it fails, so
``--help`` or a usage error leaves no empty run behind; it still starts when the block did.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from orchestrator.tracing import attributes as attrs
from orchestrator.tracing import names


@dataclass
class Active:
    """What :func:`orchestrator.tracing.enable` set up: the tracer and what to leave out."""

    tracer: trace.Tracer
    privacy: attrs.Privacy


#: The tracing in force (set by ``enable``, cleared by ``disable``).
active: Active | None = None


class OpenRun:
    """A run (or a span of one) opened by :func:`run`; its span starts now, or, when lazy,
    the first time something asks for it (with the block's start time)."""

    def __init__(
        self, state: Active, name: str, found: dict[str, Any], parent: OpenRun | None
    ) -> None:
        self.state, self.name, self.attributes, self.parent = state, name, found, parent
        self.started = time.time_ns()
        self.span: Span | None = None
        self._lock = threading.Lock()

    def start(self) -> Span:
        with self._lock:
            if self.span is None:
                context = Context()
                if self.parent is not None:
                    context = trace.set_span_in_context(self.parent.start(), context)
                self.span = self.state.tracer.start_span(
                    self.name, context, attributes=self.attributes, start_time=self.started
                )
            return self.span

    def set(self, found: dict[str, Any]) -> None:
        with self._lock:
            if self.span is None:
                self.attributes.update(found)
                return
        if self.span.is_recording():
            self.span.set_attributes(found)


_OPEN: ContextVar[OpenRun | None] = ContextVar("orchestrator_tracing_run", default=None)


def open_run_context() -> tuple[Context, bool]:
    """The context a parentless LangChain run starts in, and whether it is a run's root."""
    opened = _OPEN.get()
    if opened is None or active is None or opened.state is not active:
        return Context(), True
    return trace.set_span_in_context(opened.start(), Context()), False


class RunHandle:
    """The open run (or span) of a ``with run(...)`` block; does nothing when not recording."""

    def __init__(self, opened: OpenRun | None) -> None:
        self.opened = opened
        self.privacy = opened.state.privacy if opened is not None else attrs.Privacy()

    @property
    def run_id(self) -> str | None:
        """The run's id as ``logs show`` takes it (``None`` when not recorded)."""
        span = self.opened.span if self.opened is not None else None
        context = span.get_span_context() if span is not None else None
        if context is None or not context.trace_flags.sampled:
            return None
        return format(context.trace_id, "032x")

    @property
    def failed(self) -> bool:
        """Whether the run is already marked failed (by whoever marked it)."""
        status = getattr(self.opened.span if self.opened else None, "status", None)
        return status is not None and status.status_code is StatusCode.ERROR

    def update(
        self,
        *,
        pipeline: str | None = None,
        model: str | None = None,
        session: str | None = None,
        input: Any = None,
        output: Any = None,
        **attributes: Any,
    ) -> None:
        """Name what the run is (pipeline, model, session), what it was asked and answered,
        and any other attributes (OpenTelemetry primitives)."""
        if self.opened is None:
            return
        found = dict(attributes)
        for key, value in ((names.PIPELINE, pipeline), (names.RUN_MODEL, model),
                           (names.CONVERSATION, session)):  # fmt: skip
            if value is not None:
                found[key] = str(value)
        if input is not None and not self.privacy.hide_inputs:
            found[names.INPUT] = attrs.dumps(input)
        if output is not None and not self.privacy.hide_outputs:
            found[names.OUTPUT] = attrs.dumps(output)
        self.opened.set(found)

    def fail(self, error: BaseException | str, fix: str | None = None) -> None:
        """Mark the run failed: an exception (its ``fix`` kept), or a message and fix."""
        if self.opened is None:
            return
        span = self.opened.start()
        if not span.is_recording():
            return
        found = attrs.error(error) if isinstance(error, BaseException) else {
            names.ERROR_TYPE: "error", names.ERROR_MESSAGE: error}  # fmt: skip
        if fix:
            found[names.ERROR_FIX] = fix
        span.set_attributes(found)
        span.set_status(Status(StatusCode.ERROR, found[names.ERROR_MESSAGE]))


def exit_failure(exc: BaseException | None) -> BaseException | None:
    """The exception that failed a block, ``None`` for none or a clean exit (status 0)."""
    if isinstance(exc, SystemExit):
        code: Any = exc.code
    elif type(exc).__name__ == "Exit":  # click's (typer's) Exit, without importing click
        code = getattr(exc, "exit_code", 1)
    else:
        return exc
    return None if code in (0, None) else exc


def _failed_by(handle: RunHandle, exc: BaseException | None) -> None:
    """Mark the run failed by ``exc`` unless it is not a failure, the run is marked already, or
    a CLI's own exit (a usage error) ends a lazy run before anything in it started."""
    opened = handle.opened
    if exit_failure(exc) is None or handle.failed or opened is None:
        return
    if opened.span is None and hasattr(exc, "exit_code"):
        return
    assert exc is not None
    handle.fail(exc)


@contextlib.contextmanager
def run(
    command: str,
    *,
    name: str | None = None,
    pipeline: str | None = None,
    session: str | None = None,
    kind: str = names.RUN,
    attributes: dict[str, Any] | None = None,
    lazy: bool = False,
) -> Iterator[RunHandle]:
    """Open a run labelled ``command`` (``logs --command``) named ``name`` (default: the
    command), or a span of the run already open here. An exception leaving the block marks it
    failed (with the error's ``fix``), as does one being handled when it closes (a CLI that
    exits with a non-zero status)."""
    state, parent = active, _OPEN.get()
    if state is None:
        yield RunHandle(None)
        return
    parent = parent if parent is not None and parent.state is state else None
    found: dict[str, Any] = {names.KIND: kind, **(attributes or {})}
    if parent is None:
        found |= {names.COMMAND: command, **state.privacy.hidden()}
    for key, value in ((names.PIPELINE, pipeline), (names.CONVERSATION, session)):
        if value is not None:
            found[key] = str(value)
    opened = OpenRun(state, name or command, found, parent)
    if not lazy:
        opened.start()
    handle = RunHandle(opened)
    token = _OPEN.set(opened)
    try:
        yield handle
    except BaseException as exc:
        _failed_by(handle, exc)
        raise
    finally:
        with contextlib.suppress(ValueError):  # closed in another context than it opened in
            _OPEN.reset(token)
        _failed_by(handle, sys.exc_info()[1])
        if opened.span is not None:
            opened.span.end()


def current() -> RunHandle:
    """The run open in this context (a handle that does nothing when there is none)."""
    opened = _OPEN.get()
    return RunHandle(opened if opened is not None and opened.state is active else None)


def annotate(**fields: Any) -> None:
    """:meth:`RunHandle.update` on the run open here, if any."""
    current().update(**fields)


def record_error(error: BaseException) -> None:
    """Mark the run open here failed with ``error`` (its ``fix`` kept), if there is one."""
    current().fail(error)
