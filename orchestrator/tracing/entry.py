"""Tracing for the command line and the servers: on by default, off with ``--no-trace`` or
``ORCHESTRATOR_TRACE=0``. Which commands record runs, and how, is decided here (the shell
only passes its options)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from orchestrator.errors import DataError, OptionError
from orchestrator.tracing.runs import run
from orchestrator.tracing.session import disable, enable

TRACE_ENV = "ORCHESTRATOR_TRACE"
HIDE_ENV = "ORCHESTRATOR_TRACE_HIDE"
SAMPLE_ENV = "ORCHESTRATOR_TRACE_SAMPLE"
MAX_DAYS_ENV = "ORCHESTRATOR_TRACE_MAX_DAYS"
MAX_BYTES_ENV = "ORCHESTRATOR_TRACE_MAX_BYTES"
#: What the command line's store may take by default (``$ORCHESTRATOR_TRACE_MAX_BYTES``).
DEFAULT_MAX_BYTES = 1 << 30
_OFF = ("0", "false", "no", "off")

#: The commands that record runs. True: the whole command is one run, named after it;
#: False: each chat turn, server request or MCP tool call is a run (the server and the MCP
#: server open them), labelled with the command.
COMMAND_RUNS = {
    "ask": True,
    "rag": True,
    "agent": True,
    "eval": True,
    "story": True,
    "chat": False,
    "serve": False,
    "mcp": False,
}


def wanted(no_trace: bool = False) -> bool:
    """Whether the command line traces: not with ``--no-trace`` nor ``ORCHESTRATOR_TRACE=0``."""
    return not no_trace and os.environ.get(TRACE_ENV, "1").strip().lower() not in _OFF


def _number(name: str, kind: Callable[[str], Any]) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise OptionError(f"{name}={raw!r} is not a number", fix=f"e.g. {name}=30") from None


def env_settings() -> dict[str, Any]:
    """The command line's privacy, sampling and retention settings from the environment:
    ``ORCHESTRATOR_TRACE_HIDE=inputs,outputs``, ``ORCHESTRATOR_TRACE_SAMPLE=0.1``,
    ``ORCHESTRATOR_TRACE_MAX_DAYS=30``, ``ORCHESTRATOR_TRACE_MAX_BYTES`` (default 1 GiB)."""
    hide = {h.strip() for h in os.environ.get(HIDE_ENV, "").split(",") if h.strip()}
    unknown = hide - {"inputs", "outputs"}
    if unknown:
        raise OptionError(
            f"{HIDE_ENV} names {', '.join(sorted(unknown))}", fix=f"{HIDE_ENV}=inputs,outputs"
        )
    sample = _number(SAMPLE_ENV, float)
    max_bytes = _number(MAX_BYTES_ENV, int)
    return {
        "hide_inputs": "inputs" in hide,
        "hide_outputs": "outputs" in hide,
        "sample_rate": 1.0 if sample is None else sample,
        "max_age_days": _number(MAX_DAYS_ENV, float),
        "max_bytes": DEFAULT_MAX_BYTES if max_bytes is None else max_bytes,
    }


@contextlib.contextmanager
def command_tracing(
    command: str | None,
    *,
    no_trace: bool = False,
    otlp: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Trace the CLI command ``command`` (see :data:`COMMAND_RUNS`) for the block. A bad
    option is an :class:`OptionError`; a store that cannot be opened (corrupted, read-only)
    only turns tracing off, said through ``warn``. The command's run is recorded once
    something in it is traced or it fails (``--help`` records nothing)."""
    if command not in COMMAND_RUNS or not wanted(no_trace):
        yield
        return
    settings = env_settings()
    try:
        enable(otlp=otlp, command=command, **settings)
    except (DataError, OSError, sqlite3.Error) as exc:
        if warn is not None:
            warn(f"tracing is off for this command: {exc}")
        yield
        return
    try:
        if COMMAND_RUNS[command]:
            with run(command, lazy=True):
                yield
        else:
            yield
    finally:
        disable()
