"""``eval compare RUN_A RUN_B``, and the options the eval commands share for per-item runs.

    orchestrator eval compare eval-results/before eval-results/after [--json]
                              [--fail-drop map=0.02] [--out DIR]

A run is an ``--out`` directory of ``eval SUITE.yaml`` / ``eval retrieval`` / ``eval rag``
(its ``items.jsonl``, else its ``results.json``), or either file. The comparison itself is
``orchestrator.evals.compare``'s; this module reads options and prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli.common import JsonOpt, console, err_console, guarded, print_json
from orchestrator.cli.ray_options import check_ray_workers

OutDirOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Write results.json, items.jsonl (per item) and reports here."),
]
RepeatOpt = Annotated[
    int,
    typer.Option(
        "--repeat",
        min=1,
        help="Run a sampled pipeline (temperature > 0) N times with seeds base + i; the "
        "report gives the spread.",
    ),
]
NoCacheOpt = Annotated[
    bool,
    typer.Option("--no-cache", help="Answer and judge everything again (no evaluation cache)."),
]
FailDropOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--fail-drop",
        help="METRIC=SIZE (repeatable): fail when METRIC dropped significantly (paired "
        "test) and its 95% interval lies beyond -SIZE against the baseline; only the metrics "
        "named are gated.",
    ),
]
SeedOpt = Annotated[
    int, typer.Option("--seed", help="Seed of the bootstrap and the permutation test.")
]


def write_run(results: dict[str, Any], out: Path | None, failures: Sequence[str] = ()) -> None:
    """With ``--out``: the run's results.json, items.jsonl and reports."""
    if out is None:
        return
    from orchestrator.evals.report import write_reports

    paths = write_reports(results, out, failures)
    err_console.print(f"[dim]per-item results: {paths['items']}  report: {paths['markdown']}[/]")


def mean_table(title: str, mean: dict[str, Any]) -> None:
    """A metric / mean table."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("mean", justify="right")
    for name, value in mean.items():
        table.add_row(name, "n/a" if value is None else f"{value:.4f}")
    console.print(table)


def ray_plan(ray: str | None, workers: int | None) -> Any:
    """``--ray``/``--ray-workers`` as an ``evals.distributed.RayPlan``, connected now (a
    wrong address fails before any model loads); None without ``--ray``."""
    check_ray_workers(ray, workers)
    if ray is None:
        return None
    from orchestrator.evals.distributed import RayPlan

    plan = RayPlan(ray, workers)
    plan.start()
    return plan


def _table(comparison: dict[str, Any]) -> None:
    from rich.table import Table

    from orchestrator.evals.report_extra import comparison_rows

    rows = comparison_rows([comparison])
    if not rows:
        console.print(f"{comparison['a']} -> {comparison['b']}: no metric in common")
        return
    table = Table(title=f"A: {comparison['a']}  ->  B: {comparison['b']}  ({rows[0]['n']} items)")
    for column in ("metric", "A", "B", "B - A", "95% CI", "p", "sig.", "better", "worse", "MDE"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for r in rows:
        table.add_row(
            r["metric"], r["a"], r["b"], r["difference"], r["ci"], r["p"], r["significant"],
            str(r["better"]), str(r["worse"]), r["mde"],
        )  # fmt: skip
    console.print(table)


@guarded
def compare(
    run_a: Annotated[Path, typer.Argument(help="The earlier run (baseline): --out DIR or file.")],
    run_b: Annotated[Path, typer.Argument(help="The later run: --out DIR or file.")],
    fail_drop: FailDropOpt = None,
    metrics: Annotated[
        str | None, typer.Option("--metrics", help="Comma separated (default: all shared).")
    ] = None,
    seed: SeedOpt = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write comparison.md and per_item.png here.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Paired comparison of two runs item by item: per metric the difference (B - A), its 95%
    bootstrap interval, a paired permutation test's p, the items that got better and worse,
    and the smallest effect the run's size detects. Exit 1 when --fail-drop fails."""
    from orchestrator.evals.compare import compare_items, drop_failures, parse_sizes
    from orchestrator.evals.items import load_items

    sizes = parse_sizes(fail_drop or [])
    items_a, items_b = load_items(run_a), load_items(run_b)
    chosen = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    comparisons = compare_items(items_a, items_b, metrics=chosen, seed=seed)
    failures = drop_failures(comparisons, sizes, default=None) if sizes else []
    if out is not None:
        _write(comparisons, items_a, items_b, out, run_a, run_b)
    if as_json:
        print_json({"comparisons": comparisons, "passed": not failures, "failures": failures})
    else:
        for comparison in comparisons:
            _table(comparison)
        for failure in failures:
            err_console.print(f"[bold red]FAIL[/] {failure}")
    if failures:
        raise typer.Exit(1)


def _write(
    comparisons: list[dict[str, Any]], items_a: Any, items_b: Any, out: Path, a: Path, b: Path
) -> None:
    from orchestrator.evals.report_extra import comparison_markdown, item_plot

    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Comparison: {a} -> {b}", "", *comparison_markdown(comparisons, "Paired")]
    plot = item_plot(comparisons, items_a, items_b)
    if plot is not None:
        (out / "per_item.png").write_bytes(plot)
        lines += ["![per item](per_item.png)", ""]
    (out / "comparison.md").write_text("\n".join(lines), encoding="utf-8")
