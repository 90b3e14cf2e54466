"""Reading the trace store: runs (filtered), a run's spans with their attributes as JSON
values, full-text search over prompts and answers. ``orchestrator logs``, the trace viewer and
replay read through :class:`TraceStore`; nothing here writes a span.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.errors import DataError
from orchestrator.tracing import names
from orchestrator.tracing.retention import mark_interrupted
from orchestrator.tracing.schema import connect, store_path

STATUSES = ("running", "ok", "error", "interrupted")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, now: float | None = None) -> float:
    """Unix seconds from ``30m``, ``2h``, ``7d``, ``1w`` (that long ago) or an ISO date or
    date-time (``2025-05-01``, ``2025-05-01T14:30``; local time unless it names a zone)."""
    import datetime
    import time

    value = text.strip()
    relative = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", value)
    if relative:
        return (now or time.time()) - float(relative[1]) * _UNITS[relative[2]]
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise DataError(
            f"{text!r} is not a time", fix="e.g. 30m, 2h, 7d, 2025-05-01 or 2025-05-01T14:30"
        ) from None
    return moment.timestamp()


@dataclass(frozen=True)
class RunFilter:
    """Which runs to list: each given field must match (``model`` as a substring; ``since``
    and ``until`` in Unix seconds), newest first, at most ``limit``."""

    command: str | None = None
    pipeline: str | None = None
    model: str | None = None
    session: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int | None = 50

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for column in ("command", "pipeline", "session", "status"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"r.{column} = ?")
                params.append(value)
        if self.model is not None:
            clauses.append(f"({MODEL_SQL}) LIKE ?")
            params.append(f"%{self.model}%")
        if self.since is not None:
            clauses.append("r.started >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("r.started <= ?")
            params.append(self.until)
        return " AND ".join(clauses) or "1", params


@dataclass(frozen=True)
class RunSummary:
    """One run as ``logs`` lists it (``duration_s`` is ``None`` while it runs)."""

    run_id: str
    name: str
    command: str | None
    pipeline: str | None
    model: str | None
    session: str | None
    status: str
    started: float
    ended: float | None
    input_tokens: int | None
    output_tokens: int | None
    input: str | None
    output: str | None
    error: str | None
    fix: str | None
    root_span: str = ""

    @property
    def duration_s(self) -> float | None:
        return None if self.ended is None else round(self.ended - self.started, 6)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duration_s": self.duration_s}


@dataclass(frozen=True)
class SpanView:
    """One finished span: its place in the tree, timing, status and attributes (JSON values;
    a model call's file hash added from ``model_files``)."""

    span_id: str
    run_id: str
    parent_id: str | None
    name: str
    kind: str
    status: str
    started: float
    ended: float
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    error: str | None
    fix: str | None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return round(self.ended - self.started, 6)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duration_s": self.duration_s}


@dataclass(frozen=True)
class SearchHit:
    """A run whose prompt, question or answer matched, with the matching piece."""

    run: RunSummary
    field: str
    snippet: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.run.to_dict(), "match": {"field": self.field, "snippet": self.snippet}}


MODEL_SQL = (
    "COALESCE(r.model, (SELECT s.model FROM spans s WHERE s.run_id = r.run_id AND s.model IS "
    "NOT NULL ORDER BY s.started LIMIT 1))"
)
_RUN_SQL = (
    f"SELECT r.run_id, r.name, r.command, r.pipeline, {MODEL_SQL}, r.session, r.status, r.started, "
    "r.ended, (SELECT SUM(s.input_tokens) FROM spans s WHERE s.run_id = r.run_id), "
    "(SELECT SUM(s.output_tokens) FROM spans s WHERE s.run_id = r.run_id), r.input, r.output, "
    "r.error, r.fix, r.root_span FROM runs r"
)
_SPAN_FIELDS = (
    "span_id", "run_id", "parent_id", "name", "kind", "status", "started", "ended", "model",
    "input_tokens", "output_tokens", "error", "fix",
)  # fmt: skip
_SPAN_COLUMNS = (
    "span_id, run_id, parent_id, name, kind, status, started, ended, model, input_tokens, "
    "output_tokens, error, fix, attributes"
)


