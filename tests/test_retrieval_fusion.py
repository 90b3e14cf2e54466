"""Fusion: RRF and weighted score fusion, weights applied, duplicates merged."""

from __future__ import annotations

import pytest

from orchestrator.errors import OptionError
from orchestrator.retrieval.fusion import FUSIONS, get_fusion, rrf_fusion, weighted_fusion

DENSE = [("a", 0.9), ("b", 0.8), ("c", 0.1)]
BM25 = [("c", 12.0), ("a", 6.0), ("d", 3.0)]


def test_rrf_adds_reciprocal_ranks_and_merges_duplicates() -> None:
    fused = dict(rrf_fusion([DENSE, BM25], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["d"] == pytest.approx(1 / 63)
    assert len(fused) == 4


def test_rrf_weights_are_applied() -> None:
    only_bm25 = rrf_fusion([DENSE, BM25], [0.0, 1.0])
    assert [key for key, _ in only_bm25][:3] == ["c", "a", "d"]
    assert dict(only_bm25)["b"] == 0.0


def test_weighted_fusion_normalises_then_weights() -> None:
    fused = dict(weighted_fusion([DENSE, BM25], [0.7, 0.3]))
    assert fused["a"] == pytest.approx(0.7 * 1.0 + 0.3 * (6 - 3) / 9)
    assert fused["c"] == pytest.approx(0.7 * 0.0 + 0.3 * 1.0)
    assert fused["b"] == pytest.approx(0.7 * (0.8 - 0.1) / 0.8)
    ranked = weighted_fusion([DENSE, BM25], [0.7, 0.3])
    assert next(key for key, _ in ranked) == "a"
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_weighted_fusion_keeps_a_duplicates_best_score_within_a_list() -> None:
    fused = dict(weighted_fusion([[("a", 1.0), ("b", 0.5), ("a", 0.2)]]))
    assert fused == {"a": 1.0, "b": 0.0}


def test_bad_weights_and_unknown_fusion_are_errors() -> None:
    with pytest.raises(OptionError, match="2 ranked lists but 1 weights"):
        rrf_fusion([DENSE, BM25], [1.0])
    with pytest.raises(OptionError, match=">= 0"):
        weighted_fusion([DENSE], [-1.0])
    with pytest.raises(OptionError, match="did you mean 'rrf'"):
        get_fusion("rff")
    assert set(FUSIONS) == {"rrf", "weighted"}
