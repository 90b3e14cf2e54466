"""RAG strategies (Hands-On LLMs, ch. 8): other ways to find the sources, the same answer step.

A strategy is a sources step (:class:`~orchestrator.chains.sources.Sources`: question ->
documents and a trace) composed with the RAG chain's one answer step
(:class:`~orchestrator.chains.rag.RAGChain`). :func:`rag_strategy` builds the chain; it takes
``{"question": ...}`` or a plain string and returns the plain RAG chain's dict (``question``,
``answer``, ``sources``, ``citations``) plus ``strategy`` (its name) and what it did:

- ``queries``: list[str], every query searched, in order (all strategies).
- ``hypothetical``: str, the passage HyDE embedded (``hyde``).
- ``hops``: list of ``{"hop": int, "query": str, "sources": [n, ...]}``, the source numbers
  each retrieval added; and ``stop_reason``: ``done`` (the model said DONE),
  ``max_hops``, ``no_new_sources`` (a follow-up found nothing new) or ``repeated_query``
  (``multi_hop``, see :mod:`orchestrator.chains.strategies.multi_hop`).
- ``route``: list[str], the index names the model chose (``route``); each source then carries
  ``index`` in its metadata.

Strategies, by name (:data:`RAG_STRATEGIES`, one module each):

- ``plain``: the question as the query (the plain hybrid pipeline).
- ``rewrite``: the model turns the question into one search query (grammar: one bounded
  string), which is searched instead of the question.
- ``multi_query`` (RAG-Fusion): the model writes ``n_queries`` variants (grammar: a list of
  exactly that many bounded strings); the question and the variants are searched in one batch
  and fused by reciprocal rank (``orchestrator.retrieval.fusion.rrf_fusion``).
- ``hyde``: the model writes a hypothetical answer; its embedding is the dense query, while the
  keyword (BM25) side keeps the question (:mod:`~orchestrator.chains.strategies.hyde`).
- ``multi_hop``, ``route``: :mod:`~orchestrator.chains.strategies.multi_hop`,
  :mod:`~orchestrator.chains.strategies.route`.

``agentic`` (a ReAct agent that answers itself) is built by ``orchestrator.agents.agentic_rag``,
above chains; its name is known here (:data:`STRATEGY_NAMES`) so every caller lists the same
strategies, and the registry joining both lives with the pipelines in ``orchestrator.agents``.

Measured on Cranfield and a two-hop set with the embedded 135M model (docs/benchmarks.md,
"RAG strategies"); none of them is the default: ``plain`` is.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Annotated, Any

from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable
from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from orchestrator.chains.rag import RAGChain, rag_prompt
from orchestrator.chains.sources import Sources
from orchestrator.chains.strategies.hyde import HydeSources
from orchestrator.chains.strategies.multi_hop import STOP_REASONS, MultiHopSources
from orchestrator.chains.strategies.queries import QUERY_PATTERN
from orchestrator.chains.strategies.rewrite import MultiQuerySources, RewriteSources
from orchestrator.chains.strategies.route import RouteSources
from orchestrator.errors import OptionError

#: The sources step of each strategy, by name.
RAG_STRATEGIES: dict[str, type[Sources]] = {
    "plain": Sources,
    "rewrite": RewriteSources,
    "multi_query": MultiQuerySources,
    "hyde": HydeSources,
    "multi_hop": MultiHopSources,
    "route": RouteSources,
}

#: Strategies that search a single index with transformed queries (``search --strategy``).
QUERY_STRATEGIES = ("plain", "rewrite", "multi_query", "hyde")
#: Strategies that choose between several indexes.
MULTI_INDEX_STRATEGIES = ("route", "agentic")
#: Every strategy name a caller may give: the chains' and ``agentic`` (built in agents).
STRATEGY_NAMES = (*RAG_STRATEGIES, "agentic")
#: Options of the RAG chain itself (the rest are the sources step's).
CHAIN_OPTIONS = ("k", "min_score", "min_similarity", "no_answer")
#: Fields of a sources step or chain that the builder sets, never options.
BUILT_FIELDS = frozenset({"name", "llm", "retriever", "routes", "sources", "prompt", "trace"})


def strategy_name(name: str, known: Collection[str] = STRATEGY_NAMES) -> str:
    """The registered name for ``name`` among ``known`` (``multi-query`` and ``multi_query``
    both work); an unknown one is an :class:`OptionError` listing the names."""
    key = name.strip().lower().replace("-", "_")
    if key in known:
        return key
    close = difflib.get_close_matches(key, list(known), n=1)
    names = ", ".join(n.replace("_", "-") for n in known)
    raise OptionError(
        f"unknown RAG strategy {name!r}; the strategies are: {names}",
        fix=f"did you mean {close[0].replace('_', '-')!r}?" if close else f"use one of: {names}",
    )


def check_options(
    options: Mapping[str, Any],
    fields: Mapping[str, FieldInfo],
    *,
    owner: str,
    where: str | None = None,
) -> dict[str, Any]:
    """``options`` checked against pydantic ``fields`` (name and value) and returned parsed:
    an unknown name is an :class:`OptionError` naming ``where.name`` (e.g.
    ``strategy_options.n_querys``) and the closest option of ``owner``; a bad value names it
    with pydantic's reason. So a pipeline spec is refused when it is made, not when it runs."""
    checked: dict[str, Any] = {}
    for name, value in options.items():
        label = f"{where}.{name}" if where else repr(name)
        field = fields.get(str(name))
        if field is None:
            close = difflib.get_close_matches(str(name), list(fields), n=1)
            known = ", ".join(sorted(fields)) or "none"
            raise OptionError(
                f"{label}: {owner} has no option {name!r}",
                fix=f"did you mean {close[0]!r}?" if close else f"its options: {known}",
            )
        try:
            kind: Any = field.annotation  # a type form (its static type differs by pydantic)
            typed: Any = Annotated[kind, *field.metadata] if field.metadata else kind
            checked[name] = TypeAdapter(typed).validate_python(value)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            raise OptionError(
                f"{label}: {reason} (got {value!r})", fix=f"see {owner}'s options"
            ) from None
    return checked


