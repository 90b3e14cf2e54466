"""Building and editing indexes: ``build_index``, ``update_index``, ``open_index``,
``drop_index``, on any backend of :data:`~orchestrator.retrieval.stores.INDEX_BACKENDS`.

Each takes the index as an :class:`~orchestrator.retrieval.location.IndexSpec`, or a str/Path
(a folder); ``IndexSpec.of(name, dsn)`` names an index inside PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from orchestrator.errors import OptionError
from orchestrator.retrieval.analyzer import AnalyzerConfig
from orchestrator.retrieval.backend import IndexWriter
from orchestrator.retrieval.bm25 import BM25Params
from orchestrator.retrieval.embedders import as_embedder
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
from orchestrator.retrieval.location import IndexSpec
from orchestrator.retrieval.stores import IndexSettings, backend_of
from orchestrator.retrieval.types import SourceDocument

#: Where an index lives (``--backend``): the names of ``INDEX_BACKENDS``; ``local`` is the
#: CLI's older word for ``folder``.
BACKENDS = ("local", "folder", "postgres")


def build_index(
    paths_or_docs: Iterable[Any],
    index: IndexSpec | str | Path,
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
) -> Any:
    """Ingest files/directories (or Documents) into a new index at ``index`` and commit it: a
    folder, or an index named inside PostgreSQL (one transaction: all of it or nothing).
    ``embedding`` may be any Embedder object.

    Files that are skipped (unsupported, unreadable, empty) are listed in the returned
    store's ``skipped`` (path and reason) and reported as they are found: a
    :class:`~orchestrator.retrieval.ingest.SkippedFileWarning` each, or a call of ``on_skip``
    instead. Finding nothing to index is a :class:`DataError` naming what was skipped. To add
    to or delete from an existing index, use :func:`update_index`.
    """
    spec = IndexSpec.of(index)
    check_modes(modes)  # a typo in the modes is reported before any file is read
    settings = IndexSettings(
        modes=modes,
        embedder=as_embedder(embedding),
        index_kind=index_kind,
        analyzer=analyzer,
        bm25=bm25,
        chunker=ChunkerConfig(chunk_size, chunk_overlap),
    )
    backend = backend_of(spec)
    backend.check(settings)  # a setting the backend cannot honour, before any file is read
    docs, skipped = _documents(paths_or_docs, on_skip)
    store = backend.build(spec, docs, settings, progress)
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


def check_backend(backend: str | None, dsn: str | None) -> str | None:
    """The DSN to use for ``--backend``: ``postgres`` needs one, ``folder``/``local`` takes
    none, and a DSN alone (``backend=None``) implies ``postgres``."""
    from orchestrator.errors import unknown_option

    if backend is None:
        return dsn
    if backend not in BACKENDS:
        raise unknown_option(backend, BACKENDS, where="index backend")
    if backend != "postgres" and dsn is not None:
        raise OptionError(
            f"--backend {backend} builds an index directory, but --dsn names a database",
            fix="leave out --dsn to build the directory, or use --backend postgres",
        )
    if backend == "postgres" and dsn is None:
        raise OptionError(
            "--backend postgres needs --dsn (the database to hold the index)",
            fix="add --dsn postgresql://USER:PASSWORD@HOST/DB, or start a local one with "
            "orchestrator db start (it prints the DSN)",
        )
    return dsn


def open_index(index: IndexSpec | str | Path, *, embedding: Any = None) -> IndexWriter:
    """The index at ``index``, to edit (its ``update``/``add_documents``/``delete_documents``
    work the same on every backend); a missing one is a DataError."""
    spec = IndexSpec.of(index)
    return backend_of(spec).open(spec, as_embedder(embedding))


def update_index(
    index: IndexSpec | str | Path,
    paths_or_docs: Iterable[Any] = (),
    delete: Sequence[str] = (),
    *,
    embedding: Any = None,
    missing_ok: bool = False,
    progress: bool = False,
    on_skip: SkipHandler | None = None,
) -> tuple[Any, int, int]:
    """Delete documents by id, then add (replace by id) files or Documents, and commit;
    returns (store, added chunks, removed chunks). On PostgreSQL both happen in one
    transaction; an id in ``delete`` the index does not hold is an error unless
    ``missing_ok``. Skipped files are reported as by :func:`build_index` and listed in
    ``store.skipped``."""
    items = list(paths_or_docs)
    docs, skipped = _documents(items, on_skip) if items else ([], ())
    store = open_index(index, embedding=embedding)
    added, removed = store.update(docs, delete, missing_ok=missing_ok, progress=progress)
    store.skipped = skipped
    return store, added, removed


def drop_index(index: IndexSpec | str | Path) -> None:
    """Remove the index at ``index`` and everything in it (PostgreSQL: one transaction; a
    folder: its index files, then the folder if it is left empty). A missing index is a
    DataError, as for :func:`open_index`."""
    spec = IndexSpec.of(index)
    backend_of(spec).open(spec).drop()
