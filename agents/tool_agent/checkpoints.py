"""Where a tool-calling agent's state lives: LangGraph's checkpointers, and their size.

:func:`open_checkpointer` gives LangGraph's ``SqliteSaver`` on a file (by default
``$ORCHESTRATOR_HOME/agents/checkpoints.sqlite``) or, for a ``postgresql://`` DSN,
``PostgresSaver``. The graph saves a checkpoint after every step (``durability="sync"``:
written before the next step starts), keyed by the thread id, so a run killed at any point
resumes from its last completed step and a tool call whose result was recorded is not run
again.

Each checkpoint holds the whole message list, so a thread's checkpoints together grow with
steps x history. :func:`prune_thread` keeps only a thread's latest checkpoint (and its
pending writes, which a resume needs): LangGraph's ``PostgresSaver.prune``, and the same rule
in SQL for SQLite (whose saver does not implement it). :func:`thread_bytes` measures it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from orchestrator.errors import OptionError
from orchestrator.extras import require
from orchestrator.settings import data_home

#: The checkpoint file under ``$ORCHESTRATOR_HOME`` when no other place is given.
DEFAULT_FILE = Path("agents") / "checkpoints.sqlite"


def default_checkpoint_path() -> Path:
    """``$ORCHESTRATOR_HOME/agents/checkpoints.sqlite`` (or the XDG data folder's)."""
    return data_home() / DEFAULT_FILE


def is_postgres(where: str | Path | None) -> bool:
    """Whether ``where`` names a PostgreSQL database rather than a SQLite file."""
    text = str(where or "")
    return text.startswith(("postgresql://", "postgres://")) or (
        "=" in text and not Path(text).suffix
    )


def open_checkpointer(where: str | Path | None = None) -> Any:
    """LangGraph's checkpointer for ``where``: a ``postgresql://`` DSN (or ``key=value``
    pairs) -> ``PostgresSaver``; a file path or ``None`` (the default file) ->
    ``SqliteSaver``. Its tables are created on first use; ``close_checkpointer`` closes it."""
    if is_postgres(where):
        return _postgres(str(where))
    path = Path(where).expanduser() if where is not None else default_checkpoint_path()
    if path.exists() and path.is_dir():
        raise OptionError(
            f"checkpoint store {str(path)!r} is a folder",
            fix="give a file path (e.g. agents.sqlite) or a postgresql:// DSN",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    saver_module = require(
        "langgraph.checkpoint.sqlite", extra="agents", purpose="agent checkpoints in SQLite"
    )
    conn = sqlite3.connect(str(path), check_same_thread=False)
    saver = saver_module.SqliteSaver(conn)
    saver.setup()
    return saver


def _postgres(dsn: str) -> Any:
    require("psycopg", extra="postgres", purpose="agent checkpoints in PostgreSQL")
    saver_module = require(
        "langgraph.checkpoint.postgres",
        extra="postgres",
        purpose="agent checkpoints in PostgreSQL",
    )
    import psycopg
    from psycopg.rows import dict_row

    from orchestrator.retrieval.location import check_dsn

    conn = psycopg.connect(
        check_dsn(dsn), autocommit=True, prepare_threshold=0, row_factory=dict_row
    )
    saver = saver_module.PostgresSaver(conn)
    saver.setup()
    return saver


def close_checkpointer(saver: Any) -> None:
    """Close the connection :func:`open_checkpointer` opened."""
    conn = getattr(saver, "conn", None)
    if conn is not None:
        conn.close()


def prune_thread(saver: Any, thread_id: str) -> None:
    """Keep only the latest checkpoint of ``thread_id`` (per namespace) and its writes."""
    conn = getattr(saver, "conn", None)
    if not isinstance(conn, sqlite3.Connection):
        with contextlib.suppress(NotImplementedError):  # LangGraph's in-memory saver
            saver.prune([thread_id], strategy="keep_latest")
        return
    latest = "SELECT MAX(checkpoint_id) FROM checkpoints AS c2 WHERE c2.thread_id = ? AND "
    with saver.lock, conn:  # one transaction
        for table in ("writes", "checkpoints"):
            conn.execute(
                f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id <> ("
                f"{latest}c2.checkpoint_ns = {table}.checkpoint_ns)",
                (thread_id, thread_id),
            )
        conn.execute(
            "UPDATE checkpoints SET parent_checkpoint_id = NULL WHERE thread_id = ?",
            (thread_id,),
        )


def thread_bytes(saver: Any, thread_id: str) -> dict[str, int]:
    """Stored bytes of ``thread_id``: checkpoints (state and metadata), pending writes, and
    the number of checkpoints."""
    conn = saver.conn
    if isinstance(conn, sqlite3.Connection):
        queries = (
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) "
            "FROM checkpoints WHERE thread_id = ?",
            "SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes WHERE thread_id = ?",
        )
        with saver.lock:
            count, state = conn.execute(queries[0], (thread_id,)).fetchone()
            (writes,) = conn.execute(queries[1], (thread_id,)).fetchone()
        return {"checkpoints": count, "state_bytes": state, "write_bytes": writes}
    return _postgres_bytes(conn, thread_id)


def _postgres_bytes(conn: Any, thread_id: str) -> dict[str, int]:
    rows = {
        "checkpoints": "SELECT COUNT(*) AS n FROM checkpoints WHERE thread_id = %s",
        "state_bytes": "SELECT COALESCE(SUM(pg_column_size(checkpoint) + "
        "pg_column_size(metadata)), 0) + (SELECT COALESCE(SUM(LENGTH(blob)), 0) FROM "
        "checkpoint_blobs WHERE thread_id = %s) AS n FROM checkpoints WHERE thread_id = %s",
        "write_bytes": "SELECT COALESCE(SUM(LENGTH(blob)), 0) AS n FROM checkpoint_writes "
        "WHERE thread_id = %s",
    }
    found = {}
    for key, sql in rows.items():
        params = (thread_id,) * sql.count("%s")
        found[key] = int(conn.execute(sql, params).fetchone()["n"])
    return found
