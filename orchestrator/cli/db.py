"""``db start`` / ``db stop``: a local PostgreSQL with pgvector for the ``--dsn`` backend."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.common import console, guarded

DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Data directory (default: postgres under $ORCHESTRATOR_HOME or the XDG data dir).",
        show_default=False,
    ),
]

db_app = typer.Typer(
    help="Run a local PostgreSQL with pgvector for indexes (--backend postgres --dsn ...).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@db_app.command("start")
@guarded
def start(directory: DirOpt = None) -> None:
    """Start the database (it keeps running after this command exits); its DSN is the last
    line of the output, so scripts can read it with ``tail -n 1``."""
    from orchestrator.retrieval.postgres.server import default_directory, start_server

    path = directory or default_directory()
    dsn = start_server(path)
    console.print(f"[green]PostgreSQL with pgvector running[/] in {path}")
    console.print(f"stop it with: orchestrator db stop --dir {path}", soft_wrap=True)
    print(dsn, flush=True)  # plain, unwrapped: the last line is exactly the DSN


@db_app.command("stop")
@guarded
def stop(directory: DirOpt = None) -> None:
    """Stop the database started with ``db start`` (same ``--dir``)."""
    from orchestrator.retrieval.postgres.server import default_directory, stop_server

    path = directory or default_directory()
    if stop_server(path):
        console.print(f"[green]stopped[/] PostgreSQL in {path}")
    else:
        console.print(f"PostgreSQL in {path} was not running")
