"""The ``--ray`` options shared by ``index`` and ``eval`` (Ray itself: orchestrator.scale)."""

from __future__ import annotations

from typing import Annotated

import typer

RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray",
        help="Run the batch work on Ray: auto (RAY_ADDRESS or a cluster started with "
        "`ray start --head`, else a local Ray), local, or a cluster address HOST:PORT.",
    ),
]
RayWorkersOpt = Annotated[
    int | None,
    typer.Option("--ray-workers", min=1, help="Ray workers (default: one per cluster CPU)."),
]
