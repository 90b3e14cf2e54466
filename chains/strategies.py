"""RAG strategies (Hands-On LLMs, ch. 8): other ways to find the sources, the same answer step.

Each strategy is a langchain-core Runnable taking ``{"question": ...}`` or a plain string and
returning the plain RAG chain's dict (``question``, ``answer``, ``sources``, ``citations``) plus
``strategy`` (its name) and what it did:

- ``queries``: list[str], every query searched, in order (all strategies).
- ``hypothetical``: str, the passage HyDE embedded (``hyde``).
- ``hops``: list of ``{"hop": int, "query": str, "sources": [n, ...]}``, the source numbers
  each retrieval added; and ``stop_reason``: ``done`` (the model said DONE),
  ``max_hops``, ``no_new_sources`` (a follow-up found nothing new) or ``repeated_query``
  (``multi_hop``, see :mod:`orchestrator.chains.strategies_hops`).
- ``route``: list[str], the index names the model chose (``route``); each source then carries
  ``index`` in its metadata.

Strategies, by name (:data:`RAG_STRATEGIES`, :func:`rag_strategy`):

- ``plain``: the question as the query (the plain hybrid pipeline).
- ``rewrite``: the model turns the question into one search query (grammar: one bounded
  string), which is searched instead of the question.
- ``multi_query`` (RAG-Fusion): the model writes ``n_queries`` variants (grammar: a list of
  exactly that many bounded strings); the question and the variants are searched in one batch
  and fused by reciprocal rank (``orchestrator.retrieval.fusion.rrf_fusion``).
- ``hyde``: the model writes a hypothetical answer; its embedding is the dense query, while the
  keyword (BM25) side keeps the question, so the answer's invented details cannot drag the
  keyword match away from what was asked. On a retriever without our dense side (a bm25-only
  index, another library's retriever) the question's and the passage's rankings are fused
  instead.
- ``multi_hop``, ``route``: :mod:`orchestrator.chains.strategies_hops`.
- ``agentic``: a ReAct agent, built by ``orchestrator.agents.agentic_rag`` (chains cannot import
  agents); named here so every caller lists the same strategies.

Measured on Cranfield and a two-hop set with the embedded 135M model (docs/benchmarks.md,
"RAG strategies"); none of them is the default: ``plain`` is.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import Field

from orchestrator.chains.strategies_base import (
    StrategyChain,
    Trace,
    clean_queries,
    fuse_documents,
    generate_json,
    generate_text,
    json_budget,
    query_field,
    search_many_docs,
    string_schema,
)
from orchestrator.chains.strategies_hops import MultiHopRAG, RouteRAG, routes_of
from orchestrator.errors import OptionError, reject_unknown_options
from orchestrator.prompts.library import HYDE, MULTI_QUERY, QUERY_REWRITE, RAG
from orchestrator.prompts.templates import PromptTemplate


class RewriteRAG(StrategyChain):
    """Search for a model-written query instead of the question.

    The reply's key is ``search_query``: with the key ``query`` SmolLM2-135M often wrote a
    timestamp (``"2014-03-28T09:57:56.143Z"`` for "When was the Eiffel Tower completed?");
    with ``search_query`` and the instruction first it wrote keywords (docs/benchmarks.md)."""

    strategy: ClassVar[str] = "rewrite"

    def plan(self, question: str, config: RunnableConfig | None = None) -> Trace:
        reply = generate_json(
            self.llm,
            QUERY_REWRITE,
            {"question": question},
            string_schema("search_query"),
            max_tokens=json_budget(),
            config=config,
        )
        rewritten = clean_queries([reply.get("search_query", "")])
        return {"queries": rewritten or [question]}


class MultiQueryRAG(StrategyChain):
    """RAG-Fusion: the question plus ``n_queries`` model-written variants, fused by RRF."""

    strategy: ClassVar[str] = "multi_query"
    n_queries: int = Field(default=3, ge=1, le=8)

    def plan(self, question: str, config: RunnableConfig | None = None) -> Trace:
        item = query_field()
        schema = {
            "type": "object",
            "properties": {
                "queries": {
                    "type": "array",
                    "items": item,
                    "minItems": self.n_queries,
                    "maxItems": self.n_queries,
                }
            },
            "required": ["queries"],
        }
        reply = generate_json(
            self.llm,
            MULTI_QUERY,
            {"question": question, "n": self.n_queries},
            schema,
            max_tokens=json_budget(self.n_queries),
            config=config,
        )
        variants = reply.get("queries", [])
        return {
            "queries": clean_queries(
                variants if isinstance(variants, list) else [], keep=[question]
            )
        }

    def search_plans(self, plans: Sequence[Trace], k: int) -> list[list[Document]]:
        """Every plan's queries in one batch, then each plan's lists fused."""
        flat = [q for plan in plans for q in plan["queries"]]
        results = search_many_docs(self.retriever, flat, k)
        out, start = [], 0
        for plan in plans:
            n = len(plan["queries"])
            out.append(fuse_documents(results[start : start + n], k))
            start += n
        return out


class HydeRAG(StrategyChain):
    """HyDE: a model-written hypothetical answer is the dense query; BM25 keeps the question."""

    strategy: ClassVar[str] = "hyde"
    passage_tokens: int = Field(default=96, ge=8)

    def plan(self, question: str, config: RunnableConfig | None = None) -> Trace:
        passage = generate_text(
            self.llm, HYDE, {"question": question}, max_tokens=self.passage_tokens, config=config
        )
        return {"queries": [question], "hypothetical": passage or question}

    def search_plans(self, plans: Sequence[Trace], k: int) -> list[list[Document]]:
        questions = [p["queries"][0] for p in plans]
        return hyde_search(self.retriever, questions, [p["hypothetical"] for p in plans], k)


def hyde_search(
    retriever: Any, questions: Sequence[str], passages: Sequence[str], k: int
) -> list[list[Document]]:
    """Top ``k`` per question: on our index retriever (dense or hybrid, local or PostgreSQL),
    the passage's vector is the dense query and the question the BM25 query of the same
    pipeline (fusion, feedback, rerank against the question, ``min_similarity`` as configured;
    ``similarity`` is then the cosine to the passage). Elsewhere, the question's and the
    passage's rankings are fused by RRF."""
    searcher = getattr(retriever, "searcher", None)
    backend = getattr(searcher, "backend", None)
    if searcher is None or backend is None or not searcher.uses_dense or not backend.has_vectors():
        lists = search_many_docs(retriever, [*questions, *passages], k)
        n = len(questions)
        return [fuse_documents([lists[i], lists[n + i]], k) for i in range(n)]
    return retriever.search_many(list(questions), k, dense_texts=list(passages))  # type: ignore[no-any-return]


