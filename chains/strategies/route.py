"""``route``: the model picks which of several named indexes to search.

Several retrievers, each with a name and a description; the model picks one or more names
(grammar: a non-empty list drawn from the enum of names), each chosen index is searched and,
when several were chosen, their lists are fused by reciprocal rank. One route only: no model
call. ``route`` in the output is the list of names searched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from pydantic import model_validator

from orchestrator.chains.sources import DEFAULT_K, Sources, Trace, search_many_docs
from orchestrator.chains.strategies.fusion import fuse_documents
from orchestrator.chains.strategies.queries import (
    clean_queries,
    generate_json,
    json_budget,
    list_schema,
)
from orchestrator.errors import OptionError
from orchestrator.prompts.library import ROUTE

Routes = dict[str, tuple[Any, str]]
"""``{name: (retriever, description)}``."""


def routes_of(retrievers: Any) -> Routes:
    """``{name: (retriever, description)}`` from a mapping of those tuples (or of bare
    retrievers, described by their name); at least one, names non-blank."""
    if not isinstance(retrievers, Mapping) or not retrievers:
        raise OptionError(
            "the route strategy needs named retrievers",
            fix='pass {"name": (retriever, "what it holds"), ...}',
        )
    out: Routes = {}
    for name, value in retrievers.items():
        if not str(name).strip():
            raise OptionError("a route has a blank name", fix="name every index")
        retriever, description = value if isinstance(value, tuple) else (value, str(name))
        out[str(name)] = (retriever, " ".join(str(description).split()) or str(name))
    return out


def search_routes(
    routes: Mapping[str, tuple[Any, str]], chosen: Sequence[str], query: str, k: int
) -> list[Document]:
    """Top ``k`` from the ``chosen`` routes; several are fused, every chunk names its index."""
    lists = [search_many_docs(routes[name][0], [query], k)[0] for name in chosen]
    if len(lists) == 1:  # the index's own ranking and scores
        for doc in lists[0]:
            doc.metadata["index"] = chosen[0]
        return lists[0][:k]
    return fuse_documents(lists, k, labels=list(chosen))


class RouteSources(Sources):
    """The model picks which of several named indexes to search (enum grammar)."""

    strategy: ClassVar[str] = "route"
    llm: Runnable[Any, Any]
    routes: Routes

    @model_validator(mode="before")
    @classmethod
    def _all_routes_retriever(cls, data: Any) -> Any:
        """``retriever`` searches every route, fused: what answering without a choice would
        do; the step itself searches only the chosen ones."""
        if isinstance(data, dict) and "retriever" not in data and "routes" in data:
            routes = routes_of(data["routes"])

            def every_route(query: str, k: int | None = None) -> list[Document]:
                return search_routes(routes, list(routes), query, k or DEFAULT_K)

            data = {**data, "routes": routes, "retriever": RunnableLambda(every_route)}
        return data

    @classmethod
    def over(cls, llm: Runnable[Any, Any], retrievers: Any, **options: Any) -> Sources:
        return cls(llm=llm, routes=routes_of(retrievers), **options)

    @property
    def default_k(self) -> int:
        """The largest ``k`` of the routes' retrievers, else 4."""
        ks = [int(getattr(r, "k", 0) or 0) for r, _ in self.routes.values()]
        return max(ks) or DEFAULT_K

    def choose(self, question: str, config: RunnableConfig | None = None) -> list[str]:
        """The route names the model picks for ``question`` (all of them, in order, if one)."""
        names = list(self.routes)
        if len(names) == 1:
            return names
        listing = "\n".join(f"- {n}: {d}" for n, (_, d) in self.routes.items())
        reply = generate_json(
            self.llm,
            ROUTE,
            {"question": question, "routes": listing},
            list_schema("indexes", {"type": "string", "enum": names}, 1, len(names)),
            max_tokens=json_budget(len(names)),
            config=config,
        )
        picked = reply.get("indexes", [])
        listed = picked if isinstance(picked, list) else []
        chosen = [n for n in clean_queries(listed) if n in names]
        if not chosen:  # only an unconstrained model can get here
            raise OptionError(
                f"the model chose no known index ({picked!r}); the indexes are {names}",
                fix="use a llama.cpp model or a server that applies JSON schemas",
            )
        return chosen

    def plan(self, question: str, config: RunnableConfig | None = None) -> Trace:
        return {"queries": [question], "route": self.choose(question, config)}

    def search(
        self, plans: Sequence[Trace], k: int | None, config: RunnableConfig | None = None
    ) -> list[list[Document]]:
        top = self.k_or_default(k)
        return [search_routes(self.routes, p["route"], p["queries"][0], top) for p in plans]
