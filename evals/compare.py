"""Paired comparison of two runs, item by item: is a difference a regression or noise?

Two runs of a suite score the same items (queries, samples, tasks), so each item gives a
paired difference ``b - a`` per metric. For each metric this module reports:

- ``difference``: the mean paired difference (run B minus run A);
- ``ci_low`` / ``ci_high``: its 95% bootstrap confidence interval
  (``scipy.stats.bootstrap``, BCa, seeded);
- ``p_value``: a two-sided paired permutation test of "no difference"
  (``scipy.stats.permutation_test`` with ``permutation_type="samples"``: the two values of
  each item are swapped at random; exact when the items are few, seeded otherwise);
- ``significant``: ``p_value < alpha`` (0.05);
- ``better`` / ``worse``: the items whose value went up / down (the flips);
- ``mde``: the smallest difference the suite's size detects with 80% power at ``alpha``
  (paired t approximation on the differences' spread; where the runs agree item by item, the
  spread of two independent runs, an upper bound).

The gate (:func:`drop_failures`) fails a metric only when it dropped significantly *and* the
whole 95% interval lies beyond the stated size (``ci_high <= -size``): the runs show, with 97.5%
one-sided confidence, a drop of at least that size. Noise does not fail a CI, nor does a real
change smaller than the size; a drop of the size plus the interval's half-width is caught (the
A/A and planted-drop runs on Cranfield: ``benchmarks/eval_gate.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.errors import DataError, OptionError

#: A run's per-item values: configuration -> item id -> metric -> value.
Items = Mapping[str, Mapping[str, Mapping[str, float]]]

ALPHA = 0.05
CONFIDENCE = 0.95
POWER = 0.8
RESAMPLES = 9999
#: Two values closer than this are the same (float noise is no flip).
_SAME = 1e-12
#: Metrics where more is not better: reported, never gated (``num_ret``, ...).
UNGATED_PREFIX = "num_"


@dataclass(frozen=True)
class Paired:
    """One metric's paired comparison (see the module docstring)."""

    metric: str
    n: int
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool
    mde: float
    better: list[str] = field(default_factory=list)
    worse: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _numpy() -> Any:
    import numpy as np

    return np


