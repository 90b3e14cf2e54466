"""The shapes retrieval is built from: chunks, hits, and the protocols backends implement.

Each backend (embedder, vector index, keyword index, reranker) sits behind a
:class:`typing.Protocol`, so a different implementation (another ANN library, a hosted
embedder in a user's own code) can replace ours without touching the pipeline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: Metadata keys every retrieved ``Document`` carries (the contract other areas code against).
METADATA_KEYS = ("doc_id", "chunk_id", "source", "score")


def chunk_hash(doc_id: str, text: str) -> str:
    """Stable id of a chunk: the same document text always gets the same id across builds."""
    digest = hashlib.blake2b(f"{doc_id}\x00{text}".encode(), digest_size=10)
    return digest.hexdigest()


@dataclass(frozen=True)
class SourceDocument:
    """One input document before chunking. ``pages`` holds ``(page number, text)`` for paged
    formats (PDF): chunks then never straddle two pages and carry their ``page``."""

    doc_id: str
    text: str
    source: str = ""
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    pages: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, the unit that is indexed and retrieved."""

    chunk_id: str
    doc_id: str
    text: str
    source: str = ""
    position: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "text": self.text,
            "source": self.source,
            "position": self.position,
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Chunk:
        return cls(
            chunk_id=str(row["chunk_id"]),
            doc_id=str(row["doc_id"]),
            text=str(row["text"]),
            source=str(row.get("source", "")),
            position=int(row.get("position", 0)),
            metadata=dict(row.get("metadata") or {}),
        )


@dataclass
class Hit:
    """A scored chunk row from one retriever stage; ``score``: higher is better."""

    row: int
    score: float
    parts: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors (inner product = cosine)."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


@runtime_checkable
class VectorIndex(Protocol):
    """Nearest-neighbour search over vectors keyed by integer row ids."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def __len__(self) -> int: ...


@runtime_checkable
class KeywordIndex(Protocol):
    """Term-based scoring over the same rows as the vector index.

    ``counts`` (rows x terms, SciPy sparse) is read by pseudo-relevance feedback to pick
    expansion terms; ``scores_for`` scores weighted terms so an expanded query is one call.
    """

    counts: Any

    def __len__(self) -> int: ...

    def add(self, texts: Sequence[str]) -> None: ...

    def remove_rows(self, rows: np.ndarray) -> None: ...

    def query_terms(self, query: str) -> dict[int, float]: ...

    def scores_for(self, terms: dict[int, float]) -> np.ndarray: ...

    def top_k(self, query: str, k: int) -> list[Hit]: ...


@runtime_checkable
class Reranker(Protocol):
    """Scores (query, passage) pairs; higher is more relevant."""

    def score(self, query: str, passages: Sequence[str]) -> list[float]: ...
