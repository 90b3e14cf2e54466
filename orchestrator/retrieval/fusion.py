"""Fusing ranked lists from several retrievers into one.

Every function takes ranked lists of ``(key, score)`` pairs, best first, where a higher score
is better, plus one weight per list, and returns one list of ``(key, fused score)`` sorted
best first. A key (a chunk id, or an index row) present in several lists is merged into one
entry whose fused score adds its contributions; a key missing from a list gets nothing from it.

- ``rrf``: reciprocal-rank fusion, ``sum_i w_i / (k + rank_i)`` (rank from 1). Uses ranks only,
  so it needs no score calibration; ``k=60`` as in Cormack et al. (2009).
- ``weighted``: min-max normalise each list's scores to [0, 1] (a list whose scores are all
  equal maps to 1), then ``sum_i w_i * norm_i``. Keeps how far ahead the leaders are, which
  ranks cannot; measured better than RRF on Cranfield (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from orchestrator.errors import OptionError, unknown_option

K = TypeVar("K", bound=Hashable)
Ranked = Sequence[tuple[K, float]]


def _check(lists: Sequence[Ranked[K]], weights: Sequence[float] | None) -> list[float]:
    chosen = list(weights) if weights is not None else [1.0] * len(lists)
    if len(chosen) != len(lists):
        raise OptionError(
            f"fusion got {len(lists)} ranked lists but {len(chosen)} weights",
            fix="pass one weight per retriever",
        )
    if any(w < 0 for w in chosen):
        raise OptionError(f"fusion weights must be >= 0, got {chosen}")
    return chosen


def _sorted(scores: dict[K, float]) -> list[tuple[K, float]]:
    order = {key: i for i, key in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def rrf_fusion(
    lists: Sequence[Ranked[K]], weights: Sequence[float] | None = None, *, k: float = 60.0
) -> list[tuple[K, float]]:
    """Weighted reciprocal-rank fusion (higher is better)."""
    chosen = _check(lists, weights)
    fused: dict[K, float] = {}
    for ranked, weight in zip(lists, chosen, strict=True):
        seen: set[K] = set()
        for rank, (key, _score) in enumerate(ranked, 1):
            if key in seen:
                continue
            seen.add(key)
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    return _sorted(fused)


def weighted_fusion(
    lists: Sequence[Ranked[K]], weights: Sequence[float] | None = None, **_: Any
) -> list[tuple[K, float]]:
    """Weighted sum of min-max normalised scores (higher is better)."""
    chosen = _check(lists, weights)
    fused: dict[K, float] = {}
    for ranked, weight in zip(lists, chosen, strict=True):
        best: dict[K, float] = {}
        for key, score in ranked:
            best[key] = max(score, best.get(key, score))
        if not best:
            continue
        low, high = min(best.values()), max(best.values())
        span = high - low
        for key, score in best.items():
            norm = (score - low) / span if span > 0 else 1.0
            fused[key] = fused.get(key, 0.0) + weight * norm
    return _sorted(fused)


Fusion = Callable[..., list[tuple[Any, float]]]

#: Fusion methods by name (the ``fusion=`` option of retrievers and the CLI).
FUSIONS: dict[str, Fusion] = {"rrf": rrf_fusion, "weighted": weighted_fusion}


def get_fusion(name: str) -> Fusion:
    """The fusion function called ``name``; an unknown name is an error naming the choices."""
    try:
        return FUSIONS[name]
    except KeyError:
        raise unknown_option(name, FUSIONS, where="fusion") from None
