"""``--strategy`` for ``rag``, ``search`` and ``eval retrieval``: choosing and building a RAG
strategy (``orchestrator.chains.strategies``) from command-line options.

Not a command module: the commands parse, these helpers build. Indexes are named after their
folder (with ``--dsn``: the index name as typed); a route's description is the ``description``
in the index's manifest when it has one, else that name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.errors import OptionError

StrategyOpt = Annotated[
    str,
    typer.Option(
        "--strategy",
        help="plain | rewrite | multi-query | hyde | multi-hop | route | agentic "
        "(several --index: route or agentic).",
    ),
]
SearchStrategyOpt = Annotated[
    str,
    typer.Option(
        "--strategy",
        help="plain | rewrite | multi-query | hyde: the model (--model) writes the queries.",
    ),
]
EvalStrategyOpt = Annotated[
    str,
    typer.Option(
        "--strategy",
        help="plain | rewrite | multi-query | hyde | multi-hop: measure the strategy's "
        "retrieval (--model writes its queries).",
    ),
]


def check_indexes(strategy: str, indexes: Sequence[Any]) -> str:
    """The registered strategy name; several indexes only for route and agentic."""
    from orchestrator.chains.strategies import MULTI_INDEX_STRATEGIES, strategy_name

    name = strategy_name(strategy)
    if not indexes:
        raise OptionError("no index given", fix="add --index DIR")
    if len(indexes) > 1 and name not in MULTI_INDEX_STRATEGIES:
        raise OptionError(
            f"{len(indexes)} indexes were given, but --strategy {strategy} searches one",
            fix="give one --index, or use --strategy route or agentic to choose between several",
        )
    names = [index_name(i) for i in indexes]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise OptionError(
            f"two indexes are both named {repeated[0]!r} (an index is named after its folder)",
            fix="give the indexes folders with different names",
        )
    return name


def check_search_strategy(strategy: str, allowed: Sequence[str]) -> str:
    """The registered name, if this command can measure or show it."""
    from orchestrator.chains.strategies import strategy_name

    name = strategy_name(strategy)
    if name not in allowed:
        shown = ", ".join(a.replace("_", "-") for a in allowed)
        raise OptionError(
            f"--strategy {strategy} does not apply here",
            fix=f"use one of: {shown} (the others answer with `orchestrator rag`)",
        )
    return name


def index_name(index: Any) -> str:
    """An index's name: its folder's name (or, for a database index, its name)."""
    return Path(str(index)).name or str(index)


def index_description(retriever: Any, name: str) -> str:
    """The manifest's ``description`` if the index has one, else its name."""
    searcher = getattr(retriever, "searcher", None)
    manifest = getattr(getattr(searcher, "backend", None), "manifest", None) or {}
    text = manifest.get("description") if isinstance(manifest, dict) else None
    return " ".join(str(text).split()) if text else name


def named_retrievers(
    indexes: Sequence[Any], open_one: Callable[[Any], Any]
) -> dict[str, tuple[Any, str]]:
    """``{name: (retriever, description)}`` for the indexes, each opened by ``open_one``."""
    out: dict[str, tuple[Any, str]] = {}
    for index in indexes:
        retriever = open_one(index)
        name = index_name(index)
        out[name] = (retriever, index_description(retriever, name))
    return out


def strategy_chain(
    name: str, llm: Any, retrievers: dict[str, tuple[Any, str]], k: int | None = None
) -> Any:
    """The runnable answering with strategy ``name``; ``agentic`` comes from
    ``orchestrator.agents.agentic_rag`` (a ReAct agent, ``k`` passages per search), every
    other one from the chains (``k`` is their retrievers')."""
    if name == "agentic":
        from orchestrator.agents import agentic_rag

        return agentic_rag(retrievers, llm) if k is None else agentic_rag(retrievers, llm, k=k)
    from orchestrator.chains.strategies import rag_strategy

    return rag_strategy(name, llm, retrievers)


#: What ``rag --json`` reports beside the answer, sources and citations, where present.
TRACE_KEYS = ("strategy", "queries", "hypothetical", "hops", "stop_reason", "route")


def trace_of(part: dict[str, Any]) -> dict[str, Any]:
    """The strategy's record of what it did, from one streamed part."""
    return {key: part[key] for key in TRACE_KEYS if key in part}


def trace_lines(trace: dict[str, Any]) -> list[str]:
    """The trace as short lines for the terminal."""
    lines = []
    if trace.get("route"):
        lines.append(f"route: {', '.join(trace['route'])}")
    for n, query in enumerate(trace.get("queries") or [], 1):
        lines.append(f"query {n}: {query}")
    if trace.get("hypothetical"):
        passage = " ".join(str(trace["hypothetical"]).split())
        lines.append(f"hypothetical answer (the dense query): {passage}")
    if trace.get("stop_reason"):
        lines.append(f"hops: {len(trace.get('hops') or [])}, stopped: {trace['stop_reason']}")
    return lines


def query_strategy_retriever(
    retriever: Any, strategy: str, model: str | None, allowed: Sequence[str] | None = None
) -> Any:
    """``retriever`` seen through a query-transforming strategy (``plain``: itself), whose
    queries the local model ``model`` writes (greedy, seed 0)."""
    from orchestrator.chains.strategies import QUERY_STRATEGIES

    name = check_search_strategy(strategy, allowed or QUERY_STRATEGIES)
    if name == "plain":
        return retriever
    from orchestrator.cli.common import chat_model
    from orchestrator.evals.retrieval import strategy_retriever

    llm = chat_model(model, 256, temperature=0.0, seed=0)
    return strategy_retriever(retriever, name, llm)


def search_trace(retriever: Any, query: str) -> dict[str, Any]:
    """What a strategy retriever did for ``query`` (empty for a plain retriever)."""
    traces = getattr(retriever, "traces", None)
    if traces is None:
        return {}
    return {"strategy": retriever.strategy.strategy, **trace_of(traces.get(query, {}))}
