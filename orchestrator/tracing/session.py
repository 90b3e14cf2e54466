"""Turning tracing on and off for the whole process.

:func:`enable` builds an OpenTelemetry ``TracerProvider`` of our own (never the global one,
so a program's own OpenTelemetry setup is left alone; no exporter is configured from the
environment, and no resource detector runs) with the store's processor, plus an OTLP/HTTP
exporter when ``otlp=`` or ``$OTEL_EXPORTER_OTLP_ENDPOINT`` names a collector. It registers
one LangChain callback handler through ``register_configure_hook``, so every Runnable called
anywhere in the process is traced without passing callbacks around.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, cast

from langchain_core.tracers.context import register_configure_hook
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from orchestrator.errors import OptionError
from orchestrator.tracing import runs
from orchestrator.tracing.attributes import Privacy
from orchestrator.tracing.handler import TraceHandler
from orchestrator.tracing.retention import Retention
from orchestrator.tracing.schema import store_path
from orchestrator.tracing.writer import StoreProcessor

OTLP_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTLP_TRACES_ENV = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
TRACES_PATH = "/v1/traces"


class _Hook:
    """What LangChain's configure hook reads (it calls ``.get()``, as on a ContextVar): the
    process-wide handler while tracing is on, else ``None`` (then nothing is added)."""

    handler: TraceHandler | None = None

    def get(self) -> TraceHandler | None:
        return self.handler


_HOOK = _Hook()
_lock = threading.RLock()
_state: dict[str, Any] = {"provider": None, "settings": None, "registered": False}


def otlp_endpoint(url: str | None = None) -> str | None:
    """Where OTLP/HTTP spans go: ``url`` (a collector's base URL, or its ``/v1/traces``), else
    ``$OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` as written, else ``$OTEL_EXPORTER_OTLP_ENDPOINT``
    plus ``/v1/traces``; ``None``: nowhere (nothing leaves the machine)."""
    if not url:
        signal = os.environ.get(OTLP_TRACES_ENV, "").strip()
        if signal:
            return signal
        url = os.environ.get(OTLP_ENV, "").strip() or None
    if url is None:
        return None
    if not url.startswith(("http://", "https://")):
        raise OptionError(
            f"the OTLP endpoint {url!r} is not an http(s) URL",
            fix="e.g. --otlp http://127.0.0.1:4318 (an OTLP/HTTP collector)",
        )
    return url if url.rstrip("/").endswith(TRACES_PATH) else url.rstrip("/") + TRACES_PATH


def otlp_processor(endpoint: str) -> SpanProcessor:
    """Spans batched to an OTLP/HTTP collector (the ``otlp`` extra)."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from orchestrator.extras import require

    module = require(
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        extra="otlp",
        purpose="sending traces over OTLP (--otlp)",
    )
    return BatchSpanProcessor(module.OTLPSpanExporter(endpoint=endpoint, timeout=5))


def enable(
    path: str | os.PathLike[str] | None = None,
    *,
    hide_inputs: bool = False,
    hide_outputs: bool = False,
    sample_rate: float = 1.0,
    max_age_days: float | None = None,
    max_bytes: int | None = None,
    otlp: str | None = None,
    command: str | None = None,
) -> Path:
    """Record every run of this process in the store at ``path`` (default
    ``$ORCHESTRATOR_HOME/traces.sqlite``); returns its path. ``hide_inputs`` / ``hide_outputs``
    leave prompts, questions, tool arguments / answers, documents, tool results out;
    ``sample_rate`` keeps that share of runs (whole); runs older than ``max_age_days`` or
    beyond ``max_bytes`` are pruned, oldest first. ``otlp``: also send spans to this OTLP/HTTP
    collector (default ``$OTEL_EXPORTER_OTLP_ENDPOINT``). ``command`` labels runs that start
    outside an open run (default ``python``). Enabling again replaces the settings."""
    if not 0.0 <= sample_rate <= 1.0:
        raise OptionError(f"sample_rate={sample_rate} is not a share", fix="pass 0.0 to 1.0")
    file = store_path(path)
    retention = Retention(max_age_days, max_bytes)
    endpoint = otlp_endpoint(otlp)
    with _lock:
        _stop()
        provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(sample_rate)),
            resource=Resource({"service.name": "orchestrator"}),
            shutdown_on_exit=False,
        )
        provider.add_span_processor(StoreProcessor(file, retention))
        if endpoint is not None:
            provider.add_span_processor(otlp_processor(endpoint))
        privacy = Privacy(hide_inputs, hide_outputs)
        tracer = provider.get_tracer("orchestrator.tracing")
        runs.active = runs.Active(tracer, privacy)
        _HOOK.handler = TraceHandler(tracer, privacy, command)
        _state.update(provider=provider, settings={
            "path": file, "hide_inputs": hide_inputs, "hide_outputs": hide_outputs,
            "sample_rate": sample_rate, "max_age_days": max_age_days, "max_bytes": max_bytes,
            "otlp": endpoint, "command": command})  # fmt: skip
        if not _state["registered"]:
            hook = cast("ContextVar[Any]", _HOOK)
            register_configure_hook(hook, inheritable=True)
            atexit.register(disable)
            _state["registered"] = True
    return file


def _stop() -> None:
    runs.active = None
    _HOOK.handler = None
    provider, _state["provider"], _state["settings"] = _state["provider"], None, None
    if provider is not None:
        provider.shutdown()  # writes what is queued, then stops the writer


def disable() -> None:
    """Stop recording; what was recorded is written first."""
    with _lock:
        _stop()


def is_enabled() -> bool:
    return runs.active is not None


def settings() -> dict[str, Any] | None:
    """The settings in force (``None`` when tracing is off)."""
    found = _state["settings"]
    return dict(found) if found is not None else None


def flush(timeout: float = 30.0) -> bool:
    """Wait until everything recorded so far is in the store (and sent, with OTLP)."""
    provider = _state["provider"]
    return True if provider is None else bool(provider.force_flush(int(timeout * 1000)))


@contextlib.contextmanager
def tracing(path: str | os.PathLike[str] | None = None, **options: Any) -> Iterator[Path]:
    """:func:`enable` for the block, then back to what was in force before it (process-wide,
    like ``enable``: threads started inside are traced too)."""
    before = settings()
    file = enable(path, **options)
    try:
        yield file
    finally:
        if before is None:
            disable()
        else:
            enable(**before)
