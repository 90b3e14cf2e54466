"""The two faces of an index backend: :class:`IndexReader` (what the query pipeline reads, so
one :class:`~orchestrator.retrieval.search.Searcher` serves every backend) and
:class:`IndexWriter` (what building and editing an index does). The backends themselves, and
the name table that picks one from an :class:`~orchestrator.retrieval.location.IndexSpec`,
are in :mod:`orchestrator.retrieval.stores`.

The pipeline's rules (fusion, pseudo-relevance feedback, distinct chunks, rerank floors,
similarity) live once, in :mod:`orchestrator.retrieval.search`; a backend only answers the
questions below. Rows are opaque integers a backend chooses: the local folder uses row
positions, PostgreSQL its chunk keys. Keyword terms are integer columns a backend chooses too;
the feedback step only needs ``term_counts`` to use the same columns as ``query_terms``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from orchestrator.retrieval.bm25 import top_hits
from orchestrator.retrieval.index import IndexStore
from orchestrator.retrieval.ingest import Skipped
from orchestrator.retrieval.types import Chunk, Embedder, Hit, SourceDocument

T = TypeVar("T")


@runtime_checkable
class IndexReader(Protocol):
    """The reads a search needs; every method sees the index's current committed state.
    Besides the chunks, it answers the scoring questions the shared pipeline asks (keyword
    and dense candidates, feedback term counts and vectors), which each backend computes its
    own way (numpy and FAISS, or SQL and pgvector)."""

    @property
    def label(self) -> str:
        """Names the index in errors (a directory, or ``index NAME in postgresql://...``)."""
        ...

    @property
    def manifest(self) -> dict[str, Any]:
        """Holds at least ``modes`` and ``embedding`` (``{"model", "dimension"}`` or None)."""
        ...

    @property
    def embedder(self) -> Embedder | None: ...

    @property
    def shadowed(self) -> frozenset[int]:
        """Rows repeating an earlier row's chunk (old local indexes only); search skips them."""
        ...

    def read(self, work: Callable[[], T]) -> T:
        """Run ``work`` (a whole search) against one consistent view of the index."""
        ...

    def check_embedder(self) -> None: ...

    def has_chunks(self) -> bool: ...

    def has_vectors(self) -> bool: ...

    def query_terms(self, query: str) -> dict[int, float]: ...

    def keyword_hits(self, terms: dict[int, float], depth: int) -> list[Hit]: ...

    def dense_hits(self, qvec: np.ndarray, depth: int) -> list[Hit]: ...

    def term_counts(self, rows: Sequence[int]) -> Any: ...

    def vectors_of(self, rows: Sequence[int]) -> np.ndarray: ...

    def chunk_keys(self, rows: Sequence[int]) -> list[str]: ...

    def chunks_of(self, rows: Sequence[int]) -> list[Chunk]: ...


#: The former name of :class:`IndexReader`.
SearchBackend = IndexReader


@runtime_checkable
class IndexWriter(Protocol):
    """What building and editing an index does, the same on every backend. Every method but
    ``add_documents``/``delete_documents`` (folder: kept in memory until ``save``) commits."""

    #: The BM25 idf variants (:data:`~orchestrator.retrieval.bm25.IDF` names) it computes.
    idf_variants: tuple[str, ...]
    #: Files the ``build_index``/``update_index`` call that returned this store left out.
    skipped: tuple[Skipped, ...]

    @property
    def label(self) -> str: ...

    @property
    def manifest(self) -> dict[str, Any]: ...

    @property
    def embedder(self) -> Embedder | None: ...

    @property
    def doc_ids(self) -> list[str]: ...

    def counts(self) -> dict[str, int]:
        """``{"documents": N, "chunks": M}`` as now stored."""
        ...

    def check_embedder(self) -> None:
        """Raise if the index's embedding model may not be loaded, before any work."""
        ...

    def add_documents(self, docs: Sequence[SourceDocument], progress: bool = False) -> int: ...

    def delete_documents(
        self, doc_ids: Sequence[str] | set[str], *, missing_ok: bool = True
    ) -> int: ...

    def update(
        self,
        add: Sequence[SourceDocument] = (),
        delete: Sequence[str] = (),
        *,
        missing_ok: bool = True,
        progress: bool = False,
    ) -> tuple[int, int]:
        """Delete by id, add (replace by id), commit: (added chunks, removed chunks)."""
        ...

    def save(self) -> None: ...

    def drop(self) -> None:
        """Remove the index and everything in it (a missing one is no error)."""
        ...


class LocalBackend:
    """:class:`IndexReader` over an in-memory :class:`IndexStore` (FAISS + BM25 folder)."""

    def __init__(self, store: IndexStore) -> None:
        self.store = store

    @property
    def label(self) -> str:
        return str(self.store.directory)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.store.manifest

    @property
    def embedder(self) -> Embedder | None:
        return self.store.embedder

    @property
    def shadowed(self) -> frozenset[int]:
        return self.store.shadowed

    def read(self, work: Callable[[], T]) -> T:
        return work()  # the store is in memory: nothing changes under a search

    def check_embedder(self) -> None:
        self.store.check_embedder()

    def has_chunks(self) -> bool:
        return bool(self.store.chunks)

    def has_vectors(self) -> bool:
        return self.store.vectors is not None

    def query_terms(self, query: str) -> dict[int, float]:
        bm25 = self.store.bm25
        return bm25.query_terms(query) if bm25 is not None else {}

    def keyword_hits(self, terms: dict[int, float], depth: int) -> list[Hit]:
        assert self.store.bm25 is not None
        return top_hits(self.store.bm25.scores_for(terms), depth, "bm25")

    def dense_hits(self, qvec: np.ndarray, depth: int) -> list[Hit]:
        store = self.store
        assert store.dense is not None
        scores, ids = store.dense.search(qvec[None, :], depth)
        valid = ids[0] >= 0
        rows = np.searchsorted(store.ids, ids[0][valid])
        return [
            Hit(int(r), float(s), {"similarity": float(s)})
            for r, s in zip(rows, scores[0][valid], strict=True)
        ]

    def term_counts(self, rows: Sequence[int]) -> Any:
        assert self.store.bm25 is not None
        return self.store.bm25.counts[np.asarray(rows, dtype=np.int64)]

    def vectors_of(self, rows: Sequence[int]) -> np.ndarray:
        assert self.store.vectors is not None
        return self.store.vectors[np.asarray(rows, dtype=np.int64)]

    def chunk_keys(self, rows: Sequence[int]) -> list[str]:
        chunks = self.store.chunks
        return [chunks[r].chunk_id for r in rows]

    def chunks_of(self, rows: Sequence[int]) -> list[Chunk]:
        chunks = self.store.chunks
        return [chunks[r] for r in rows]


def as_backend(store: Any) -> IndexReader:
    """The backend for ``store``: a local :class:`IndexStore` is wrapped, a backend kept."""
    if isinstance(store, IndexStore):
        return LocalBackend(store)
    return store  # type: ignore[no-any-return]