#: Strategies by name. ``agentic`` is built by ``orchestrator.agents.agentic_rag`` (``None``
#: here: chains sit below agents).
RAG_STRATEGIES: dict[str, type[StrategyChain] | None] = {
    "plain": StrategyChain,
    "rewrite": RewriteRAG,
    "multi_query": MultiQueryRAG,
    "hyde": HydeRAG,
    "multi_hop": MultiHopRAG,
    "route": RouteRAG,
    "agentic": None,
}

#: Strategies that search a single index with transformed queries (``search --strategy``).
QUERY_STRATEGIES = ("plain", "rewrite", "multi_query", "hyde")
#: Strategies that choose between several indexes.
MULTI_INDEX_STRATEGIES = ("route", "agentic")


def strategy_name(name: str) -> str:
    """The registered name for ``name`` (``multi-query`` and ``multi_query`` both work);
    an unknown one is an :class:`OptionError` listing the names."""
    key = name.strip().lower().replace("-", "_")
    if key in RAG_STRATEGIES:
        return key
    close = difflib.get_close_matches(key, RAG_STRATEGIES, n=1)
    names = ", ".join(n.replace("_", "-") for n in RAG_STRATEGIES)
    raise OptionError(
        f"unknown RAG strategy {name!r}; the strategies are: {names}",
        fix=f"did you mean {close[0].replace('_', '-')!r}?" if close else f"use one of: {names}",
    )


def rag_strategy(
    name: str,
    llm: Runnable[Any, Any],
    retrievers: Any,
    *,
    prompt: Any = None,
    **options: Any,
) -> StrategyChain:
    """The strategy called ``name`` over ``retrievers``: one retriever, or a mapping
    ``{name: (retriever, description)}`` (several only for ``route``). ``options``: the RAG
    chain's (``k``, ``min_score``, ``min_similarity``) and the strategy's own (``n_queries``,
    ``passage_tokens``, ``max_hops``, ...); an unknown one is an :class:`OptionError`."""
    key = strategy_name(name)
    cls = RAG_STRATEGIES[key]
    if cls is None:
        raise OptionError(
            f"the {key!r} strategy is a ReAct agent, built by orchestrator.agents",
            fix="from orchestrator.agents import agentic_rag; "
            "agentic_rag({name: (retriever, description)}, llm)",
        )
    reject_unknown_options(options, cls)
    for fixed in ("llm", "retriever", "routes"):
        if fixed in options:
            raise OptionError(f"rag_strategy sets {fixed!r} itself", fix=f"leave out {fixed}=")
    template = prompt if prompt is not None else RAG
    if isinstance(template, str):
        template = PromptTemplate.from_template(template)
    if cls is RouteRAG:
        return RouteRAG(llm=llm, routes=routes_of(retrievers), prompt=template, **options)
    return cls(llm=llm, retriever=single_retriever(key, retrievers), prompt=template, **options)


def single_retriever(strategy: str, retrievers: Any) -> Any:
    """The one retriever of a single-index strategy (a one-entry mapping is unwrapped)."""
    if not isinstance(retrievers, Mapping):
        return retrievers
    if len(retrievers) != 1:
        raise OptionError(
            f"the {strategy!r} strategy searches one index, but {len(retrievers)} were given",
            fix="give one index, or use --strategy route or agentic to choose between several",
        )
    value = next(iter(retrievers.values()))
    return value[0] if isinstance(value, tuple) else value
