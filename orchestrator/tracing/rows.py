"""From OpenTelemetry spans to the store's rows (run on the writer thread, except
:func:`run_start`, which copies what a root span says when it starts)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from orchestrator.tracing import names
from orchestrator.tracing.texts import child_io, span_texts, text_of

#: Attributes holding JSON text on the span (OpenTelemetry takes primitives only); the store
#: keeps them as JSON values, so a reader gets structures.
JSON_ATTRIBUTES = frozenset(
    {
        names.INPUT,
        names.OUTPUT,
        names.INPUT_MESSAGES,
        names.OUTPUT_MESSAGES,
        names.DOCUMENTS,
        names.TOOL_ARGUMENTS,
        names.SCHEMA,
        names.TOOLS,
    }
)


def hex_id(value: int, width: int) -> str:
    return format(value, f"0{width}x")


@dataclass(frozen=True)
class RunStart:
    """What the run's row holds from the moment its root span starts."""

    run_id: str
    root_span: str
    name: str
    command: str | None
    pipeline: str | None
    session: str | None
    started: float
    pid: int
    pid_started: int | None


def run_start(span: Any, pid: int, pid_started: int | None) -> RunStart:
    attributes = span.attributes or {}
    return RunStart(
        run_id=hex_id(span.context.trace_id, 32),
        root_span=hex_id(span.context.span_id, 16),
        name=span.name,
        command=attributes.get(names.COMMAND),
        pipeline=attributes.get(names.PIPELINE),
        session=attributes.get(names.CONVERSATION),
        started=(span.start_time or 0) / 1e9,
        pid=pid,
        pid_started=pid_started,
    )


@dataclass
class SpanRecord:
    """One finished span as the store keeps it."""

    span_id: str
    run_id: str
    parent_id: str | None
    name: str
    kind: str
    status: str
    started: float
    ended: float
    attributes: dict[str, Any]
    error: str | None = None
    fix: str | None = None


def span_record(span: ReadableSpan) -> SpanRecord:
    attributes: dict[str, Any] = {}
    for key, value in (span.attributes or {}).items():
        if key in JSON_ATTRIBUTES and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        attributes[key] = list(value) if isinstance(value, tuple) else value
    failed = span.status.status_code is StatusCode.ERROR
    context = span.context
    assert context is not None
    return SpanRecord(
        span_id=hex_id(context.span_id, 16),
        run_id=hex_id(context.trace_id, 32),
        parent_id=hex_id(span.parent.span_id, 16) if span.parent is not None else None,
        name=span.name,
        kind=str(attributes.pop(names.KIND, "chain")),
        status="error" if failed else "ok",
        started=(span.start_time or 0) / 1e9,
        ended=(span.end_time or span.start_time or 0) / 1e9,
        attributes=attributes,
        error=attributes.get(names.ERROR_MESSAGE) or (span.status.description if failed else None),
        fix=attributes.get(names.ERROR_FIX),
    )


@dataclass
class RunState:
    """What the writer remembers of a run in flight: its root span, the first input and last
    output of the root's children (the run's question and answer when the root has none), its
    first model."""

    root_span: str
    input: str | None = None
    output: str | None = None
    model: str | None = None

    def note(self, record: SpanRecord) -> None:
        attributes = record.attributes
        if self.model is None and isinstance(attributes.get(names.REQUEST_MODEL), str):
            self.model = attributes[names.REQUEST_MODEL]
        if record.parent_id == self.root_span:
            question, answer = child_io(attributes)
            if self.input is None and question:
                self.input = question
            if answer:
                self.output = answer


def insert_run(conn: sqlite3.Connection, start: RunStart) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO runs (run_id, root_span, name, command, pipeline, session, "
        "status, started, pid, pid_started) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
        (
            start.run_id,
            start.root_span,
            start.name,
            start.command,
            start.pipeline,
            start.session,
            start.started,
            start.pid,
            start.pid_started,
        ),
    )


