"""The session store's schema as append-only migrations, and the checks run before using a file.

The rule is the one of :mod:`orchestrator.migrations` (the PostgreSQL index schema follows it
too): each migration runs once, in one transaction with its row in ``orchestrator_migrations``.
A store written before migrations were recorded (schema 1: ``orchestrator_meta`` only) is
upgraded in place: its tables are migration 0001, recorded without being run. The number of
migrations applied is also kept as ``orchestrator_meta.schema_version``, which is what schema-1
code reads, so it refuses a store that newer code migrated further.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from orchestrator.migrations import Migration, check_order, pending
from orchestrator.sqlite_migrations import apply, check_file, tables
from orchestrator.sqlite_migrations import statements as statements  # re-exported

TABLE = "orchestrator_migrations"
#: The fix for a file that is not (or no longer) a usable session store.
MOVE_ASIDE = "it was left untouched; move it aside (mv {p} {p}.bak) or use another store file"
_NEWER_FIX = "upgrade Orchestrator (pip install -U orchestrator) to open it, or use another store"

_MESSAGES_SUMMARIES = """
CREATE TABLE orchestrator_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL,
    data TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX messages_by_session ON messages (session, id);
CREATE TABLE summaries (session TEXT PRIMARY KEY, text TEXT NOT NULL,
    covered INTEGER NOT NULL, updated REAL NOT NULL)
"""

#: Oldest first; statements end with ";" (see :func:`statements`). Append only: never edit a
#: released entry.
MIGRATIONS: tuple[Migration, ...] = (("0001_messages_summaries", _MESSAGES_SUMMARIES),)
check_order(MIGRATIONS)
SCHEMA_VERSION = len(MIGRATIONS)


def applied(conn: sqlite3.Connection) -> list[str]:
    """The migrations the file has (a schema-1 store's are read from its schema_version)."""
    found = tables(conn)
    if TABLE in found:
        return [r[0] for r in conn.execute(f"SELECT name FROM {TABLE} ORDER BY name")]
    if "orchestrator_meta" not in found:
        return []
    row = conn.execute("SELECT value FROM orchestrator_meta WHERE key = 'schema_version'")
    version = int((row.fetchone() or ("0",))[0])
    names = [name for name, _ in MIGRATIONS[:version]]
    if version > len(MIGRATIONS):
        names.append(f"schema_version={version}")  # newer code's: pending() refuses it
    return names


def prepare(conn: sqlite3.Connection, path: Path) -> list[str]:
    """Refuse a file that is not a session store (another program's, corrupted, newer), then
    bring it to this code's schema; returns the migrations applied now. Refusals change
    nothing in the file."""
    found = check_file(
        conn, path, marker="orchestrator_meta", kind="a session store",
        fix=MOVE_ASIDE.format(p=path),
    )  # fmt: skip
    todo = pending(MIGRATIONS, applied(conn), store=f"the session store {path}", fix=_NEWER_FIX)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return migrate(conn, path) if todo or TABLE not in found else []


def migrate(conn: sqlite3.Connection, path: Path) -> list[str]:
    """Apply what the file lacks in one transaction (another process may have done it while
    this one waited for the lock: then nothing is left to do)."""
    done: list[str] = []

    def todo() -> list[Migration]:
        done[:] = applied(conn)
        return pending(MIGRATIONS, done, store=f"the session store {path}", fix=_NEWER_FIX)

    def record(names: list[str]) -> None:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, applied REAL)")
        conn.executemany(
            f"INSERT OR IGNORE INTO {TABLE} (name, applied) VALUES (?, ?)",
            [(name, time.time()) for name in [*done, *names]],
        )
        conn.execute(
            "INSERT INTO orchestrator_meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(len(MIGRATIONS)),),
        )

    return apply(conn, todo, record)
