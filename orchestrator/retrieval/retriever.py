"""The public API: ``build_index``, ``update_index``, ``open_retriever`` and the retriever.

Two backends, one pipeline: a local index directory (FAISS + BM25 files), or, with
``dsn="postgresql://..."``, an index *named* by the same argument inside PostgreSQL with
pgvector (:mod:`orchestrator.retrieval.postgres`). Search, fusion, feedback, rerank and the
metadata contract are the same for both.

``IndexRetriever`` is a ``BaseRetriever`` over an index; ``invoke(query, k=N)`` and
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
from orchestrator.retrieval.index import IndexStore
from orchestrator.retrieval.index_rules import MODES, check_modes, check_unique_ids
from orchestrator.retrieval.ingest import (
    ChunkerConfig,
    SkipHandler,
    Skipped,
    load_documents,
    nothing_to_index,
    to_source_documents,
    warn_skip,
)
from orchestrator.retrieval.rerank import get_reranker
from orchestrator.retrieval.search import Searcher, search_config
from orchestrator.retrieval.storage import stamp as stamp_of
from orchestrator.retrieval.types import Chunk, Embedder, Hit, SourceDocument

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
    dsn: str | None = None,
) -> Any:
    """Ingest files/directories (or Documents) into a new index directory and save it; with
    ``dsn``, into a new index named ``index_dir`` in that PostgreSQL database (one
    transaction: all of it or nothing). ``embedding`` may be any Embedder object.

    Files that are skipped (unsupported, unreadable, empty) are listed in the returned
    store's ``skipped`` (path and reason) and reported as they are found: a
    :class:`~orchestrator.retrieval.ingest.SkippedFileWarning` each, or a call of ``on_skip``
    instead. Finding nothing to index is a :class:`DataError` naming what was skipped. To add
    to or delete from an existing index, use :func:`update_index`.
    """
    check_modes(modes)  # a typo in the modes is reported before any file is read
    if dsn is not None and index_kind not in ("auto", "hnsw"):
        raise OptionError(
            f"--index-kind {index_kind} is for the local index; PostgreSQL uses pgvector HNSW",
            fix="leave --index-kind out with --dsn",
        )
    docs, skipped = _documents(paths_or_docs, on_skip)
    chunker = ChunkerConfig(chunk_size, chunk_overlap)
    if dsn is not None:
        from orchestrator.retrieval.postgres.store import PgIndexStore

        pg = PgIndexStore.new(
            dsn,
            str(index_dir),
            modes=modes,
            embedder=as_embedder(embedding),
            analyzer=analyzer,
            bm25=bm25,
            chunker=chunker,
        )
        pg.build(docs, progress=progress)
        pg.skipped = skipped
        return pg
    store = IndexStore.create(
        index_dir,
        modes=modes,
        embedder=as_embedder(embedding),
        index_kind=index_kind,
        analyzer=analyzer,
        bm25=bm25,
        chunker=chunker,
    )
    store.add_documents(docs, progress=progress)
    store.save()
    store.skipped = skipped
    return store


def _documents(
    paths_or_docs: Iterable[Any], on_skip: SkipHandler | None
) -> tuple[list[SourceDocument], tuple[Skipped, ...]]:
    """The documents to build from (files/directories read, or Documents converted) and the
    files skipped, each reported to ``on_skip`` (default: a warning) as it is found: the one
    place both backends learn what was left out. Nothing to index is a DataError naming what
    was skipped, two documents under one id another."""
    items = list(paths_or_docs)
    is_path = [isinstance(i, str | Path) for i in items]
    skipped: list[Skipped] = []

    def skip(item: Skipped) -> None:
        skipped.append(item)
        (on_skip or warn_skip)(item)

    if items and all(is_path):
        docs = list(load_documents(items, on_skip=skip))
    elif any(is_path):
        raise OptionError("build_index got a mix of paths and documents", fix="pass one kind")
    else:
        docs = to_source_documents(items)
    if not any(d.text.strip() or d.title.strip() for d in docs):
        raise nothing_to_index(items if all(is_path) else ["the documents given"], skipped)
    check_unique_ids(docs)  # before the directory is created
    return docs, tuple(skipped)


#: Where an index lives: a local directory, or a PostgreSQL database (``dsn``).
BACKENDS = ("local", "postgres")


def check_backend(backend: str | None, dsn: str | None) -> str | None:
    """The DSN to use for ``--backend``: ``postgres`` needs one, ``local`` takes none, and a
    DSN alone (``backend=None``) implies ``postgres``."""
    from orchestrator.errors import unknown_option

    if backend is None:
        return dsn
    if backend not in BACKENDS:
        raise unknown_option(backend, BACKENDS, where="index backend")
    if backend == "local" and dsn is not None:
        raise OptionError(
            "--backend local builds an index directory, but --dsn names a database",
            fix="leave out --dsn to build the directory, or use --backend postgres",
        )
    if backend == "postgres" and dsn is None:
        raise OptionError(
            "--backend postgres needs --dsn (the database to hold the index)",
            fix="add --dsn postgresql://USER:PASSWORD@HOST/DB, or start a local one with "
            "orchestrator db start (it prints the DSN)",
        )
    return dsn


def open_index(index: str | Path, *, dsn: str | None = None, embedding: Any = None) -> Any:
    """The index to edit: the local directory ``index``, or with ``dsn`` the index named
    ``index`` in PostgreSQL (either one's ``add_documents``/``delete_documents`` work)."""
    if dsn is not None:
        from orchestrator.retrieval.postgres.store import PgIndexStore

        return PgIndexStore.open(dsn, str(index), embedder=as_embedder(embedding))
    return IndexStore.open(index, embedder=as_embedder(embedding))


def update_index(
    index: str | Path,
    paths_or_docs: Iterable[Any] = (),
    delete: Sequence[str] = (),
    *,
    dsn: str | None = None,
    embedding: Any = None,
    missing_ok: bool = False,
    progress: bool = False,
    on_skip: SkipHandler | None = None,
) -> tuple[Any, int, int]:
    """Delete documents by id, then add (replace by id) files or Documents; returns (store,
    added chunks, removed chunks). With ``dsn`` both happen in one PostgreSQL transaction; an
    id in ``delete`` the index does not hold is an error unless ``missing_ok``. Skipped files
    are reported as by :func:`build_index` and listed in ``store.skipped``."""
    items = list(paths_or_docs)
    docs, skipped = _documents(items, on_skip) if items else ([], ())
    store = open_index(index, dsn=dsn, embedding=embedding)
    if dsn is not None:
        added, removed = store.update(docs, delete, missing_ok=missing_ok, progress=progress)
    else:
        removed = store.delete_documents(delete, missing_ok=missing_ok)
        added = store.add_documents(docs, progress=progress)
        store.save()
    store.skipped = skipped
    return store, added, removed


def drop_index(name: str, *, dsn: str) -> None:
    """Remove the PostgreSQL index ``name`` and everything in it (one transaction)."""
    from orchestrator.retrieval.postgres.store import PgIndexStore

    PgIndexStore.open(dsn, name).drop()


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
    """A retriever over an index (dense, bm25 or hybrid; optional rerank): the directory
    ``index_dir``, or with ``dsn`` the PostgreSQL index named ``index_dir``.

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
    dsn: str | None = None

    _searcher: Searcher | None = PrivateAttr(default=None)

    @property
    def searcher(self) -> Searcher:
        """The searcher over the index's current generation. One ``stat`` of the manifest per
        query notices a save by any process (an add, a delete) and reopens the index, so a
        deleted document is never served; a removed index is a clear error."""
        current = self._searcher
        if self.dsn is not None:  # each query reads the database's committed state
            return current or self._open_postgres()
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

    def _open_postgres(self) -> Searcher:
        from orchestrator.retrieval.postgres.search import PgBackend
        from orchestrator.retrieval.postgres.store import PgIndexStore

        assert self.dsn is not None
        embedder = as_embedder(self.embedding)
        store = PgIndexStore.open(self.dsn, self.index_dir, embedder=embedder)
        config = search_config(mode=self.mode, **self.options)
        self._searcher = Searcher(PgBackend(store), config, get_reranker(self.rerank))
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
    index_dir: str | Path,
    mode: str = "hybrid",
    rerank: Any = None,
    k: int = 4,
    *,
    dsn: str | None = None,
    **options: Any,
) -> IndexRetriever:
    """A retriever over ``index_dir`` (with ``dsn``: the PostgreSQL index of that name),
    opened now; ``options`` as for :class:`IndexRetriever` (``IndexRetriever(...)`` itself
    opens the index lazily, on the first query)."""
    fields = {"min_similarity", "embedding"}
    extra = {name: options.pop(name) for name in list(options) if name in fields}
    retriever = IndexRetriever(
        index_dir=str(index_dir), mode=mode, rerank=rerank, k=k, options=options, dsn=dsn, **extra
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
