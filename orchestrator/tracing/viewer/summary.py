"""Per-pipeline summaries of recorded runs: how many, how many failed, latency percentiles,
tokens, and the points the summary page plots (latency and tokens per run, over time)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from orchestrator.tracing.store import RunFilter, RunSummary, TraceStore

#: Runs read for a summary when the request does not say (newest first).
SUMMARY_RUNS = 5000
#: Runs plotted per pipeline at most (the newest).
PLOT_POINTS = 300
#: Statuses that count as failures in the error rate.
FAILED = ("error", "interrupted")


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return dict.fromkeys(("p50", "p95", "p99", "mean", "max"))
    p50, p95, p99 = np.percentile(np.asarray(values, dtype=float), [50, 95, 99])
    found = {"p50": p50, "p95": p95, "p99": p99, "mean": np.mean(values), "max": max(values)}
    return {k: round(float(v), 6) for k, v in found.items()}


#: What the summary page plots of each run.
POINT_FIELDS = ("run_id", "started", "duration_s", "status", "input_tokens", "output_tokens")


def _point(run: RunSummary) -> dict[str, Any]:
    return {name: getattr(run, name) for name in POINT_FIELDS}


def summarize(pipeline: str, runs: Sequence[RunSummary]) -> dict[str, Any]:
    """One pipeline's runs summed up: counts and error rate (of finished runs), latency
    percentiles in seconds (finished runs), tokens in and out, and its plotted points."""
    finished = [r for r in runs if r.status != "running"]
    failed = sum(r.status in FAILED for r in finished)
    tokens_in = sum(r.input_tokens or 0 for r in runs)
    tokens_out = sum(r.output_tokens or 0 for r in runs)
    newest = sorted(runs, key=lambda r: r.started)[-PLOT_POINTS:]
    return {
        "pipeline": pipeline,
        "runs": len(runs),
        "finished": len(finished),
        "errors": failed,
        "error_rate": round(failed / len(finished), 6) if finished else None,
        "latency_s": _percentiles([r.duration_s for r in finished if r.duration_s is not None]),
        "tokens": {
            "input": tokens_in,
            "output": tokens_out,
            "per_run": round((tokens_in + tokens_out) / len(runs), 3) if runs else None,
        },
        "first": min(r.started for r in runs) if runs else None,
        "last": max(r.started for r in runs) if runs else None,
        "points": [_point(r) for r in newest],
    }


def pipeline_summary(store: TraceStore, where: RunFilter) -> list[dict[str, Any]]:
    """:func:`summarize` for each pipeline of the runs matching ``where`` (a run without a
    pipeline counts under its name), the busiest first."""
    groups: dict[str, list[RunSummary]] = {}
    for run in store.runs(where):
        groups.setdefault(run.pipeline or run.name, []).append(run)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return [summarize(name, runs) for name, runs in ordered]
