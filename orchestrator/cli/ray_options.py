"""The ``--ray`` options shared by ``index`` and ``eval`` (Ray itself: orchestrator.scale)."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.errors import OptionError

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


def check_ray_workers(ray: str | None, workers: int | None) -> None:
    """``--ray-workers`` sizes a Ray pool: without ``--ray`` it would be silently ignored."""
    if workers is not None and ray is None:
        raise OptionError(
            "--ray-workers applies to --ray only (without it the work runs in this process)",
            fix="add --ray local (or auto, or a cluster address), or leave out --ray-workers",
        )
