"""The trace store's schema: append-only migrations under :mod:`orchestrator.migrations`' rule,
and the checks run before a file is used.

One SQLite file (``$ORCHESTRATOR_HOME/traces.sqlite``) in WAL mode: ``runs`` (one row per run,
written when its root span starts, so a run cut by ``kill -9`` is still listed), ``spans``
(one row per finished span, its attributes as JSON), ``texts`` (prompts, answers, questions)
with the FTS5 index ``texts_fts`` kept by triggers, and ``model_files`` (a GGUF's SHA-256 per
path, size and mtime, hashed once). Pages freed by pruning go back to the file system
(``auto_vacuum = INCREMENTAL``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from orchestrator.errors import DataError
from orchestrator.migrations import Migration, check_order, pending
from orchestrator.settings import data_home
from orchestrator.sqlite_migrations import apply, check_file, tables

STORE_FILE = "traces.sqlite"
TABLE = "orchestrator_migrations"
MOVE_ASIDE = "it was left untouched; move it aside (mv {p} {p}.bak) or use another trace store"
_NEWER_FIX = "upgrade Orchestrator (pip install -U orchestrator) to open it, or use another store"

_RUNS_SPANS_TEXTS = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, root_span TEXT NOT NULL, name TEXT NOT NULL, command TEXT,
    pipeline TEXT, model TEXT, session TEXT, status TEXT NOT NULL, started REAL NOT NULL,
    ended REAL, error TEXT, fix TEXT, input TEXT, output TEXT, pid INTEGER,
    pid_started INTEGER
);
CREATE INDEX runs_by_started ON runs (started);
CREATE TABLE spans (
    span_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, parent_id TEXT, name TEXT NOT NULL,
    kind TEXT NOT NULL, status TEXT NOT NULL, started REAL NOT NULL, ended REAL NOT NULL,
    model TEXT, input_tokens INTEGER, output_tokens INTEGER, error TEXT, fix TEXT,
    attributes TEXT NOT NULL
);
CREATE INDEX spans_by_run ON spans (run_id, started);
CREATE TABLE texts (
    id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, span_id TEXT NOT NULL, field TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX texts_by_run ON texts (run_id);
CREATE VIRTUAL TABLE texts_fts USING fts5(text, content='texts', content_rowid='id');
CREATE TRIGGER texts_added AFTER INSERT ON texts BEGIN
    INSERT INTO texts_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER texts_removed AFTER DELETE ON texts BEGIN
    INSERT INTO texts_fts (texts_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TABLE model_files (
    path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (path, size, mtime_ns)
);
"""

#: Oldest first. Append only: never edit a released entry.
MIGRATIONS: tuple[Migration, ...] = (("0001_runs_spans_texts", _RUNS_SPANS_TEXTS),)
check_order(MIGRATIONS)


def store_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The trace store: ``path``, else ``$ORCHESTRATOR_HOME/traces.sqlite``."""
    return Path(path).expanduser() if path else data_home() / STORE_FILE


def applied(conn: sqlite3.Connection) -> list[str]:
    """The migrations the file records."""
    if TABLE not in tables(conn):
        return []
    return [r[0] for r in conn.execute(f"SELECT name FROM {TABLE} ORDER BY name")]


def _pending(conn: sqlite3.Connection, path: Path) -> list[Migration]:
    return pending(MIGRATIONS, applied(conn), store=f"the trace store {path}", fix=_NEWER_FIX)


def prepare(conn: sqlite3.Connection, path: Path) -> list[str]:
    """Refuse a file that is not a trace store (another program's, corrupted, newer), then
    bring it to this code's schema; returns the migrations applied now. ``conn`` is in
    autocommit mode (``isolation_level=None``). A refusal changes nothing in the file."""
    fix = MOVE_ASIDE.format(p=path)
    found = check_file(conn, path, marker=TABLE, kind="a trace store", fix=fix)
    if not _pending(conn, path):  # (a newer store is refused here, untouched)
        conn.execute("PRAGMA journal_mode = WAL")
        return []
    if not found:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only before the first table
        conn.execute("PRAGMA journal_mode = WAL")

    def record(names: list[str]) -> None:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, applied REAL)")
        conn.executemany(f"INSERT INTO {TABLE} VALUES (?, ?)", [(n, time.time()) for n in names])

    return apply(conn, lambda: _pending(conn, path), record)


def connect(path: Path, *, timeout: float = 10.0) -> sqlite3.Connection:
    """A connection to the store at ``path`` (created with its folder when missing), migrated,
    in autocommit mode: callers open their own transactions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        prepare(conn, path)
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a killed process loses nothing
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DataError(
            f"{path} is not a usable trace store ({exc})", fix=MOVE_ASIDE.format(p=path)
        ) from None
    except BaseException:
        conn.close()
        raise
    return conn
