"""The CI gate of a run: thresholds on means, and regressions against a baseline run.

Against a baseline, each configuration is compared item by item (:mod:`evals.compare`): a
metric fails only when it dropped significantly (paired permutation test, seeded) and its 95%
interval lies wholly beyond its stated size (``--fail-drop map=0.02``; metrics not named there
are not gated when any is named, else every metric is, with ``tolerance`` as its size). A
baseline without per-item values for a metric (results written before items were recorded, or
whose recorded mean is not the mean of its items, e.g. edited by hand) is compared on means:
the new mean may not fall below the old one by more than ``tolerance``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import OptionError
from orchestrator.evals.compare import UNGATED_PREFIX, compare_items, drop_failures, pairs
from orchestrator.evals.items import has_items, results_items


def _consistent(config: Mapping[str, Any], items: Mapping[str, Mapping[str, float]]) -> set[str]:
    """The metrics whose recorded mean is the mean of the configuration's items."""
    out = set()
    for metric, mean in config.get("mean", {}).items():
        values = [v[metric] for v in items.values() if metric in v]
        if (
            mean is not None
            and values
            and math.isclose(mean, math.fsum(values) / len(values), rel_tol=1e-6, abs_tol=1e-9)
        ):
            out.add(metric)
    return out


def baseline_comparison(
    results: Mapping[str, Any], baseline: Mapping[str, Any], *, seed: int = 0
) -> list[dict[str, Any]]:
    """Each configuration paired with the baseline's (same name; or the one of each), compared
    item by item on the metrics both record per item consistently with their means."""
    new = {c["name"]: c for c in results["configurations"] if has_items(c)}
    old = {c["name"]: c for c in baseline.get("configurations", []) if has_items(c)}
    if not new or not old:
        return []
    new_items, old_items = (
        results_items({"configurations": list(new.values())}),
        results_items({"configurations": list(old.values())}),
    )
    try:
        matched = pairs(old_items, new_items)
    except Exception:  # nothing in common: the means rule reports nothing either
        return []
    out = []
    for name_a, name_b in matched:
        metrics = sorted(
            _consistent(old[name_a], old_items[name_a])
            & _consistent(new[name_b], new_items[name_b])
        )
        chosen = [m for m in new[name_b]["mean"] if m in metrics]
        if chosen:
            out += compare_items(
                {name_a: old_items[name_a]}, {name_b: new_items[name_b]}, metrics=chosen, seed=seed
            )
    return out


def gate(
    results: Mapping[str, Any],
    *,
    thresholds: Mapping[str, float] | None = None,
    baseline: Mapping[str, Any] | None = None,
    tolerance: float = 0.0,
    fail_drop: Mapping[str, float] | None = None,
    comparisons: list[dict[str, Any]] | None = None,
    seed: int = 0,
) -> list[str]:
    """What fails: a mean below its threshold (a metric no item could be scored on fails
    too), or a regression against ``baseline`` (see the module docstring). ``comparisons``:
    :func:`baseline_comparison`'s, when already computed."""
    limits = {**(results.get("thresholds") or {}), **(thresholds or {})}
    if baseline is not None and comparisons is None:
        comparisons = baseline_comparison(results, baseline, seed=seed)
    failures: list[str] = []
    for config in results["configurations"]:
        name, mean = config["name"], config["mean"]
        for metric, limit in limits.items():
            value = mean.get(metric)
            if metric not in mean:
                failures.append(f"{name}: threshold on {metric!r}, which was not measured")
            elif value is None or value < limit:
                failures.append(f"{name}: {metric} = {_fmt(value)} is below {limit:g}")
        if baseline is not None:
            mine = [c for c in comparisons or [] if c["b"] == name]
            failures += drop_failures(mine, fail_drop, default=None if fail_drop else tolerance)
            paired = {m for c in mine for m in c["metrics"]}
            failures += _mean_failures(config, baseline, paired, tolerance, fail_drop)
    return failures


def _mean_failures(
    config: Mapping[str, Any],
    baseline: Mapping[str, Any],
    paired: set[str],
    tolerance: float,
    fail_drop: Mapping[str, float] | None,
) -> list[str]:
    """The means rule, for the metrics not compared item by item."""
    failures = []
    previous = {c["name"]: c["mean"] for c in baseline.get("configurations", [])}
    name, mean = config["name"], config["mean"]
    for metric, old in previous.get(name, {}).items():
        new = mean.get(metric)
        if old is None or metric.startswith(UNGATED_PREFIX) or metric not in mean:
            continue
        if metric in paired or (fail_drop and metric not in fail_drop):
            continue
        allowed = (fail_drop or {}).get(metric, tolerance)
        if new is None or new < old - allowed:
            failures.append(
                f"{name}: {metric} regressed from {_fmt(old)} to {_fmt(new)} (baseline)"
            )
    return failures


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def parse_fail_below(items: list[str]) -> dict[str, float]:
    """``["map=0.3", "P_10=0.2"]`` -> ``{"map": 0.3, "P_10": 0.2}``."""
    out: dict[str, float] = {}
    for item in items:
        metric, sep, value = item.partition("=")
        try:
            out[metric.strip()] = float(value)
        except ValueError:
            sep = ""
        if sep and not math.isfinite(out.get(metric.strip(), 0.0)):
            raise OptionError(
                f"--fail-below {item!r}: the threshold must be a finite number",
                fix="e.g. map=0.25",
            )
        if not sep or not metric.strip():
            raise OptionError(f"--fail-below {item!r} is not METRIC=VALUE", fix="e.g. map=0.25")
    return out
