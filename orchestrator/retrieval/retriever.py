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

from orchestrator.errors import DataError, OptionError
from orchestrator.retrieval.analyzer import AnalyzerConfig
from orchestrator.retrieval.bm25 import BM25Params
from orchestrator.retrieval.dense import (
    LangChainEmbedder,
    SentenceTransformerEmbedder,
    UnavailableEmbedder,
)
from orchestrator.retrieval.index import MODES, IndexStore, check_modes, check_unique_ids
from orchestrator.retrieval.ingest import (
    ChunkerConfig,
    SkipHandler,
    Skipped,
    load_documents,
    log_skip,
    nothing_to_index,
    to_source_documents,
)
from orchestrator.retrieval.rerank import get_reranker
from orchestrator.retrieval.search import Searcher, search_config
from orchestrator.retrieval.storage import stamp as stamp_of
from orchestrator.retrieval.types import Embedder, Hit

_STORES: dict[tuple[str, Any, str], IndexStore] = {}
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
    on_skip: SkipHandler | None = None,
) -> IndexStore:
    """Ingest files/directories (or Documents) into a new index directory and save it.

    Files that are skipped (unsupported, unreadable, empty) go to ``on_skip`` (default: a
    logged warning); finding nothing to index is a :class:`DataError` naming what was skipped.
    To add to or delete from an existing index, use ``IndexStore.open(dir)`` then
    ``add_documents`` / ``delete_documents`` and ``save()``.
    """
    check_modes(modes)  # a typo in the modes is reported before any file is read
    items = list(paths_or_docs)
    is_path = [isinstance(i, str | Path) for i in items]
    skipped: list[Skipped] = []

    def skip(item: Skipped) -> None:
        skipped.append(item)
        (on_skip or log_skip)(item)

    if items and all(is_path):
        docs = list(load_documents(items, on_skip=skip))
    elif any(is_path):
        raise OptionError("build_index got a mix of paths and documents", fix="pass one kind")
    else:
        docs = to_source_documents(items)
    if not any(d.text.strip() or d.title.strip() for d in docs):
        raise nothing_to_index(items if all(is_path) else ["the documents given"], skipped)
    check_unique_ids(docs)  # before the directory is created
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
    """Open (once per process and index generation) the index in ``index_dir``.

    A save by another process between reading the manifest and its part files (which the
    save then deletes) is retried on the newer generation, a few times."""
    path = Path(index_dir).expanduser().resolve()
    name = embedder.name if embedder is not None else ""
    with _STORES_LOCK:
        for attempt in range(3):
            stamp = stamp_of(path)
            store = _STORES.get((str(path), stamp, name))
            if store is not None:
                return store
            try:
                store = IndexStore.open(path, embedder=embedder)
            except DataError:
                if attempt == 2 or stamp_of(path) == stamp:
                    raise
                continue
            for stale in [k for k in _STORES if k[0] == str(path) and k[1] != store.stamp]:
                del _STORES[stale]
            _STORES[(str(path), store.stamp, name)] = store
            return store
    raise AssertionError("unreachable")


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
        """The searcher over the index's current generation. One ``stat`` of the manifest per
        query notices a save by any process (an add, a delete) and reopens the index, so a
        deleted document is never served; a removed index is a clear error."""
        current = self._searcher
        if current is not None and current.store.stamp == stamp_of(current.store.directory):
            return current
        if current is None:
            embedder, reranker = as_embedder(self.embedding), get_reranker(self.rerank)
        else:  # keep the loaded models across generations
            embedder, reranker = current.store.embedder, current.reranker
            if isinstance(embedder, UnavailableEmbedder):
                embedder = None
        store = open_store(self.index_dir, embedder)
        config = search_config(mode=self.mode, **self.options)
        self._searcher = Searcher(store, config, reranker)
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


#: Chunks fetched per wanted document when ranking documents (one document may own several of
#: the top chunks). The one value used by ``search --run-out``, the evaluators and benchmarks.
CHUNKS_PER_DOC = 3


def doc_ranking(docs: Sequence[Any], *, query: str = "?") -> list[tuple[str, float]]:
    """Document-level ranking from chunk hits: a document scores its best chunk's score.

    The one place for this rule (CLI runs, evaluators, benchmarks). Ties go by document id
    descending, trec_eval's order, so a written run lists documents as they are scored. A hit
    without ``doc_id``/``score`` metadata is a :class:`DataError` naming ``query``.
    """
    best: dict[str, float] = {}
    for doc in docs:
        meta = getattr(doc, "metadata", None) or {}
        if "doc_id" not in meta or "score" not in meta:
            raise DataError(
                f"a document retrieved for query {query!r} lacks metadata 'doc_id' or 'score'",
                fix="a retriever ranked by document must set metadata doc_id and score on each hit",
            )
        doc_id, score = str(meta["doc_id"]), float(meta["score"])
        if doc_id not in best or score > best[doc_id]:
            best[doc_id] = score
    return sorted(best.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