def insert_span(conn: sqlite3.Connection, record: SpanRecord) -> None:
    attributes = record.attributes
    conn.execute(
        "INSERT OR REPLACE INTO spans (span_id, run_id, parent_id, name, kind, status, started, "
        "ended, model, input_tokens, output_tokens, error, fix, attributes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.span_id,
            record.run_id,
            record.parent_id,
            record.name,
            record.kind,
            record.status,
            record.started,
            record.ended,
            attributes.get(names.REQUEST_MODEL),
            attributes.get(names.INPUT_TOKENS),
            attributes.get(names.OUTPUT_TOKENS),
            record.error,
            record.fix,
            json.dumps(attributes, ensure_ascii=False, default=str),
        ),
    )
    conn.executemany(
        "INSERT INTO texts (run_id, span_id, field, text) VALUES (?, ?, ?, ?)",
        [(record.run_id, record.span_id, f, t) for f, t in span_texts(record.kind, attributes)],
    )


def end_run(conn: sqlite3.Connection, root: SpanRecord, state: RunState) -> None:
    """The run's row once its root span ended (inserted whole if its start was not seen)."""
    attributes = root.attributes
    question = text_of(attributes.get(names.INPUT), "input") or state.input
    answer = text_of(attributes.get(names.OUTPUT), "output") or state.output
    conn.execute(
        "INSERT INTO runs (run_id, root_span, name, command, pipeline, model, session, status, "
        "started, ended, error, fix, input, output) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?) ON CONFLICT (run_id) DO UPDATE SET name = excluded.name, "
        "command = excluded.command, pipeline = excluded.pipeline, model = excluded.model, "
        "session = excluded.session, status = excluded.status, ended = excluded.ended, "
        "error = excluded.error, fix = excluded.fix, input = excluded.input, "
        "output = excluded.output",
        (
            root.run_id,
            root.span_id,
            root.name,
            attributes.get(names.COMMAND),
            attributes.get(names.PIPELINE),
            attributes.get(names.RUN_MODEL) or state.model,
            attributes.get(names.CONVERSATION),
            root.status,
            root.started,
            root.ended,
            root.error,
            root.fix,
            question,
            answer,
        ),
    )
    for field_name, text in (("question", question), ("answer", answer)):
        seen = "SELECT 1 FROM texts WHERE run_id = ? AND text = ?"  # a model call's, already
        if text and conn.execute(seen, (root.run_id, text)).fetchone() is None:
            conn.execute(
                "INSERT INTO texts (run_id, span_id, field, text) VALUES (?, ?, ?, ?)",
                (root.run_id, root.span_id, field_name, text),
            )


ModelKey = tuple[str, int, int]


@dataclass
class ModelHashes:
    """Model files seen by this writer: ``stat`` on each span, SHA-256 once per file version
    (path, size, mtime), kept in ``model_files`` so another process does not hash it again."""

    known: set[ModelKey] = field(default_factory=set)
    waiting: set[ModelKey] = field(default_factory=set)

    def stat(self, path: str) -> dict[str, int]:
        try:
            info = os.stat(path)
        except OSError:
            return {}
        key = (path, info.st_size, info.st_mtime_ns)
        if key not in self.known:
            self.waiting.add(key)
        return {names.MODEL_SIZE: info.st_size, names.MODEL_MTIME: info.st_mtime_ns}

    def unhashed(self) -> list[ModelKey]:
        keys, self.waiting = sorted(self.waiting), set()
        return keys

    def record(self, conn: sqlite3.Connection, key: ModelKey) -> None:
        found = conn.execute(
            "SELECT 1 FROM model_files WHERE path = ? AND size = ? AND mtime_ns = ?", key
        ).fetchone()
        if found is None:
            with open(key[0], "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            conn.execute("INSERT OR IGNORE INTO model_files VALUES (?, ?, ?, ?)", (*key, digest))
        self.known.add(key)
