"""The SQLite half of :mod:`orchestrator.migrations`' rule, for the stores Orchestrator keeps in
SQLite files (the trace store; the session store's rule is the same): refuse a file that is
another program's or corrupted before touching it, and apply what a file lacks in one
transaction, its statements cut where SQLite says each is complete."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

from orchestrator.errors import DataError
from orchestrator.migrations import Migration


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


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


def check_file(
    conn: sqlite3.Connection, path: Path, *, marker: str, kind: str, fix: str
) -> set[str]:
    """The file's tables, once it is known to be empty or a healthy store of ``kind`` (it has
    the ``marker`` table); else a :class:`DataError` with ``fix``, the file untouched."""
    found = tables(conn)
    if found and marker not in found:
        raise DataError(f"{path} is an SQLite database of another program, not {kind}", fix=fix)
    if found:
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise DataError(f"{path} is corrupted ({check})", fix=fix)
    return found


def apply(
    conn: sqlite3.Connection,
    todo: Callable[[], Sequence[Migration]],
    record: Callable[[list[str]], None],
) -> list[str]:
    """In one ``BEGIN IMMEDIATE`` transaction: the migrations ``todo()`` names (asked once the
    lock is held: another process may have applied them meanwhile), then ``record`` of their
    names; returns the names. ``conn`` must be in autocommit mode (``isolation_level=None``)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        migrations = list(todo())
        for _name, sql in migrations:
            for statement in statements(sql):
                conn.execute(statement)
        applied = [name for name, _ in migrations]
        record(applied)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return applied
