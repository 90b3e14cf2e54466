"""Embedder adapters and the one rule for choosing an index's embedder.

:func:`as_embedder` turns what a caller passes as ``embedding`` (nothing, a model name or
path, a LangChain ``Embeddings``, an Embedder) into an Embedder; :class:`LangChainEmbedder`
adapts LangChain's interface; :class:`UnavailableEmbedder` stands in for a model a stored
index names but that opening it may not load. Kept apart from :mod:`.dense` (the bundled
model and FAISS), which re-exports the two classes, so importing these loads no model code.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.errors import DataError, OptionError
from orchestrator.retrieval.types import Embedder


def as_embedder(embedding: Any) -> Embedder | None:
    """``None`` (default model), a model name/path, a LangChain ``Embeddings``, or an Embedder."""
    if embedding is None:
        return None
    if isinstance(embedding, str | Path):
        from orchestrator.retrieval.dense import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(str(embedding))
    if hasattr(embedding, "embed_documents") and hasattr(embedding, "dimension"):
        return embedding  # type: ignore[no-any-return]
    if hasattr(embedding, "embed_query"):
        return LangChainEmbedder(embedding)
    raise OptionError(f"embedding={embedding!r} is not a model name, path or Embeddings object")


class UnavailableEmbedder:
    """Stands in for an embedding model an index's manifest names but that opening an index
    may not load: only the bundled model, or a model the caller passes, is ever loaded (a
    manifest is data; honouring a hub id in it would download, and a path in it would load
    whatever sits there). Keyword search and deletes still work; embedding is an error."""

    def __init__(self, name: str, directory: Path) -> None:
        self._name, self.directory = name, directory

    @property
    def name(self) -> str:
        return self._name

    def error(self) -> DataError:
        from orchestrator.retrieval.dense import DEFAULT_EMBEDDING_MODEL

        model = self._name.partition("@")[0]
        local = Path(model).expanduser().exists()
        return DataError(
            f"the index {self.directory} was built with the embedding model {model!r}; opening "
            f"an index loads only the bundled {DEFAULT_EMBEDDING_MODEL} or a model you pass, "
            "never one its manifest names",
            fix=f"pass the same model: --embedding {model} (Python: embedding={model!r})"
            if local
            else "rebuild the index with a local model folder (--embedding PATH) and query it "
            "with the same --embedding PATH, or use --mode bm25",
        )

    @property
    def dimension(self) -> int:
        raise self.error()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        raise self.error()

    def embed_query(self, text: str) -> np.ndarray:
        raise self.error()


class LangChainEmbedder:
    """Adapts a LangChain ``Embeddings`` (e.g. ``HashEmbeddings`` in tests) to ``Embedder``."""

    def __init__(self, embeddings: Any, name: str | None = None) -> None:
        self.embeddings = embeddings
        self._name = name or type(embeddings).__name__

    @property
    def name(self) -> str:
        return self._name

    @cached_property
    def dimension(self) -> int:
        return int(self.embed_query("dimension probe").shape[0])

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return normalise(np.asarray(self.embeddings.embed_documents(list(texts)), np.float32))

    def embed_query(self, text: str) -> np.ndarray:
        return normalise(np.asarray([self.embeddings.embed_query(text)], np.float32))[0]


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows kept), float32 and contiguous."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms == 0, 1.0, norms), dtype=np.float32)


__all__ = ["LangChainEmbedder", "UnavailableEmbedder", "as_embedder", "normalise"]
