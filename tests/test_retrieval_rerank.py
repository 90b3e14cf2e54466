"""Rerankers: the local-LLM reranker and a CrossEncoder loaded from a local directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import OptionError
from orchestrator.retrieval import build_index, open_retriever
from orchestrator.retrieval.rerank import CrossEncoderReranker, LLMReranker, get_reranker

pytestmark = pytest.mark.integration

QUERY = "What is the capital of France?"
PASSAGES = [
    "Paris is the capital and largest city of France.",
    "Photosynthesis converts light energy into chemical energy in plants.",
]


def test_llm_reranker_prefers_the_relevant_passage() -> None:
    scores = LLMReranker().score(QUERY, PASSAGES)
    assert len(scores) == 2
    assert scores[0] > scores[1]


class KeywordReranker:
    """A reranker that ranks passages containing 'helicopter' first."""

    def score(self, query: str, passages: list[str]) -> list[float]:
        return [float("helicopter" in p) for p in passages]


def test_rerank_stage_reorders_the_top_candidates(tmp_path: Path) -> None:
    docs = [{"doc_id": f"d{i}", "text": f"rotor blade study number {i}"} for i in range(5)]
    docs.append({"doc_id": "heli", "text": "a rotor blade of a helicopter"})
    build_index(docs, tmp_path / "i", modes=("bm25",))
    plain = open_retriever(tmp_path / "i", mode="bm25", k=6).invoke("rotor blade study")
    assert plain[0].metadata["doc_id"] != "heli"
    reranked = open_retriever(tmp_path / "i", mode="bm25", k=6, rerank=KeywordReranker())
    top = reranked.invoke("rotor blade study")
    assert top[0].metadata["doc_id"] == "heli"
    assert top[0].metadata["rerank"] == 1.0
    shallow = open_retriever(
        tmp_path / "i", mode="bm25", k=6, rerank=KeywordReranker(), rerank_depth=2
    ).invoke("rotor blade study")
    assert [d.metadata["doc_id"] for d in shallow] == [d.metadata["doc_id"] for d in plain]
    scores = [d.metadata["score"] for d in shallow]
    assert scores == sorted(scores, reverse=True)


def test_cross_encoder_loads_from_a_local_directory(tmp_path: Path) -> None:
    from sentence_transformers import CrossEncoder

    from orchestrator.retrieval.dense import default_model_dir

    CrossEncoder(str(default_model_dir()), num_labels=1, device="cpu").save(str(tmp_path / "ce"))
    reranker = get_reranker(str(tmp_path / "ce"))
    assert isinstance(reranker, CrossEncoderReranker)
    first = reranker.score(QUERY, PASSAGES)
    assert len(first) == 2 and first == reranker.score(QUERY, PASSAGES)


def test_unknown_rerank_specs_are_errors(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="not a local directory"):
        get_reranker("cross-encoder/ms-marco-MiniLM-L-6-v2")
    with pytest.raises(OptionError, match="not understood"):
        get_reranker(42)
    assert get_reranker("none") is None
