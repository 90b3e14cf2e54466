"""``--repeat N``: a sampled configuration run N times, with seeds base + i, and its spread.

A configuration is sampled when its model's temperature is above 0 (a greedy one gives the
same answers every time, so it runs once whatever ``N``). The base seed is its model's
``seed`` (0 when unset). The combined result keeps every run under ``repeats`` (each with its
``seed``, ``mean`` and items), gives each item the mean of its runs (what a paired comparison
pairs) and reports the ``spread`` of the means over the runs: mean, standard deviation,
minimum and maximum per metric.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.evals.items import item_values, score_means


def sampled(settings: Mapping[str, Any]) -> bool:
    """Whether a recorded spec samples (its model's temperature is above 0)."""
    model = settings.get("model") if isinstance(settings, Mapping) else None
    return bool(isinstance(model, Mapping) and (model.get("temperature") or 0) > 0)


def repeat_seeds(settings: Mapping[str, Any], repeat: int) -> list[int | None]:
    """The seeds of the runs: base + i for a sampled spec, else one run (``[None]``)."""
    if repeat <= 1 or not sampled(settings):
        return [None]
    base = int(settings["model"].get("seed") or 0)
    return [base + i for i in range(repeat)]


def spread(means: Sequence[Mapping[str, float | None]]) -> dict[str, dict[str, float]]:
    """Per metric, the mean, standard deviation (n - 1), minimum and maximum of ``means``."""
    out: dict[str, dict[str, float]] = {}
    for metric in means[0] if means else {}:
        values = [float(v) for m in means if _finite(v := m.get(metric)) and v is not None]
        if not values:
            continue
        out[metric] = {
            "mean": math.fsum(values) / len(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
            "runs": float(len(values)),
        }
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _mean_items(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    sums: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        for item, values in item_values(run).items():
            for metric, value in values.items():
                if _finite(value):
                    sums.setdefault(item, {}).setdefault(metric, []).append(float(value))
    return {i: {m: math.fsum(v) / len(v) for m, v in ms.items()} for i, ms in sums.items()}


def combine(runs: Sequence[dict[str, Any]], seeds: Sequence[int | None]) -> dict[str, Any]:
    """One configuration result from its repeated runs (see the module docstring)."""
    first = runs[0]
    averaged = _mean_items(runs)
    repeats = [{**run, "seed": seed} for run, seed in zip(runs, seeds, strict=True)]
    for run in repeats:
        run.pop("pr_curve", None)
    result = {**first, "repeats": repeats, "spread": spread([r["mean"] for r in runs])}
    result["seconds"] = round(math.fsum(r.get("seconds", 0.0) for r in runs), 3)
    if "per_query" in first:
        result["per_query"] = {q: averaged.get(q, {}) for q in first["per_query"]}
        result["mean"] = {m: result["spread"].get(m, {}).get("mean") for m in first["mean"]}
        curves = [r["pr_curve"] for r in runs if r.get("pr_curve")]
        if curves:
            result["pr_curve"] = [
                [point[0], math.fsum(c[i][1] for c in curves) / len(curves)]
                for i, point in enumerate(curves[0])
            ]
        return result
    samples = [{**s, "scores": averaged.get(str(s["id"]), {})} for s in first["samples"]]
    result["samples"] = samples
    result["mean"] = score_means(samples, list(first["mean"]))
    result["failed"] = [
        {**f, "seed": seed} for run, seed in zip(runs, seeds, strict=True) for f in run["failed"]
    ]
    return result
