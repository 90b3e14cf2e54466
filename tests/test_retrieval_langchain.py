"""The retriever passes LangChain's standard retriever suite (real MiniLM + FAISS + BM25)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from orchestrator.retrieval import IndexRetriever, build_index

pytestmark = pytest.mark.integration

TEXTS = [
    "Supersonic flow over a thin wedge produces an attached oblique shock.",
    "Laminar boundary layers on flat plates transfer heat to the wall.",
    "Thin cylindrical shells buckle under axial compression.",
    "Panel flutter appears at high Mach numbers.",
    "Jet noise grows with the eighth power of the exhaust velocity.",
    "Swept wings delay the drag rise near the speed of sound.",
]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lc") / "index"
    build_index([{"doc_id": f"d{i}", "text": t} for i, t in enumerate(TEXTS)], path)
    return path


class _Suite(RetrieversIntegrationTests):
    mode = "hybrid"
    rerank: Any = None

    @pytest.fixture(autouse=True)
    def _index(self, index_dir: Path) -> None:
        type(self).index_path = index_dir

    @property
    def retriever_constructor(self) -> type[IndexRetriever]:
        return IndexRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"index": str(self.index_path), "mode": self.mode, "rerank": self.rerank}

    @property
    def retriever_query_example(self) -> str:
        return "shock waves in supersonic flow"


class TestHybridRetriever(_Suite):
    mode = "hybrid"


class TestDenseRetriever(_Suite):
    mode = "dense"


class TestBM25Retriever(_Suite):
    mode = "bm25"

    @property
    def retriever_query_example(self) -> str:
        return "thin shells, thin wedges and panel flutter in supersonic flow"


class TestHybridLLMRerankRetriever(_Suite):
    rerank = "llm"


def test_hybrid_finds_the_right_chunk_first(index_dir: Path) -> None:
    from orchestrator.retrieval import open_retriever

    docs = open_retriever(index_dir, k=2).invoke("why do cylinders buckle when compressed?")
    assert docs[0].metadata["doc_id"] == "d2"
    assert docs[0].metadata["similarity"] > 0.3
