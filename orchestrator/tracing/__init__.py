"""Tracing: every run recorded as a tree of spans in one local SQLite file, optionally sent
over OTLP too (docs/tracing.md).

    import orchestrator.tracing

    orchestrator.tracing.enable()            # $ORCHESTRATOR_HOME/traces.sqlite
    with orchestrator.tracing.run("nightly-report"):
        chain.invoke(...)                     # one run, whatever it calls

Off by default in Python; on by default for the CLI and the server (``--no-trace``,
``ORCHESTRATOR_TRACE=0``). ``TraceStore`` reads what was recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.lazy import lazy_getattr

_LAZY = {
    "enable": "orchestrator.tracing.session",
    "disable": "orchestrator.tracing.session",
    "tracing": "orchestrator.tracing.session",
    "is_enabled": "orchestrator.tracing.session",
    "flush": "orchestrator.tracing.session",
    "settings": "orchestrator.tracing.session",
    "store_path": "orchestrator.tracing.schema",
    "run": "orchestrator.tracing.runs",
    "current": "orchestrator.tracing.runs",
    "annotate": "orchestrator.tracing.runs",
    "record_error": "orchestrator.tracing.runs",
    "RunHandle": "orchestrator.tracing.runs",
    "TraceStore": "orchestrator.tracing.store",
    "RunFilter": "orchestrator.tracing.store",
    "RunSummary": "orchestrator.tracing.store",
    "SpanView": "orchestrator.tracing.store",
    "SearchHit": "orchestrator.tracing.store",
    "parse_time": "orchestrator.tracing.store",
    "export_rows": "orchestrator.tracing.export",
    "command_tracing": "orchestrator.tracing.entry",
}

if TYPE_CHECKING:
    from orchestrator.tracing.entry import command_tracing
    from orchestrator.tracing.export import export_rows
    from orchestrator.tracing.runs import RunHandle, annotate, current, record_error, run
    from orchestrator.tracing.schema import store_path
    from orchestrator.tracing.session import (
        disable,
        enable,
        flush,
        is_enabled,
        settings,
        tracing,
    )
    from orchestrator.tracing.store import (
        RunFilter,
        RunSummary,
        SearchHit,
        SpanView,
        TraceStore,
        parse_time,
    )

__getattr__ = lazy_getattr("orchestrator.tracing", _LAZY)

__all__ = [
    "RunFilter",
    "RunHandle",
    "RunSummary",
    "SearchHit",
    "SpanView",
    "TraceStore",
    "annotate",
    "command_tracing",
    "current",
    "disable",
    "enable",
    "export_rows",
    "flush",
    "is_enabled",
    "parse_time",
    "record_error",
    "run",
    "settings",
    "store_path",
    "tracing",
]
