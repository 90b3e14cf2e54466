"""The retrieval evaluator with fake retrievers: document-level runs, bad input, TREC output."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from langchain_core.documents import Document

from orchestrator.errors import DataError
from orchestrator.evals import read_run
from orchestrator.evals.retrieval import evaluate_retriever, retrieve_run
from orchestrator.retrieval.retriever import CHUNKS_PER_DOC, doc_ranking


def _doc(doc_id: str, score: float, chunk: str = "c") -> Document:
    return Document(
        page_content=f"{doc_id}/{chunk}",
        metadata={"doc_id": doc_id, "chunk_id": chunk, "score": score, "source": ""},
    )


@dataclass
class FakeDataset:
    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    path: Path = Path("fake")


@dataclass
class InvokeOnly:
    """A retriever with only ``invoke(query, k=N)``, like most LangChain retrievers."""

    hits: dict[str, list[Document]]
    calls: list[tuple[str, int]] = field(default_factory=list)

    def invoke(self, query: str, k: int = 4) -> list[Document]:
        self.calls.append((query, k))
        return self.hits[query][:k]


@dataclass
class Batched(InvokeOnly):
    batches: list[list[str]] = field(default_factory=list)

    def search_many(self, queries: list[str], k: int) -> list[list[Document]]:
        self.batches.append(list(queries))
        return [self.hits[q][:k] for q in queries]


HITS = {
    "wing lift": [_doc("d1", 0.9, "a"), _doc("d2", 0.8), _doc("d1", 0.95, "b"), _doc("d3", 0.1)],
    "heat": [_doc("d3", 0.7), _doc("d2", 0.7)],
}
DATA = FakeDataset(
    corpus={d: {"title": "", "text": d} for d in ("d1", "d2", "d3")},
    queries={"1": "wing lift", "2": "heat", "3": "unjudged query"},
    qrels={"1": {"d1": 2, "d2": 0}, "2": {"d2": 1}},
)


def test_a_document_scores_its_best_chunk_in_trec_order() -> None:
    # The core's one rule: best chunk per document, ties by document id descending.
    assert doc_ranking(HITS["wing lift"]) == [("d1", 0.95), ("d2", 0.8), ("d3", 0.1)]
    assert doc_ranking(HITS["heat"]) == [("d3", 0.7), ("d2", 0.7)]
    with pytest.raises(DataError, match="query 'q9' lacks metadata 'doc_id' or 'score'"):
        doc_ranking([Document(page_content="x")], query="q9")


def test_run_keeps_the_top_k_documents_and_uses_batches() -> None:
    retriever = Batched(HITS)
    run = retrieve_run(retriever, {"1": "wing lift", "2": "heat"}, k=2, batch_size=1)
    assert run == {"1": {"d1": 0.95, "d2": 0.8}, "2": {"d3": 0.7, "d2": 0.7}}
    assert retriever.batches == [["wing lift"], ["heat"]] and retriever.calls == []


def test_the_run_fetches_chunks_per_doc_times_k() -> None:
    retriever = InvokeOnly(HITS)
    retrieve_run(retriever, {"1": "wing lift"}, k=1)
    assert CHUNKS_PER_DOC == 3 and retriever.calls == [("wing lift", 3)]
    # With 3 chunks, d1's best chunk (0.95, third hit) is seen: the fold needs the depth.
    assert retrieve_run(InvokeOnly(HITS), {"1": "wing lift"}, k=1) == {"1": {"d1": 0.95}}


def test_evaluate_any_retriever_and_write_a_trec_run(tmp_path: Path) -> None:
    retriever = InvokeOnly(HITS)
    ticks: list[int] = []
    result = evaluate_retriever(
        retriever,
        DATA,
        name="fake run",
        metrics=["map", "P_1"],
        k=10,
        run_file=tmp_path / "fake.trec",
        progress=ticks.append,
    )
    assert [q for q, _ in retriever.calls] == ["wing lift", "heat"]  # judged queries only
    assert result.per_query == {"1": {"map": 1.0, "P_1": 1.0}, "2": {"map": 0.5, "P_1": 0.0}}
    assert result.mean == {"map": 0.75, "P_1": 0.5}
    assert sum(ticks) == 2
    assert read_run(tmp_path / "fake.trec") == result.run
    assert (tmp_path / "fake.trec").read_text().splitlines()[0] == "1 Q0 d1 1 0.95 fake_run"
    assert result.to_json()["pr_curve"][0] == [0.0, 0.75]  # query 2: d3 ties d2, ranks first


def test_a_retriever_naming_unknown_documents_is_an_error() -> None:
    stray = InvokeOnly({"wing lift": [_doc("elsewhere", 1.0)], "heat": []})
    with pytest.raises(DataError, match=r"document 'elsewhere' for query '1'.*not in") as info:
        evaluate_retriever(stray, DATA)
    assert "orchestrator index" in (info.value.fix or "")


def test_an_empty_dataset_is_an_error() -> None:
    empty = FakeDataset(corpus={}, queries={"1": "q"}, qrels={})
    with pytest.raises(DataError, match="no query has relevance judgements"):
        evaluate_retriever(InvokeOnly({}), empty)


def test_ensure_index_refuses_a_directory_without_an_index(tmp_path: Path) -> None:
    from orchestrator.evals.retrieval import ensure_index

    with pytest.raises(DataError, match="holds no index"):
        ensure_index([tmp_path], tmp_path)
    with pytest.raises(DataError, match="no index and no documents"):
        ensure_index([], None)
