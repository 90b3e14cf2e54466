"""The index backends by name: :data:`INDEX_BACKENDS`, picked by an :class:`IndexSpec`.

A backend makes, opens and searches the stores of one kind of location: ``folder`` (FAISS +
BM25 files, :class:`~orchestrator.retrieval.index.IndexStore`) or ``postgres`` (pgvector and
BM25 in SQL, :class:`~orchestrator.retrieval.postgres.store.PgIndexStore`). Its stores are
:class:`~orchestrator.retrieval.backend.IndexWriter` s; what a search reads is an
:class:`~orchestrator.retrieval.backend.IndexReader`. Adding a backend is one class here and
one entry in the table; the public functions (``build_index``, ``open_retriever``, ...) never
branch on the kind of location.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orchestrator.errors import DataError, OptionError
from orchestrator.retrieval.analyzer import AnalyzerConfig
from orchestrator.retrieval.backend import IndexReader, IndexWriter
from orchestrator.retrieval.bm25 import BM25Params
from orchestrator.retrieval.dense import choose_kind
from orchestrator.retrieval.embedders import UnavailableEmbedder
from orchestrator.retrieval.index import IndexStore
from orchestrator.retrieval.index_rules import check_idf
from orchestrator.retrieval.ingest import ChunkerConfig
from orchestrator.retrieval.location import BackendName, IndexSpec
from orchestrator.retrieval.postgres.search import PgBackend
from orchestrator.retrieval.postgres.store import PgIndexStore
from orchestrator.retrieval.storage import read_manifest
from orchestrator.retrieval.storage import stamp as stamp_of
from orchestrator.retrieval.types import Embedder, SourceDocument

_STORES: dict[tuple[str, Any, str], IndexStore] = {}
_STORES_LOCK = threading.Lock()


@dataclass(frozen=True)
class IndexSettings:
    """What a new index is built with (``build_index``'s keywords)."""

    modes: Sequence[str]
    embedder: Embedder | None = None
    index_kind: str = "auto"
    analyzer: AnalyzerConfig | None = None
    bm25: BM25Params | None = None
    chunker: ChunkerConfig = field(default_factory=ChunkerConfig)


class IndexBackend(Protocol):
    """One entry of :data:`INDEX_BACKENDS`."""

    name: BackendName
    #: The BM25 idf variants its stores compute (see ``bm25.IDF``).
    idf_variants: tuple[str, ...]

    def check(self, settings: IndexSettings) -> None:
        """Refuse settings this backend cannot honour (an index kind, a BM25 idf variant)."""
        ...

    def build(
        self,
        spec: IndexSpec,
        docs: Sequence[SourceDocument],
        settings: IndexSettings,
        progress: bool,
    ) -> IndexWriter:
        """A new index at ``spec`` holding ``docs``, committed (an index there is an error)."""
        ...

    def open(self, spec: IndexSpec, embedder: Embedder | None = None) -> IndexWriter:
        """The index at ``spec``, to edit (a missing one is a DataError)."""
        ...

    def manifest(self, spec: IndexSpec) -> dict[str, Any]:
        """The stored index's settings (modes, embedding, BM25), without loading its data."""
        ...

    def reader(self, spec: IndexSpec, embedder: Embedder | None) -> IndexStore | IndexReader:
        """What a :class:`~orchestrator.retrieval.search.Searcher` searches: an
        :class:`~orchestrator.retrieval.backend.IndexReader` (a folder's in-memory store, which
        ``backend.as_backend`` wraps)."""
        ...

    def is_current(self, searched: Any) -> bool:
        """Whether ``searched`` (from :meth:`reader`) still shows the committed index."""
        ...


class FolderBackend:
    """Indexes in folders: FAISS and BM25 files behind a manifest, loaded into memory."""

    name: BackendName = "folder"
    idf_variants = IndexStore.idf_variants

    def check(self, settings: IndexSettings) -> None:
        choose_kind(settings.index_kind, 0)
        if "bm25" in settings.modes:
            check_idf(settings.bm25 or BM25Params(), self.idf_variants, self.name)

    def build(
        self,
        spec: IndexSpec,
        docs: Sequence[SourceDocument],
        settings: IndexSettings,
        progress: bool,
    ) -> IndexStore:
        store = IndexStore.create(
            str(spec.path),
            modes=settings.modes,
            embedder=settings.embedder,
            index_kind=settings.index_kind,
            analyzer=settings.analyzer,
            bm25=settings.bm25,
            chunker=settings.chunker,
        )
        store.add_documents(docs, progress=progress)
        store.save()
        return store

    def open(self, spec: IndexSpec, embedder: Embedder | None = None) -> IndexStore:
        return IndexStore.open(str(spec.path), embedder=embedder)

    def manifest(self, spec: IndexSpec) -> dict[str, Any]:
        return read_manifest(Path(str(spec.path)).expanduser())

    def reader(self, spec: IndexSpec, embedder: Embedder | None) -> IndexStore:
        return open_store(str(spec.path), embedder)

    def is_current(self, searched: Any) -> bool:
        """One ``stat`` of the manifest notices a save by any process (an add, a delete)."""
        return bool(searched.stamp == stamp_of(searched.directory))


class PostgresBackend:
    """Indexes named inside a PostgreSQL database (pgvector HNSW, BM25 in SQL)."""

    name: BackendName = "postgres"
    idf_variants = PgIndexStore.idf_variants

    def check(self, settings: IndexSettings) -> None:
        if settings.index_kind not in ("auto", "hnsw"):
            raise OptionError(
                f"--index-kind {settings.index_kind} is for the local index; PostgreSQL uses "
                "pgvector HNSW",
                fix="leave --index-kind out with --dsn",
            )
        if "bm25" in settings.modes:
            check_idf(settings.bm25 or BM25Params(), self.idf_variants, self.name)

    def build(
        self,
        spec: IndexSpec,
        docs: Sequence[SourceDocument],
        settings: IndexSettings,
        progress: bool,
    ) -> IndexWriter:
        self.check(settings)
        store = PgIndexStore.new(
            str(spec.dsn),
            str(spec.name),
            modes=settings.modes,
            embedder=settings.embedder,
            analyzer=settings.analyzer,
            bm25=settings.bm25,
            chunker=settings.chunker,
        )
        store.build(docs, progress=progress)
        return store

    def open(self, spec: IndexSpec, embedder: Embedder | None = None) -> IndexWriter:
        return PgIndexStore.open(str(spec.dsn), str(spec.name), embedder=embedder)

    def manifest(self, spec: IndexSpec) -> dict[str, Any]:
        return PgIndexStore.open(str(spec.dsn), str(spec.name)).manifest

    def reader(self, spec: IndexSpec, embedder: Embedder | None) -> IndexReader:
        return PgBackend(PgIndexStore.open(str(spec.dsn), str(spec.name), embedder=embedder))

    def is_current(self, searched: Any) -> bool:
        return True  # each search reads the database's committed state (``PgBackend.read``)


#: The index backends by :attr:`IndexSpec.backend` name.
INDEX_BACKENDS: dict[str, IndexBackend] = {"folder": FolderBackend(), "postgres": PostgresBackend()}


def backend_of(spec: IndexSpec) -> IndexBackend:
    """The backend that holds ``spec``'s index."""
    return INDEX_BACKENDS[spec.backend]


def open_store(index_dir: str | Path, embedder: Embedder | None = None) -> IndexStore:
    """Open (once per process and index generation) the folder index in ``index_dir``.

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


def loadable(embedder: Embedder | None) -> Embedder | None:
    """``embedder``, or None for a stand-in that may not be loaded (reopen with the default)."""
    return None if isinstance(embedder, UnavailableEmbedder) else embedder