def bootstrap_ci(
    differences: Sequence[float], *, seed: int = 0, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """The BCa bootstrap interval of the mean of ``differences`` (``scipy.stats.bootstrap``).
    Differences that are all equal (or a single one) have that value as their interval."""
    np = _numpy()
    d = np.asarray(differences, dtype=float)
    if d.size < 2 or float(np.ptp(d)) <= _SAME:
        mean = float(d.mean()) if d.size else math.nan
        return mean, mean
    from scipy import stats

    result = stats.bootstrap(
        (d,),
        np.mean,
        confidence_level=confidence,
        n_resamples=RESAMPLES,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):  # BCa undefined: percentile instead
        result = stats.bootstrap(
            (d,), np.mean, confidence_level=confidence, n_resamples=RESAMPLES,
            method="percentile", rng=np.random.default_rng(seed),
        )  # fmt: skip
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return low, high


def permutation_p(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> float:
    """Two-sided p-value of a paired permutation test of mean(b - a) = 0
    (``scipy.stats.permutation_test``, ``permutation_type="samples"``)."""
    np = _numpy()
    x, y = np.asarray(b, dtype=float), np.asarray(a, dtype=float)
    if x.size < 2 or float(np.abs(x - y).max()) <= _SAME:
        return 1.0
    from scipy import stats

    def statistic(u: Any, v: Any, axis: int = -1) -> Any:
        return np.mean(u - v, axis=axis)

    result = stats.permutation_test(
        (x, y),
        statistic,
        permutation_type="samples",
        vectorized=True,
        n_resamples=RESAMPLES,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(min(1.0, result.pvalue))


def minimum_detectable_effect(
    a: Sequence[float], b: Sequence[float], *, alpha: float = ALPHA, power: float = POWER
) -> float:
    """The mean difference a paired test on ``len(a)`` items detects with ``power`` at
    ``alpha`` (two-sided): ``(t(1 - alpha/2) + t(power)) * sd / sqrt(n)``, ``sd`` the paired
    differences' spread, or, where the runs agree on every item, ``sqrt(var a + var b)``."""
    np = _numpy()
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = x.size
    if n < 2:
        return math.nan
    from scipy import stats

    sd = float(np.std(y - x, ddof=1))
    if sd <= _SAME:
        sd = math.sqrt(float(np.var(x, ddof=1)) + float(np.var(y, ddof=1)))
    z = float(stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1))
    return z * sd / math.sqrt(n)


def paired(
    metric: str,
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    seed: int = 0,
    alpha: float = ALPHA,
) -> Paired:
    """Compare ``metric`` on the items both ``a`` and ``b`` (item id -> value) scored."""
    ids = [i for i in a if i in b and _finite(a[i]) and _finite(b[i])]
    xs, ys = [float(a[i]) for i in ids], [float(b[i]) for i in ids]
    diffs = [y - x for x, y in zip(xs, ys, strict=True)]
    mean_a = math.fsum(xs) / len(xs) if xs else math.nan
    mean_b = math.fsum(ys) / len(ys) if ys else math.nan
    low, high = bootstrap_ci(diffs, seed=seed)
    p_value = permutation_p(xs, ys, seed=seed)
    return Paired(
        metric=metric,
        n=len(ids),
        mean_a=mean_a,
        mean_b=mean_b,
        difference=mean_b - mean_a if ids else math.nan,
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        significant=p_value < alpha,
        mde=minimum_detectable_effect(xs, ys, alpha=alpha),
        better=[i for i, d in zip(ids, diffs, strict=True) if d > _SAME],
        worse=[i for i, d in zip(ids, diffs, strict=True) if d < -_SAME],
    )


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def pairs(a: Items, b: Items) -> list[tuple[str, str]]:
    """Which configurations of run A and run B to compare: those of the same name; two runs
    of one configuration each are compared whatever their names."""
    common = [name for name in a if name in b]
    if common:
        return [(name, name) for name in common]
    if len(a) == 1 and len(b) == 1:
        return [(next(iter(a)), next(iter(b)))]
    raise DataError(
        f"the runs share no configuration (A: {sorted(a)}, B: {sorted(b)})",
        fix="compare runs of the same suite, or runs of one configuration each",
    )


def compare_items(
    a: Items, b: Items, *, metrics: Sequence[str] | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """Per configuration pair, every shared metric's :class:`Paired` (as JSON): ``[{"a": name,
    "b": name, "metrics": {metric: {...}}}]``."""
    out = []
    for name_a, name_b in pairs(a, b):
        values_a, values_b = _by_metric(a[name_a]), _by_metric(b[name_b])
        chosen = metrics or [m for m in values_a if m in values_b]
        result = {
            m: paired(m, values_a.get(m, {}), values_b.get(m, {}), seed=seed).to_json()
            for m in chosen
        }
        out.append({"a": name_a, "b": name_b, "metrics": result})
    return out


def _by_metric(items: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for item, values in items.items():
        for metric, value in values.items():
            out.setdefault(metric, {})[item] = value
    return out


def drop_failures(
    comparisons: Sequence[Mapping[str, Any]],
    fail_drop: Mapping[str, float] | None = None,
    *,
    default: float | None = 0.0,
) -> list[str]:
    """The gate: a metric fails when it dropped significantly and its interval lies wholly
    beyond its size (``fail_drop[metric]``; a metric not named there: ``default``, ``None`` =
    not gated)."""
    sizes = dict(fail_drop or {})
    failures = []
    for comparison in comparisons:
        for metric, c in comparison["metrics"].items():
            size = sizes.get(metric, None if sizes else default)
            if size is None or metric.startswith(UNGATED_PREFIX) or not c["n"]:
                continue
            if c["significant"] and c["ci_high"] <= -size:
                failures.append(
                    f"{comparison['b']}: {metric} regressed from {c['mean_a']:.4f} to "
                    f"{c['mean_b']:.4f} (baseline): {c['difference']:+.4f} "
                    f"[95% CI {c['ci_low']:+.4f}, {c['ci_high']:+.4f}], p = {c['p_value']:.4f}"
                    f", {len(c['worse'])} of {c['n']} worse"
                )
    return failures


def parse_sizes(items: Sequence[str], option: str = "--fail-drop") -> dict[str, float]:
    """``["map=0.02"]`` -> ``{"map": 0.02}``; a size is a finite number >= 0."""
    out: dict[str, float] = {}
    for item in items:
        metric, sep, value = item.partition("=")
        try:
            size = float(value)
        except ValueError:
            sep = ""
        if not sep or not metric.strip():
            raise OptionError(f"{option} {item!r} is not METRIC=SIZE", fix="e.g. map=0.02")
        if not math.isfinite(size) or size < 0:
            raise OptionError(
                f"{option} {item!r}: the size must be a finite number >= 0", fix="e.g. map=0.02"
            )
        out[metric.strip()] = size
    return out
