"""A durable session store: one SQLite file, many sessions keyed by name.

Why SQLite: every exchange is written in one transaction, so a ``kill -9`` in the middle of a
turn loses at most the turn in flight, never a completed exchange; WAL mode lets several
processes read and write different sessions of one file without corrupting it. Messages are
stored as JSON (never pickled), so a store written by someone else cannot run code.

A file that is not a session store (not SQLite, another program's database, a newer schema,
or corrupted pages) is refused with a clear error and left exactly as it was. The schema grows
by append-only migrations (:mod:`orchestrator.memory.sqlite_schema`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

from orchestrator.errors import DataError, OrchestratorError
from orchestrator.memory.history import SessionHistory, SummaryState, validate_session_id
from orchestrator.memory.sqlite_schema import MOVE_ASIDE, prepare
from orchestrator.settings import data_home

_HEADER = b"SQLite format 3\x00"

T = TypeVar("T")


def default_store_path() -> Path:
    """Where ``orchestrator chat --session`` keeps sessions: ``data_home()/sessions.db``."""
    return data_home() / "sessions.db"


class SessionInfo(NamedTuple):
    """One stored session: its name, how many messages it holds, when it last changed."""

    name: str
    messages: int
    updated: float


class SQLiteStore:
    """Sessions in one SQLite file (WAL), safe across processes and crashes.

    ``store.history("work")`` gives a :class:`SQLiteHistory`; the store is callable, so it can
    be passed where LangChain expects ``get_session_history``.
    """

    def __init__(self, path: str | Path | None = None, *, timeout: float = 10.0) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self._lock = threading.RLock()
        self._conn = _connect(self.path, timeout)

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def history(self, session_id: str) -> SQLiteHistory:
        return SQLiteHistory(self, validate_session_id(session_id))

    __call__ = history

    def sessions(self) -> list[SessionInfo]:
        """Every session that holds messages, most recently changed first."""
        rows = self.read(
            "SELECT session, COUNT(*), MAX(created) FROM messages GROUP BY session "
            "ORDER BY MAX(created) DESC"
        )
        return [SessionInfo(r[0], int(r[1]), float(r[2])) for r in rows]

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query; storage errors become :class:`DataError` naming the file."""
        with self._lock:
            return self._guard(lambda: self._conn.execute(sql, params).fetchall())

    def write(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Run ``statements`` in one transaction: all of them are stored, or none."""
        with self._lock, self._transaction():
            for sql, params in statements:
                self._execute(sql, params)

    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        self._guard(lambda: self._conn.execute(sql, params))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """All or nothing. SQLite may already have rolled back by itself (a full disk), so the
        rollback is only issued while a transaction is open and never hides the first error;
        a failed COMMIT is rolled back too, so the next transaction can begin."""
        self._guard(lambda: self._conn.execute("BEGIN IMMEDIATE"))
        try:
            yield
            self._guard(lambda: self._conn.execute("COMMIT"))
        except BaseException:
            if self._conn.in_transaction:
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            raise

    def _guard(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc


class SQLiteHistory(SessionHistory):
    """One session of a :class:`SQLiteStore`. Reads go to the file, so other processes'
    writes to the same session are seen."""

    def __init__(self, store: SQLiteStore, session_id: str) -> None:
        self.store = store
        self.session_id = session_id

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        rows = self.store.read(
            "SELECT data FROM messages WHERE session = ? ORDER BY id", (self.session_id,)
        )
        try:
            return messages_from_dict([json.loads(r[0]) for r in rows])
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"session {self.session_id!r} in {self.store.path} holds a message that is not "
                f"valid: {exc}",
                fix=MOVE_ASIDE.format(p=self.store.path),
            ) from exc

    def __len__(self) -> int:
        rows = self.store.read(
            "SELECT COUNT(*) FROM messages WHERE session = ?", (self.session_id,)
        )
        return int(rows[0][0])

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        now = time.time()
        self.store.write(
            [
                (
                    "INSERT INTO messages (session, data, created) VALUES (?, ?, ?)",
                    (self.session_id, json.dumps(message_to_dict(m), ensure_ascii=False), now),
                )
                for m in messages
            ]
        )

    def clear(self) -> None:
        self.store.write(
            [
                ("DELETE FROM messages WHERE session = ?", (self.session_id,)),
                ("DELETE FROM summaries WHERE session = ?", (self.session_id,)),
            ]
        )

    def load_summary(self) -> SummaryState | None:
        rows = self.store.read(
            "SELECT text, covered FROM summaries WHERE session = ?", (self.session_id,)
        )
        return SummaryState(str(rows[0][0]), int(rows[0][1])) if rows else None

    def save_summary(self, text: str, covered: int) -> None:
        self.store.write(
            [
                (
                    "INSERT INTO summaries (session, text, covered, updated) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(session) DO UPDATE SET text = excluded.text, "
                    "covered = excluded.covered, updated = excluded.updated",
                    (self.session_id, text, covered, time.time()),
                )
            ]
        )


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    _check_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), timeout=timeout, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.Error) as exc:
        raise OrchestratorError(
            f"cannot open the session store {path}: {exc}",
            fix="check the directory exists and is writable, or set ORCHESTRATOR_HOME",
        ) from exc
    try:
        prepare(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise _storage_error(path, exc) from exc
    except OrchestratorError:
        conn.close()
        raise
    return conn


def _check_file(path: Path) -> None:
    """Refuse, before SQLite touches it, a file that is unreadable or not an SQLite database."""
    if not path.exists():
        return
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_HEADER))
    except OSError as exc:
        raise OrchestratorError(
            f"cannot read the session store {path}: {exc.strerror or exc}",
            fix=f"check the file's permissions (ls -l {path}) or use another store file",
        ) from exc
    if head and head != _HEADER:
        raise DataError(
            f"{path} is not a session store (not an SQLite database)",
            fix=MOVE_ASIDE.format(p=path),
        )


def _storage_error(path: Path, exc: sqlite3.Error) -> OrchestratorError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return OrchestratorError(
            f"the session store {path} is busy: {text}",
            fix="another process holds it for writing; retry in a moment",
        )
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return DataError(
            f"{path} is corrupted or not a session store: {text}", fix=MOVE_ASIDE.format(p=path)
        )
    return OrchestratorError(
        f"the session store {path} could not be used: {text}",
        fix="check the disk has space and the file is writable",
    )
