"""What every index backend (the local directory, PostgreSQL) does the same way: the search
modes, the embedder a stored index names, embedding in batches and the rule of one document
per id. One module, so the two backends cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.errors import DataError, OptionError, unknown_option
from orchestrator.retrieval.bm25 import BM25Params
from orchestrator.retrieval.dense import (
    DEFAULT_EMBEDDING_MODEL,
    EMBEDDING_BACKENDS,
    SentenceTransformerEmbedder,
    UnavailableEmbedder,
)
from orchestrator.retrieval.progress import progress_task
from orchestrator.retrieval.types import Embedder, SourceDocument

MODES = ("dense", "bm25")
#: The index sides each search mode reads (``auto``: whichever the index has, so both).
SIDES = {"dense": ("dense",), "bm25": ("bm25",), "hybrid": MODES, "auto": MODES}
EMBED_BATCH = 64


def check_modes(modes: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(m.strip() for m in modes if m.strip()))
    for mode in chosen:
        if mode not in MODES:
            raise unknown_option(mode, MODES, where="index modes")
    if not chosen:
        raise OptionError("an index needs at least one mode", fix="e.g. modes=('dense', 'bm25')")
    return chosen


def embedder_from_name(name: str, directory: Path) -> Embedder:
    """The embedder for an index opened without one: the bundled model when the manifest names
    it; anything else (a hub id, a path) is never loaded from the manifest's word, see
    :class:`UnavailableEmbedder`."""
    model, _, backend = name.partition("@")
    if model == DEFAULT_EMBEDDING_MODEL and backend in ("", *EMBEDDING_BACKENDS):
        return SentenceTransformerEmbedder(model, backend=backend or "auto")
    return UnavailableEmbedder(name, directory)


def open_embedder(
    manifest: Mapping[str, Any], embedder: Embedder | None, where: str, directory: Path
) -> Embedder | None:
    """The embedder to open a stored index with: ``embedder`` if it is the model the index was
    built with (another one is a :class:`DataError`: its vectors would not compare), else the
    one the manifest names (:func:`embedder_from_name`); ``None`` for a keyword-only index.
    ``where`` names the index in the error."""
    emb = manifest.get("embedding")
    if emb is None:
        return embedder
    if embedder is not None and embedder.name != emb["model"]:
        raise DataError(
            f"{where} was built with embedding model {emb['model']!r}, not {embedder.name!r}",
            fix="query it with the model it was built with, or rebuild the index",
        )
    return embedder or embedder_from_name(str(emb["model"]), directory)


def check_embedder(embedder: Embedder | None) -> None:
    """Raise now if an index's embedding model may not be loaded (see
    :class:`UnavailableEmbedder`), before any work that would need it."""
    if isinstance(embedder, UnavailableEmbedder):
        raise embedder.error()


def check_idf(params: BM25Params, supported: Collection[str], backend: str) -> None:
    """A backend computes only the BM25 idf variants it declares; another is an OptionError."""
    if params.idf not in supported:
        raise OptionError(
            f"the {backend} backend computes BM25 with the {', '.join(map(repr, supported))} "
            f"idf, not {params.idf!r}",
            fix=f"use one of: {', '.join(supported)} (the default is lucene)",
        )


def embed_in_batches(embedder: Embedder, texts: list[str], progress: bool) -> np.ndarray:
    """``texts`` embedded :data:`EMBED_BATCH` at a time (float32, rows in order), with a
    progress bar: the one batching rule of every backend, so a distributed embedder
    (``ray_embed``'s ``embed_batches``, given every batch at once) sees the same batches."""
    if not texts:  # no rows; the embedder (maybe not loaded yet) is not asked its dimension
        return np.zeros((0, 0), np.float32)
    with progress_task("embedding", len(texts), progress) as advance:
        bulk = getattr(embedder, "embed_batches", None)
        if bulk is not None:
            return np.asarray(bulk(texts, EMBED_BATCH, advance), dtype=np.float32)
        parts = []
        for i in range(0, len(texts), EMBED_BATCH):
            batch = texts[i : i + EMBED_BATCH]
            parts.append(np.asarray(embedder.embed_documents(batch), np.float32))
            advance(len(batch))
    return np.concatenate(parts).astype(np.float32)


def check_unique_ids(docs: Sequence[SourceDocument]) -> None:
    """Two different documents under one id in one batch are an error naming both."""
    first: dict[str, tuple[int, SourceDocument]] = {}
    for n, doc in enumerate(docs, 1):
        m, earlier = first.setdefault(doc.doc_id, (n, doc))
        if earlier is not doc and earlier != doc:
            where = " and ".join(
                f"document {i}" + (f" ({d.source})" if d.source else "")
                for i, d in ((m, earlier), (n, doc))
            )
            raise DataError(
                f"two different documents have the id {doc.doc_id!r}: {where}",
                fix="give each document its own id, or drop one of them",
            )


__all__ = [
    "EMBED_BATCH",
    "MODES",
    "check_embedder",
    "check_idf",
    "check_modes",
    "check_unique_ids",
    "embed_in_batches",
    "embedder_from_name",
    "open_embedder",
]
