"""Fakes for agent tests, shipped for users' own tests too.

- :class:`FakeSearchBackend`: canned web results by keyword; can fail, hang or rate-limit
  (langchain-core has no fake for a search backend).

For a knowledge base over a few texts use langchain-core's ``InMemoryVectorStore`` with
:class:`~orchestrator.testing.HashEmbeddings` (deterministic, no model)::

    store = InMemoryVectorStore.from_texts(texts, HashEmbeddings(), metadatas=[{"doc_id": ...}])
    KnowledgeBaseTool(retriever=store.as_retriever(search_kwargs={"k": 1}))
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any


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
