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

from orchestrator.errors import DataError
from orchestrator.migrations import Migration, check_order, pending

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


def statements(sql: str) -> list[str]:
    """``sql``'s statements, cut only where SQLite says one is complete
    (:func:`sqlite3.complete_statement`): a ``;`` inside a string literal, a quoted name, a
    comment or a trigger's ``BEGIN ... END`` does not end a statement. Each is then run with
    ``execute`` inside the migration's transaction (``executescript`` would commit first)."""
    found: list[str] = []
    current = ""
    for piece in sql.split(";"):
        current += piece
        if sqlite3.complete_statement(current + ";"):
            found.append(current.strip())
            current = ""
        else:
            current += ";"
    # the last statement may lack its ";"; an unfinished one fails in execute, naming itself
    found.append(current.removesuffix(";").strip())
    return [statement for statement in found if statement]


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def applied(conn: sqlite3.Connection) -> list[str]:
    """The migrations the file has (a schema-1 store's are read from its schema_version)."""
    tables = _tables(conn)
    if TABLE in tables:
        return [r[0] for r in conn.execute(f"SELECT name FROM {TABLE} ORDER BY name")]
    if "orchestrator_meta" not in tables:
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
    tables = _tables(conn)
    if tables and "orchestrator_meta" not in tables:
        raise DataError(
            f"{path} is an SQLite database of another program, not a session store",
            fix=MOVE_ASIDE.format(p=path),
        )
    if tables:
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise DataError(f"{path} is corrupted ({check})", fix=MOVE_ASIDE.format(p=path))
    todo = pending(MIGRATIONS, applied(conn), store=f"the session store {path}", fix=_NEWER_FIX)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return migrate(conn, path) if todo or TABLE not in tables else []


def migrate(conn: sqlite3.Connection, path: Path) -> list[str]:
    """Apply what the file lacks in one transaction (another process may have done it while
    this one waited for the lock: then nothing is left to do)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = applied(conn)
        todo = pending(MIGRATIONS, done, store=f"the session store {path}", fix=_NEWER_FIX)
        for _name, sql in todo:
            for statement in statements(sql):
                conn.execute(statement)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, applied REAL)")
        conn.executemany(
            f"INSERT OR IGNORE INTO {TABLE} (name, applied) VALUES (?, ?)",
            [(name, time.time()) for name in [*done, *(name for name, _ in todo)]],
        )
        conn.execute(
            "INSERT INTO orchestrator_meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(len(MIGRATIONS)),),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return [name for name, _ in todo]
