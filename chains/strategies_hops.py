"""RAG strategies that loop or choose: ``multi_hop`` and ``route``.

``multi_hop``: retrieve for the question, then ask the model what is still missing (grammar:
a bounded query string or the word ``DONE``) and retrieve for that, until the model says
``DONE``, ``max_hops`` retrievals were made, a follow-up finds no new source, or the model
repeats a query. Each retrieval adds up to ``k`` sources not found before (a follow-up query
often ranks the first hop's sources high again). Sources are the union in order of discovery
(numbering is stable, so each hop's ``sources`` are the numbers it added); the answer step
sees them all.

``route``: several retrievers, each with a name and a description; the model picks one or more
names (grammar: a non-empty list drawn from the enum of names), each chosen index is searched
and, when several were chosen, their lists are fused by reciprocal rank. One route only: no
model call. ``route`` in the output is the list of names searched.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, ClassVar

from langchain_core.documents import Document
from langchain_core.runnables import RunnableConfig, RunnableLambda
from pydantic import Field, model_validator

from orchestrator.chains.rag import format_sources
from orchestrator.chains.strategies_base import (
    DEFAULT_K,
    StrategyChain,
    Trace,
    chunk_key,
    clean_queries,
    fuse_documents,
    generate_json,
    json_budget,
    query_field,
    search_many_docs,
)
from orchestrator.errors import OptionError
from orchestrator.prompts.library import FOLLOW_UP, ROUTE

#: The follow-up query that means "the sources are enough".
DONE = "DONE"
#: Stop reasons of ``multi_hop``.
STOP_REASONS = ("done", "max_hops", "no_new_sources", "repeated_query")

FOLLOW_UP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "next": {
            "anyOf": [
                {"const": DONE},
                query_field(),
            ]
        }
    },
    "required": ["next"],
}


class MultiHopRAG(StrategyChain):
    """Retrieve, ask the model for the missing fact's query, retrieve again (bounded)."""

    strategy: ClassVar[str] = "multi_hop"
    max_hops: int = Field(default=3, ge=1, le=10)
    """Retrievals at most, the first (for the question) included."""
    source_chars: int = Field(default=400, ge=50)
    """Characters of each source the follow-up prompt shows (the answer step sees all)."""
    follow_up_sources: int = Field(default=8, ge=1)
    """Sources the follow-up prompt shows at most, the best of each hop alike: with a large
    ``k`` (``eval retrieval`` searches 100) all of them would not fit the context window."""

    def retrieve_traced(
        self, question: str, config: RunnableConfig | None = None
    ) -> tuple[list[Document], Trace]:
        return self._hops(question, self.top_k, self.passing, config)

    def retrieve_many(
        self, questions: Sequence[str], k: int, config: RunnableConfig | None = None
    ) -> list[tuple[list[Document], Trace]]:
        return [self._hops(q, k, list, config) for q in questions]

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

    def _hops(
        self,
        question: str,
        k: int,
        keep: Callable[[list[Document]], list[Document]],
        config: RunnableConfig | None,
    ) -> tuple[list[Document], Trace]:
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
        trace = {"queries": queries, "hops": hops, "stop_reason": stop}
        return list(found.values()), trace


def routes_of(retrievers: Any) -> dict[str, tuple[Any, str]]:
    """``{name: (retriever, description)}`` from a mapping of those tuples (or of bare
    retrievers, described by their name); at least one, names non-blank."""
    if not isinstance(retrievers, Mapping) or not retrievers:
        raise OptionError(
            "the route strategy needs named retrievers",
            fix='pass {"name": (retriever, "what it holds"), ...}',
        )
    out: dict[str, tuple[Any, str]] = {}
    for name, value in retrievers.items():
        if not str(name).strip():
            raise OptionError("a route has a blank name", fix="name every index")
        retriever, description = value if isinstance(value, tuple) else (value, str(name))
        out[str(name)] = (retriever, " ".join(str(description).split()) or str(name))
    return out


class RouteRAG(StrategyChain):
    """The model picks which of several named indexes to search (enum grammar)."""

    strategy: ClassVar[str] = "route"
    routes: dict[str, tuple[Any, str]]

    @model_validator(mode="before")
    @classmethod
    def _all_routes_retriever(cls, data: Any) -> Any:
        """``retriever`` (the RAG chain's field) searches every route, fused: what answering
        without a choice would do; the strategy itself searches only the chosen ones."""
        if isinstance(data, dict) and "retriever" not in data and "routes" in data:
            routes = routes_of(data["routes"])
            data = {**data, "routes": routes}

            def every_route(query: str, k: int | None = None) -> list[Document]:
                return _search_routes(routes, list(routes), query, k or DEFAULT_K)

            data["retriever"] = RunnableLambda(every_route)
        return data

    @property
    def top_k(self) -> int:
        """The chain's ``k``, else the largest ``k`` of the routes' retrievers, else 4."""
        if self.k is not None:
            return self.k
        ks = [int(getattr(r, "k", 0) or 0) for r, _ in self.routes.values()]
        return max(ks) or DEFAULT_K

    def choose(self, question: str, config: RunnableConfig | None = None) -> list[str]:
        """The route names the model picks for ``question`` (all of them, in order, if one)."""
        names = list(self.routes)
        if len(names) == 1:
            return names
        schema = {
            "type": "object",
            "properties": {
                "indexes": {
                    "type": "array",
                    "items": {"type": "string", "enum": names},
                    "minItems": 1,
                    "maxItems": len(names),
                }
            },
            "required": ["indexes"],
        }
        listing = "\n".join(f"- {n}: {d}" for n, (_, d) in self.routes.items())
        reply = generate_json(
            self.llm,
            ROUTE,
            {"question": question, "routes": listing},
            schema,
            max_tokens=json_budget(len(names)),
            config=config,
        )
        picked = reply.get("indexes", [])
        chosen = [
            n for n in clean_queries(picked if isinstance(picked, list) else []) if n in names
        ]
        if not chosen:  # only an unconstrained model can get here
            raise OptionError(
                f"the model chose no known index ({picked!r}); the indexes are {names}",
                fix="use a llama.cpp model or a server that applies JSON schemas",
            )
        return chosen

    def plan(self, question: str, config: RunnableConfig | None = None) -> Trace:
        return {"queries": [question], "route": self.choose(question, config)}

    def search_plans(self, plans: Sequence[Trace], k: int) -> list[list[Document]]:
        return [_search_routes(self.routes, p["route"], p["queries"][0], k) for p in plans]


def _search_routes(
    routes: Mapping[str, tuple[Any, str]], chosen: Sequence[str], query: str, k: int
) -> list[Document]:
    """Top ``k`` from the ``chosen`` routes; several are fused, every chunk names its index."""
    lists = [search_many_docs(routes[name][0], [query], k)[0] for name in chosen]
    if len(lists) == 1:  # the index's own ranking and scores
        for doc in lists[0]:
            doc.metadata["index"] = chosen[0]
        return lists[0][:k]
    return fuse_documents(lists, k, labels=list(chosen))
