"""Hybrid retrieval: ingestion, BM25, dense (FAISS), fusion, rerank and a persistent index.

Everything is exported lazily, so ``import orchestrator`` does not pull in FAISS or torch.

    from orchestrator.retrieval import IndexSpec, build_index, open_retriever
    build_index(["docs/"], "my-index")       # a folder; IndexSpec.of("docs", dsn) for PostgreSQL
    retriever = open_retriever("my-index", mode="hybrid", k=4)
    retriever.invoke("how do I ...?")
"""

from __future__ import annotations

from typing import Any

from orchestrator.lazy import lazy_getattr

_LAZY = {
    "build_index": "orchestrator.retrieval.retriever",
    "open_retriever": "orchestrator.retrieval.retriever",
    "update_index": "orchestrator.retrieval.retriever",
    "drop_index": "orchestrator.retrieval.retriever",
    "open_store": "orchestrator.retrieval.retriever",
    "open_index": "orchestrator.retrieval.retriever",
    "INDEX_BACKENDS": "orchestrator.retrieval.stores",
    "IndexReader": "orchestrator.retrieval.backend",
    "IndexWriter": "orchestrator.retrieval.backend",
    "doc_ranking": "orchestrator.retrieval.retriever",
    "IndexRetriever": "orchestrator.retrieval.retriever",
    "IndexStore": "orchestrator.retrieval.index",
    "IndexSpec": "orchestrator.retrieval.location",
    "load_beir": "orchestrator.retrieval.beir",
    "BeirDataset": "orchestrator.retrieval.beir",
    "load_documents": "orchestrator.retrieval.ingest",
    "Chunker": "orchestrator.retrieval.ingest",
    "ChunkerConfig": "orchestrator.retrieval.ingest",
    "Analyzer": "orchestrator.retrieval.analyzer",
    "AnalyzerConfig": "orchestrator.retrieval.analyzer",
    "BM25Index": "orchestrator.retrieval.bm25",
    "BM25Params": "orchestrator.retrieval.bm25",
    "SentenceTransformerEmbedder": "orchestrator.retrieval.dense",
    "FaissVectorIndex": "orchestrator.retrieval.dense",
    "FUSIONS": "orchestrator.retrieval.fusion",
    "rrf_fusion": "orchestrator.retrieval.fusion",
    "weighted_fusion": "orchestrator.retrieval.fusion",
    "LLMReranker": "orchestrator.retrieval.rerank",
    "CrossEncoderReranker": "orchestrator.retrieval.rerank",
    "SearchConfig": "orchestrator.retrieval.search",
    "SourceDocument": "orchestrator.retrieval.types",
    "Chunk": "orchestrator.retrieval.types",
    "Embedder": "orchestrator.retrieval.types",
    "VectorIndex": "orchestrator.retrieval.types",
    "KeywordIndex": "orchestrator.retrieval.types",
    "Reranker": "orchestrator.retrieval.types",
}


__getattr__ = lazy_getattr("orchestrator.retrieval", _LAZY)


def search_many(retriever: Any, queries: list[str], k: int) -> list[list[Any]]:
    """Batch search with any retriever: ours in one batch, others one ``invoke`` per query."""
    if hasattr(retriever, "search_many"):
        return retriever.search_many(queries, k)  # type: ignore[no-any-return]
    return [retriever.invoke(q, k=k) for q in queries]


__all__ = [*sorted(_LAZY), "search_many"]
