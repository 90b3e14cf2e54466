"""One connection to PostgreSQL per process and DSN, with clear errors and safe retries.

Why one guarded connection and not a pool: every query of the pipeline runs inside one
read-only snapshot transaction (so a search never mixes two versions of an index), and the
connection is held for that transaction only; a lock makes it safe to share across the
threads of ``serve``.

A lost connection is retried once on a fresh connection, but only for work that is safe to
repeat: reads, and writes that are idempotent by construction (adds replace documents by id,
deletes remove by id). Anything else, or a second failure, is a :class:`DatabaseError` naming
the server without its password and saying how to fix it. PostgreSQL rolls back a transaction
whose connection dies, so a failure never leaves half an index.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from orchestrator.errors import OrchestratorError
from orchestrator.extras import require

T = TypeVar("T")

#: Told whenever the server cannot be reached.
UNREACHABLE_FIX = (
    "start the database (orchestrator db start prints a DSN) or pass the right --dsn "
    "postgresql://USER:PASSWORD@HOST:PORT/DB; check that the server is running"
)


class DatabaseError(OrchestratorError):
    """PostgreSQL could not be reached or refused the work; nothing was half-written."""


def psycopg() -> Any:
    """The psycopg module, or :class:`MissingDependencyError` naming the ``postgres`` extra."""
    return require("psycopg", extra="postgres", purpose="the PostgreSQL index backend")


def redact_dsn(dsn: str) -> str:
    """``dsn`` without its password (URI or ``key=value`` form), safe to print in errors."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        netloc = parts.netloc
        if "@" in netloc:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}@{host}"
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = parts.query  # a password may also sit in the query: ?password=...
        if any(key == "password" for key, _ in pairs):
            query = urlencode([(k, v) for k, v in pairs if k != "password"], safe="/")
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(dsn)
    except Exception:  # not parseable: show nothing that might hold a secret
        return "<unparseable DSN>"
    params.pop("password", None)
    return make_conninfo(**{k: str(v) for k, v in params.items()})


class Database:
    """A DSN's guarded connection; use :meth:`read` and :meth:`write` for transactions."""

    def __init__(self, dsn: str) -> None:
        if not dsn.strip():
            raise DatabaseError("the DSN is empty", fix=UNREACHABLE_FIX)
        self.dsn, self.label = dsn, redact_dsn(dsn)
        self._lock = threading.RLock()
        self._conn: Any = None

    def _connect(self) -> Any:
        pg = psycopg()
        try:
            conn = pg.connect(self.dsn, autocommit=True, connect_timeout=10)
        except pg.OperationalError as exc:
            raise DatabaseError(
                f"cannot connect to PostgreSQL at {self.label}: {_first_line(exc)}",
                fix=UNREACHABLE_FIX,
            ) from exc
        except pg.ProgrammingError as exc:  # a malformed DSN
            raise DatabaseError(
                f"the DSN {self.label} is not valid: {_first_line(exc)}", fix=UNREACHABLE_FIX
            ) from exc
        try:
            _prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _transaction(self, *, readonly: bool) -> Iterator[Any]:
        conn = self.connection()
        with conn.transaction():
            if readonly:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield conn

    def run(self, work: Callable[[Any], T], *, readonly: bool, retry: bool = True) -> T:
        """``work(conn)`` in one transaction (a snapshot when ``readonly``); committed when
        it returns, rolled back when it raises. A lost connection is retried once when
        ``retry`` (only pass it for reads and idempotent writes)."""
        pg = psycopg()
        with self._lock:
            for attempt in (1, 2):
                try:
                    with self._transaction(readonly=readonly) as conn:
                        return work(conn)
                except pg.OperationalError as exc:
                    lost = self._conn is None or self._conn.closed or self._conn.broken
                    if not lost:
                        raise DatabaseError(
                            f"PostgreSQL at {self.label} refused the work: {_first_line(exc)}",
                            fix="see the message; nothing was written (the transaction was "
                            "rolled back)",
                        ) from exc
                    self._conn = None
                    if attempt == 2 or not retry:
                        raise DatabaseError(
                            f"lost the connection to PostgreSQL at {self.label}: "
                            f"{_first_line(exc)}; nothing was written (the transaction was "
                            "rolled back)",
                            fix=UNREACHABLE_FIX,
                        ) from exc
                except pg.Error as exc:  # rolled back: a constraint, a permission, a bug
                    raise DatabaseError(
                        f"PostgreSQL at {self.label} refused the work: {_first_line(exc)}",
                        fix="nothing was written (the transaction was rolled back); check the "
                        "database user's rights, or report this as a bug",
                    ) from exc
        raise AssertionError("unreachable")

    def read(self, work: Callable[[Any], T]) -> T:
        """A read-only snapshot transaction, retried once if the connection was lost."""
        return self.run(work, readonly=True, retry=True)

    def write(self, work: Callable[[Any], T], *, idempotent: bool) -> T:
        """A write transaction: all of ``work`` or nothing."""
        return self.run(work, readonly=False, retry=idempotent)


def _prepare(conn: Any) -> None:
    """Bring a new (autocommit) connection's database to this code's schema, refusing a
    newer one, then teach the connection pgvector's types (numpy arrays in and out)."""
    from orchestrator.retrieval.postgres.migrations import migrate

    pgvector = require("pgvector.psycopg", extra="postgres", purpose="pgvector's types")
    migrate(conn)
    pgvector.register_vector(conn)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_DATABASES: dict[str, Database] = {}
_DATABASES_LOCK = threading.Lock()


def database(dsn: str) -> Database:
    """The process's :class:`Database` for ``dsn`` (one connection per DSN)."""
    with _DATABASES_LOCK:
        db = _DATABASES.get(dsn)
        if db is None:
            db = _DATABASES[dsn] = Database(dsn)
        return db