def strategy_option_fields(name: str) -> dict[str, FieldInfo]:
    """The options a chains strategy takes: its sources step's own fields and the RAG chain's
    (:data:`CHAIN_OPTIONS`)."""
    step = RAG_STRATEGIES[strategy_name(name, RAG_STRATEGIES)]
    own = {n: f for n, f in step.model_fields.items() if n not in BUILT_FIELDS}
    return {**own, **{n: RAGChain.model_fields[n] for n in CHAIN_OPTIONS}}


def check_strategy_options(
    name: str, options: Mapping[str, Any], *, where: str | None = None
) -> dict[str, Any]:
    """``options`` of the chains strategy ``name`` checked (see :func:`check_options`)."""
    key = strategy_name(name, RAG_STRATEGIES)
    owner = f"the {key.replace('_', '-')} strategy"
    return check_options(options, strategy_option_fields(key), owner=owner, where=where)


def rag_strategy(
    name: str,
    llm: Runnable[Any, Any],
    retrievers: Any,
    *,
    prompt: BasePromptTemplate | str | None = None,
    **options: Any,
) -> RAGChain:
    """The RAG chain answering with strategy ``name`` over ``retrievers``: one retriever, or a
    mapping ``{name: (retriever, description)}`` (several only for ``route``). ``options``: the
    chain's (``k``, ``min_score``, ``min_similarity``, ``no_answer``) and the strategy's own
    (``n_queries``, ``passage_tokens``, ``max_hops``, ...); an unknown one is an
    :class:`OptionError`."""
    key = strategy_name(name)
    step = RAG_STRATEGIES.get(key)
    if step is None:
        raise OptionError(
            f"the {key!r} strategy is a ReAct agent, built by orchestrator.agents",
            fix="from orchestrator.agents import agentic_rag; "
            "agentic_rag({name: (retriever, description)}, llm)",
        )
    for fixed in ("llm", "retriever", "routes", "sources"):
        if fixed in options:
            raise OptionError(f"rag_strategy sets {fixed!r} itself", fix=f"leave out {fixed}=")
    check_strategy_options(key, options)
    chain = {o: options.pop(o) for o in CHAIN_OPTIONS if o in options}
    sources = step.over(llm, retrievers, **options)
    return RAGChain(llm=llm, sources=sources, prompt=rag_prompt(prompt), trace=True, **chain)


__all__ = [
    "MULTI_INDEX_STRATEGIES",
    "QUERY_PATTERN",
    "QUERY_STRATEGIES",
    "RAG_STRATEGIES",
    "STOP_REASONS",
    "STRATEGY_NAMES",
    "HydeSources",
    "MultiHopSources",
    "MultiQuerySources",
    "RewriteSources",
    "RouteSources",
    "Sources",
    "check_options",
    "check_strategy_options",
    "rag_strategy",
    "strategy_name",
]
