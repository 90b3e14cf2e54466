"""``multi_hop``: retrieve, ask the model what is still missing, retrieve again (bounded).

Retrieve for the question, then ask the model what is still missing (grammar: a bounded query
string or the word ``DONE``) and retrieve for that, until the model says ``DONE``, ``max_hops``
retrievals were made, a follow-up finds no new source, or the model repeats a query. Each
retrieval adds up to ``k`` sources not found before (a follow-up query often ranks the first
hop's sources high again). Sources are the union in order of discovery (numbering is stable, so
each hop's ``sources`` are the numbers it added); the answer step sees them all. The chain's
relevance filter applies to each hop's results before they are added.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import Field

from orchestrator.chains.rag import format_sources
from orchestrator.chains.sources import Found, Keep, Sources, search_many_docs
from orchestrator.chains.strategies.fusion import chunk_key
from orchestrator.chains.strategies.queries import generate_json, json_budget, query_field
from orchestrator.prompts.library import FOLLOW_UP

#: The follow-up query that means "the sources are enough".
DONE = "DONE"
#: Stop reasons of ``multi_hop``.
STOP_REASONS = ("done", "max_hops", "no_new_sources", "repeated_query")

FOLLOW_UP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"next": {"anyOf": [{"const": DONE}, query_field()]}},
    "required": ["next"],
}


class MultiHopSources(Sources):
    """Retrieve, ask the model for the missing fact's query, retrieve again (bounded)."""

    strategy: ClassVar[str] = "multi_hop"
    llm: Runnable[Any, Any]
    max_hops: int = Field(default=3, ge=1, le=10)
    """Retrievals at most, the first (for the question) included."""
    source_chars: int = Field(default=400, ge=50)
    """Characters of each source the follow-up prompt shows (the answer step sees all)."""
    follow_up_sources: int = Field(default=8, ge=1)
    """Sources the follow-up prompt shows at most, the best of each hop alike: with a large
    ``k`` (``eval retrieval`` searches 100) all of them would not fit the context window."""

    def find_many(
        self,
        questions: Sequence[str],
        k: int | None,
        keep: Keep = list,
        config: RunnableConfig | None = None,
    ) -> list[Found]:
        """Each question's hops in turn (a hop's query depends on the one before); the
        questions together (:meth:`~orchestrator.chains.sources.Sources.together`)."""
        top = self.k_or_default(k)
        return self.together(lambda q: self.hops(q, top, keep, config), questions, config)

    def follow_up(
        self, question: str, docs: Sequence[Document], config: RunnableConfig | None
    ) -> str:
        """The model's query for what is still missing, or :data:`DONE`."""
        shown = [
            Document(page_content=d.page_content.strip()[: self.source_chars], metadata={})
            for d in docs
        ]
        reply = generate_json(
            self.llm,
            FOLLOW_UP,
            {"question": question, "context": format_sources(shown) or "(none)"},
            FOLLOW_UP_SCHEMA,
            max_tokens=json_budget(),
            config=config,
        )
        return " ".join(str(reply.get("next", DONE)).split())

    def shown(self, found: list[Document], hops: list[dict[str, Any]]) -> list[Document]:
        """The sources the follow-up prompt shows: each hop's best, ``follow_up_sources`` in
        all, in order of discovery (the newest hop is never crowded out by the first)."""
        per_hop = max(1, self.follow_up_sources // len(hops))
        numbers = sorted(n for hop in hops for n in hop["sources"][:per_hop])
        return [found[n - 1] for n in numbers[: self.follow_up_sources]]

    def hops(self, question: str, k: int, keep: Keep, config: RunnableConfig | None) -> Found:
        """The sources for ``question`` (up to ``k`` new ones per hop) and the trace."""
        found: dict[Hashable, Document] = {}
        hops: list[dict[str, Any]] = []
        queries = [question]
        stop = "max_hops"
        while True:
            # A follow-up adds up to k sources not found yet (its top k may repeat earlier ones).
            docs = keep(search_many_docs(self.retriever, [queries[-1]], k + len(found))[0])
            before = len(found)
            for doc in docs:
                if len(found) - before >= k:
                    break
                found.setdefault(chunk_key(doc), doc)
            added = list(range(before + 1, len(found) + 1))
            hops.append({"hop": len(hops) + 1, "query": queries[-1], "sources": added})
            if len(hops) > 1 and not added:
                stop = "no_new_sources"
                break
            if len(hops) >= self.max_hops:
                break
            nxt = self.follow_up(question, self.shown(list(found.values()), hops), config)
            if nxt.strip(" .!").upper() == DONE:
                stop = "done"
                break
            if nxt.lower() in {q.lower() for q in queries}:
                stop = "repeated_query"
                break
            queries.append(nxt)
        return list(found.values()), {"queries": queries, "hops": hops, "stop_reason": stop}