def fts_query(text: str) -> str:
    """Plain words as an FTS5 query: every word must occur (quoted, so ``"``, ``-``, ``:``
    and ``*`` are text, not syntax)."""
    words = re.findall(r"\w+", text)
    if not words:
        raise DataError(f"{text!r} has no words to search for", fix="e.g. logs -q 'eiffel tower'")
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


class TraceStore:
    """The trace store at ``path`` (default ``$ORCHESTRATOR_HOME/traces.sqlite``), read-side.
    A missing file reads as an empty store (nothing recorded yet)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = store_path(path)
        self._conn: sqlite3.Connection | None = None
        if self.path.exists():
            self._conn = connect(self.path)
            # best effort: a read-only file still lists, with dead runs as "running"
            with contextlib.suppress(sqlite3.OperationalError):
                mark_interrupted(self._conn)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return [] if self._conn is None else self._conn.execute(sql, params).fetchall()

    def runs(
        self, where: RunFilter | None = None, *, ids: list[str] | None = None
    ) -> list[RunSummary]:
        """Runs matching ``where``, newest first (or in the order of ``ids``, when given)."""
        where = where or RunFilter()
        clause, params = where.where()
        if ids is not None:
            if not ids:
                return []
            clause += f" AND r.run_id IN ({','.join('?' * len(ids))})"
            params += ids
        sql = f"{_RUN_SQL} WHERE {clause} ORDER BY r.started DESC"
        if where.limit is not None and ids is None:
            sql += f" LIMIT {int(where.limit)}"
        found = [RunSummary(*row) for row in self._rows(sql, params)]
        if ids is not None:
            order = {run_id: n for n, run_id in enumerate(ids)}
            found.sort(key=lambda r: order[r.run_id])
            found = found[: where.limit] if where.limit is not None else found
        return found

    def run(self, run_id: str) -> RunSummary:
        """The run whose id is or starts with ``run_id``."""
        prefix = run_id.strip().lower()
        rows = self._rows(f"{_RUN_SQL} WHERE r.run_id LIKE ? LIMIT 2", (f"{prefix}%",))
        if len(rows) != 1 or not prefix:
            problem = "several runs start with" if rows else "no run has the id"
            raise DataError(
                f"{problem} {run_id!r} in {self.path}",
                fix="orchestrator logs lists the runs; give more of the id",
            )
        return RunSummary(*rows[0])

    def spans(self, run_id: str) -> list[SpanView]:
        """The run's finished spans, in start order (a run in flight has some)."""
        rows = self._rows(
            f"SELECT {_SPAN_COLUMNS} FROM spans WHERE run_id = ? ORDER BY started, rowid",
            (self.run(run_id).run_id,),
        )
        hashes = self._model_hashes()
        views = []
        for row in rows:
            attributes = json.loads(row[-1])
            key = tuple(
                attributes.get(k) for k in (names.MODEL_PATH, names.MODEL_SIZE, names.MODEL_MTIME)
            )
            if key in hashes:
                attributes[names.MODEL_SHA256] = hashes[key]
            views.append(
                SpanView(**dict(zip(_SPAN_FIELDS, row, strict=False)), attributes=attributes)
            )
        return views

    def _model_hashes(self) -> dict[tuple[Any, ...], str]:
        rows = self._rows("SELECT path, size, mtime_ns, sha256 FROM model_files")
        return {tuple(r[:3]): r[3] for r in rows}

    def search(self, text: str, where: RunFilter | None = None) -> list[SearchHit]:
        """Runs whose prompts, questions or answers hold every word of ``text``, best first."""
        rows = self._rows(
            "SELECT t.run_id, t.field, snippet(texts_fts, 0, '[', ']', '…', 12) FROM texts_fts "
            "JOIN texts t ON t.id = texts_fts.rowid WHERE texts_fts MATCH ? ORDER BY rank "
            "LIMIT 2000",
            (fts_query(text),),
        )
        first: dict[str, tuple[str, str]] = {}
        for run_id, where_found, snippet in rows:
            first.setdefault(run_id, (where_found, snippet))
        summaries = self.runs(where or RunFilter(), ids=list(first))
        return [SearchHit(r, *first[r.run_id]) for r in summaries]
