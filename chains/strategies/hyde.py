"""``hyde``: a model-written hypothetical answer is the dense query; BM25 keeps the question."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import Field

from orchestrator.chains.sources import Sources, Trace, search_many_docs
from orchestrator.chains.strategies.fusion import fuse_documents
from orchestrator.chains.strategies.queries import generate_text
from orchestrator.prompts.library import HYDE


class HydeSources(Sources):
    """HyDE: the model writes a passage answering the question; see :func:`hyde_search`."""

    strategy: ClassVar[str] = "hyde"
    llm: Runnable[Any, Any]
    passage_tokens: int = Field(default=96, ge=8)

    def plan(self, question: str, config: RunnableConfig | None = None) -> Trace:
        passage = generate_text(
            self.llm, HYDE, {"question": question}, max_tokens=self.passage_tokens, config=config
        )
        return {"queries": [question], "hypothetical": passage or question}

    def search(
        self, plans: Sequence[Trace], k: int | None, config: RunnableConfig | None = None
    ) -> list[list[Document]]:
        questions = [p["queries"][0] for p in plans]
        passages = [p["hypothetical"] for p in plans]
        return hyde_search(self.retriever, questions, passages, self.k_or_default(k))


def hyde_search(
    retriever: Any, questions: Sequence[str], passages: Sequence[str], k: int
) -> list[list[Document]]:
    """Top ``k`` per question: on our index retriever (dense or hybrid, local or PostgreSQL),
    the passage's vector is the dense query and the question the BM25 query of the same
    pipeline (fusion, feedback, rerank against the question, ``min_similarity`` as configured;
    ``similarity`` is then the cosine to the passage). Elsewhere, the question's and the
    passage's rankings are fused by RRF."""
    searcher = getattr(retriever, "searcher", None)
    backend = getattr(searcher, "backend", None)
    if searcher is None or backend is None or not searcher.uses_dense or not backend.has_vectors():
        lists = search_many_docs(retriever, [*questions, *passages], k)
        n = len(questions)
        return [fuse_documents([lists[i], lists[n + i]], k) for i in range(n)]
    return retriever.search_many(list(questions), k, dense_texts=list(passages))  # type: ignore[no-any-return]
