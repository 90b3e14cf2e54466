"""The public API: ``build_index``, ``open_retriever`` and the LangChain retriever.

``IndexRetriever`` is a ``BaseRetriever`` over an index directory; ``invoke(query, k=N)`` and
``search_many(queries, k)`` return ``Document``s whose metadata always holds ``doc_id``,
``chunk_id``, ``source`` and ``score`` (higher is better), plus the stage scores
(``similarity``, ``bm25``, ``fused``, ``rerank``) that produced it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from orchestrator.errors import OptionError
from orchestrator.retrieval.analyzer import AnalyzerConfig
from orchestrator.retrieval.bm25 import BM25Params
from orchestrator.retrieval.dense import LangChainEmbedder, SentenceTransformerEmbedder
from orchestrator.retrieval.index import MODES, IndexStore
from orchestrator.retrieval.ingest import ChunkerConfig, load_documents, to_source_documents
from orchestrator.retrieval.rerank import get_reranker
from orchestrator.retrieval.search import Searcher, search_config
from orchestrator.retrieval.storage import MANIFEST
from orchestrator.retrieval.types import Embedder, Hit

_STORES: dict[tuple[str, int, str], IndexStore] = {}
_STORES_LOCK = threading.Lock()


def as_embedder(embedding: Any) -> Embedder | None:
    """``None`` (default model), a model name/path, a LangChain ``Embeddings``, or an Embedder."""
    if embedding is None:
        return None
    if isinstance(embedding, str | Path):
        return SentenceTransformerEmbedder(str(embedding))
    if hasattr(embedding, "embed_documents") and hasattr(embedding, "dimension"):
        return embedding  # type: ignore[no-any-return]
    if hasattr(embedding, "embed_query"):
        return LangChainEmbedder(embedding)
    raise OptionError(f"embedding={embedding!r} is not a model name, path or Embeddings object")


def build_index(
    paths_or_docs: Iterable[Any],
    index_dir: str | Path,
    modes: Sequence[str] = MODES,
    *,
    embedding: Any = None,
    index_kind: str = "auto",
    chunk_size: int = 256,
    chunk_overlap: int = 32,
    analyzer: AnalyzerConfig | None = None,
    bm25: BM25Params | None = None,
    progress: bool = False,
) -> IndexStore:
    """Ingest files/directories (or Documents) into a new index directory and save it.

    To add to or delete from an existing index, use ``IndexStore.open(dir)`` then
    ``add_documents`` / ``delete_documents`` and ``save()``.
    """
    items = list(paths_or_docs)
    is_path = [isinstance(i, str | Path) for i in items]
    if items and all(is_path):
        docs = list(load_documents(items))
    elif any(is_path):
        raise OptionError("build_index got a mix of paths and documents", fix="pass one kind")
    else:
        docs = to_source_documents(items)
    store = IndexStore.create(
        index_dir,
        modes=modes,
        embedder=as_embedder(embedding),
        index_kind=index_kind,
        analyzer=analyzer,
        bm25=bm25,
        chunker=ChunkerConfig(chunk_size, chunk_overlap),
    )
    store.add_documents(docs, progress=progress)
    store.save()
    return store


def open_store(index_dir: str | Path, embedder: Embedder | None = None) -> IndexStore:
    """Open (once per process and index generation) the index in ``index_dir``."""
    path = Path(index_dir).expanduser().resolve()
    try:
        stamp = (path / MANIFEST).stat().st_mtime_ns
    except OSError:
        stamp = -1
    key = (str(path), stamp, embedder.name if embedder is not None else "")
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            for stale in [k for k in _STORES if k[0] == key[0] and k[1] != stamp]:
                del _STORES[stale]
            store = _STORES[key] = IndexStore.open(path, embedder=embedder)
        return store


def hit_document(store: IndexStore, hit: Hit) -> Document:
    chunk = store.chunks[hit.row]
    meta = {
        **chunk.metadata,
        "doc_id": chunk.doc_id,
        "chunk_id": chunk.chunk_id,
        "source": chunk.source,
        "position": chunk.position,
        "score": hit.score,
        **hit.parts,
    }
    return Document(page_content=chunk.text, metadata=meta, id=chunk.chunk_id)


class IndexRetriever(BaseRetriever):
    """A retriever over an index directory (dense, bm25 or hybrid; optional rerank).

    ``options`` are query-time pipeline settings (``fusion``, ``dense_weight``, ``depth``,
    ``feedback_docs``, ...; see ``SearchConfig``). ``min_similarity`` drops chunks whose cosine
    to the query is below it, so an off-topic question retrieves nothing.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    index_dir: str
    mode: str = "hybrid"
    k: int = Field(default=4, ge=1)
    rerank: Any = None
    options: dict[str, Any] = Field(default_factory=dict)
    min_similarity: float | None = None
    embedding: Any = None

    _searcher: Searcher | None = PrivateAttr(default=None)

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            store = open_store(self.index_dir, as_embedder(self.embedding))
            config = search_config(mode=self.mode, **self.options)
            self._searcher = Searcher(store, config, get_reranker(self.rerank))
        return self._searcher

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        return self.search_many([query], k=k)[0]

    def search_many(self, queries: Sequence[str], k: int | None = None) -> list[list[Document]]:
        """Top ``k`` chunks for each query, in one batch (one embedding call for all)."""
        searcher = self.searcher
        results = searcher.search(list(queries), k if k is not None else self.k)
        floor = self.min_similarity
        if floor is not None and not searcher.uses_dense:
            self._add_similarity(queries, results)
        return [
            [
                hit_document(searcher.store, h)
                for h in hits
                if floor is None or h.parts.get("similarity", 1.0) >= floor
            ]
            for hits in results
        ]

    def _add_similarity(self, queries: Sequence[str], results: list[list[Any]]) -> None:
        """bm25 mode computes no cosine; ``min_similarity`` needs one, so embed the queries
        here (an index built without the dense side cannot honour the floor: an error)."""
        searcher = self.searcher
        if searcher.store.vectors is None:
            raise OptionError(
                "min_similarity needs the index's dense vectors, but it was built with bm25 only",
                fix="leave min_similarity unset, or rebuild the index with --modes dense,bm25",
            )
        vectors = searcher._embed(queries)
        for hits, qvec in zip(results, vectors, strict=True):
            searcher._set_similarity(hits, qvec)


def open_retriever(
    index_dir: str | Path, mode: str = "hybrid", rerank: Any = None, k: int = 4, **options: Any
) -> IndexRetriever:
    """A retriever over ``index_dir``, opened now; ``options`` as for :class:`IndexRetriever`
    (``IndexRetriever(...)`` itself opens the index lazily, on the first query)."""
    fields = {"min_similarity", "embedding"}
    extra = {name: options.pop(name) for name in list(options) if name in fields}
    retriever = IndexRetriever(
        index_dir=str(index_dir), mode=mode, rerank=rerank, k=k, options=options, **extra
    )
    retriever.searcher  # noqa: B018  (open now, so a bad directory or option fails here)
    return retriever


def doc_ranking(docs: Sequence[Document]) -> list[tuple[str, float]]:
    """Document-level ranking from chunk hits: a document scores its best chunk's score."""
    best: dict[str, float] = {}
    for doc in docs:
        doc_id, score = str(doc.metadata["doc_id"]), float(doc.metadata["score"])
        if doc_id not in best or score > best[doc_id]:
            best[doc_id] = score
    return sorted(best.items(), key=lambda kv: -kv[1])
