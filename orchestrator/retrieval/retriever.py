"""The public API: ``build_index``, ``update_index``, ``open_retriever`` and the retriever.

Every backend, one pipeline: an index is located by an
:class:`~orchestrator.retrieval.location.IndexSpec` (a folder of FAISS + BM25 files, or an
index named inside PostgreSQL with pgvector), opened by its backend from
:data:`~orchestrator.retrieval.stores.INDEX_BACKENDS`, and searched by the shared
:class:`~orchestrator.retrieval.search.Searcher`. Search, fusion, feedback, rerank and the
metadata contract are the same for every backend. Building and editing are in
:mod:`orchestrator.retrieval.indexing` (re-exported here).

``IndexRetriever`` is a ``BaseRetriever`` over an index; ``invoke(query, k=N)`` and
``search_many(queries, k)`` return ``Document``s whose metadata always holds ``doc_id``,
``chunk_id``, ``source`` and ``score`` (higher is better), plus the stage scores
(``similarity``, ``bm25``, ``fused``, ``rerank``) that produced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from orchestrator.errors import DataError, OptionError
from orchestrator.retrieval.embedders import as_embedder
from orchestrator.retrieval.index import IndexStore
from orchestrator.retrieval.indexing import (
    BACKENDS,
    build_index,
    check_backend,
    drop_index,
    open_index,
    update_index,
)
from orchestrator.retrieval.location import IndexSpec
from orchestrator.retrieval.rerank import get_reranker
from orchestrator.retrieval.search import Searcher, search_config
from orchestrator.retrieval.stores import backend_of, loadable, open_store
from orchestrator.retrieval.types import Chunk, Hit


def hit_document(store: IndexStore, hit: Hit) -> Document:
    """The Document for a hit on a local index (see :func:`chunk_document`)."""
    return chunk_document(store.chunks[hit.row], hit)


def chunk_document(chunk: Chunk, hit: Hit) -> Document:
    """A retrieved chunk as a Document: its text, and metadata holding the chunk's own
    metadata plus ``doc_id``, ``chunk_id``, ``source``, ``position``, ``score`` and the stage
    scores (the citations contract, the same for every backend)."""
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
    """A retriever over the index at ``index`` (dense, bm25 or hybrid; optional rerank).

    ``options`` are query-time pipeline settings (``fusion``, ``dense_weight``, ``depth``,
    ``feedback_docs``, ...; see ``SearchConfig``). ``min_similarity`` drops chunks whose cosine
    to the query is below it, so an off-topic question retrieves nothing.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    index: IndexSpec
    mode: str = "hybrid"
    k: int = Field(default=4, ge=1)
    rerank: Any = None
    options: dict[str, Any] = Field(default_factory=dict)
    min_similarity: float | None = None
    embedding: Any = None

    _searcher: Searcher | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _locate(cls, data: Any) -> Any:
        """``index`` as a spec: a str/Path is a folder."""
        if isinstance(data, dict) and isinstance(data.get("index"), str | Path):
            data = {**data, "index": IndexSpec.of(data["index"])}
        return data

    @property
    def searcher(self) -> Searcher:
        """The searcher over the index as now committed: its backend says whether the open
        one still is (a folder: one ``stat`` of the manifest per query notices a save by any
        process, so a deleted document is never served); a removed index is a clear error."""
        current, backend = self._searcher, backend_of(self.index)
        if current is not None and backend.is_current(current.store):
            return current
        if current is None:
            embedder, reranker = as_embedder(self.embedding), get_reranker(self.rerank)
        else:  # keep the loaded models across generations
            embedder, reranker = loadable(current.backend.embedder), current.reranker
        store = backend.reader(self.index, embedder)
        self._searcher = Searcher(store, search_config(mode=self.mode, **self.options), reranker)
        return self._searcher

    @property
    def has_vectors(self) -> bool:
        """Whether the index has dense vectors (a similarity floor can apply)."""
        return self.searcher.backend.has_vectors()

    @property
    def modes(self) -> list[str]:
        """The sides the index was built with (``dense``, ``bm25``)."""
        return list(self.searcher.backend.manifest["modes"])

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        return self.search_many([query], k=k)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int | None = None,
        *,
        dense_texts: Sequence[str] | None = None,
    ) -> list[list[Document]]:
        """Top ``k`` chunks for each query, in one batch (one embedding call for all);
        ``dense_texts`` as for :meth:`Searcher.search` (then ``similarity`` is their cosine)."""
        searcher = self.searcher
        floor = self.min_similarity

        def run() -> tuple[list[list[Hit]], list[Chunk]]:
            results = searcher.search(
                list(queries), k if k is not None else self.k, dense_texts=dense_texts
            )
            if floor is not None and not searcher.uses_dense:
                self._add_similarity(queries, results)
            results = [
                [h for h in hits if floor is None or h.parts.get("similarity", 1.0) >= floor]
                for hits in results
            ]
            return results, searcher.backend.chunks_of([h.row for hits in results for h in hits])

        results, chunks = searcher.backend.read(run)
        found = iter(chunks)
        return [[chunk_document(next(found), h) for h in hits] for hits in results]

    def _add_similarity(self, queries: Sequence[str], results: list[list[Any]]) -> None:
        """bm25 mode computes no cosine; ``min_similarity`` needs one, so embed the queries
        here (an index built without the dense side cannot honour the floor: an error)."""
        searcher = self.searcher
        if not searcher.backend.has_vectors():
            raise OptionError(
                "min_similarity needs the index's dense vectors, but it was built with bm25 only",
                fix="leave min_similarity unset, or rebuild the index with --modes dense,bm25",
            )
        vectors = searcher._embed(queries)
        for hits, qvec in zip(results, vectors, strict=True):
            searcher._set_similarity(hits, qvec)


def open_retriever(
    index: IndexSpec | str | Path,
    mode: str = "hybrid",
    rerank: Any = None,
    k: int = 4,
    **options: Any,
) -> IndexRetriever:
    """A retriever over the index at ``index`` (a str/Path is a folder), opened now;
    ``options`` as for :class:`IndexRetriever` (``IndexRetriever(...)`` itself opens the index
    lazily, on the first query)."""
    fields = {"min_similarity", "embedding"}
    extra = {name: options.pop(name) for name in list(options) if name in fields}
    spec = IndexSpec.of(index)
    retriever = IndexRetriever(index=spec, mode=mode, rerank=rerank, k=k, options=options, **extra)
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


__all__ = [
    "BACKENDS",
    "CHUNKS_PER_DOC",
    "IndexRetriever",
    "as_embedder",
    "build_index",
    "check_backend",
    "chunk_document",
    "doc_ranking",
    "drop_index",
    "hit_document",
    "open_index",
    "open_retriever",
    "open_store",
    "update_index",
]
