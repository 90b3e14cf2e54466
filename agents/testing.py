"""Fakes for agent tests, shipped for users' own tests too.

- :class:`FakeSearchBackend`: canned web results by keyword; can fail, hang or rate-limit.
- :class:`TinyRetriever`: a ``BaseRetriever`` over a list of texts with
  :class:`~orchestrator.testing.HashEmbeddings` (no model, deterministic).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from orchestrator.testing import HashEmbeddings


class RatelimitError(Exception):
    """What a rate-limited search raises (named like ddgs' ``RatelimitException``)."""


class FakeSearchBackend:
    """Search results from a dict ``{keyword: [{"title", "href", "body"}, ...]}``.

    A query gets the results of the first keyword it contains (case-insensitive). ``error``
    makes every call raise it; ``delay`` makes every call sleep first (to test timeouts).
    """

    def __init__(
        self,
        results: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
        *,
        error: BaseException | None = None,
        delay: float = 0.0,
    ) -> None:
        self.results = {k.lower(): [dict(r) for r in v] for k, v in (results or {}).items()}
        self.error = error
        self.delay = delay
        self.queries: list[str] = []

    def __call__(self, query: str, max_results: int) -> list[dict[str, Any]]:
        self.queries.append(query)
        if self.delay:
            time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        lowered = query.lower()
        for keyword, hits in self.results.items():
            if keyword in lowered:
                return [dict(h) for h in hits[:max_results]]
        return []


class TinyRetriever(BaseRetriever):
    """Cosine search over a few texts; metadata ``doc_id`` (``d1``, ``d2``...) and ``score``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    documents: list[Document]
    k: int = Field(default=3, ge=1)
    embeddings: Any = Field(default_factory=HashEmbeddings)
    vectors: list[list[float]] = Field(default_factory=list)

    @classmethod
    def from_texts(cls, texts: Sequence[str], **kwargs: Any) -> TinyRetriever:
        docs = [Document(t, metadata={"doc_id": f"d{i}"}) for i, t in enumerate(texts, 1)]
        return cls(documents=docs, **kwargs)

    def model_post_init(self, context: Any) -> None:
        self.vectors = self.embeddings.embed_documents([d.page_content for d in self.documents])

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        q = self.embeddings.embed_query(query)
        scored = [
            (sum(a * b for a, b in zip(q, v, strict=True)), i) for i, v in enumerate(self.vectors)
        ]
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        out = []
        for score, i in scored[: self.k]:
            doc = self.documents[i]
            out.append(Document(doc.page_content, metadata={**doc.metadata, "score": score}))
        return out
