"""Search with a RAG spec's retrieval half: what ``orchestrator search`` and the retrieval
evaluators run. Unlike answering, search keeps every hit (no similarity floor unless the spec
sets ``min_similarity``); a query-transforming strategy (rewrite, multi_query, hyde, and for
the evaluators multi_hop) is applied through the spec's model, local or served.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from orchestrator.agents.pipelines.rag import answer_model_spec, open_retrievers
from orchestrator.agents.pipelines.specs import RagSpec
from orchestrator.agents.pipelines.strategies import QUERY_STRATEGIES, trace_of
from orchestrator.errors import OptionError


class StrategyRetriever:
    """A retriever whose ``search_many`` applies a RAG strategy's query transform first, so
    search and the evaluators see what the strategy would retrieve. ``traces`` keeps what the
    strategy did per query text; ``seconds`` the time spent, model calls included."""

    def __init__(self, strategy: Any) -> None:
        self.strategy = strategy
        self.traces: dict[str, dict[str, Any]] = {}
        self.seconds = 0.0

    @property
    def k(self) -> int:
        return int(self.strategy.top_k)

    def search_many(self, queries: Sequence[str], k: int) -> list[list[Any]]:
        started = time.perf_counter()
        results = self.strategy.retrieve_many(list(queries), k)
        self.seconds += time.perf_counter() - started
        for query, (_, trace) in zip(queries, results, strict=True):
            self.traces[query] = trace
        return [docs for docs, _ in results]

    def invoke(self, query: str, k: int | None = None) -> list[Any]:
        return self.search_many([query], k if k is not None else self.k)[0]


def search_retriever(spec: RagSpec, *, strategies: Sequence[str] = QUERY_STRATEGIES) -> Any:
    """The spec's one index as a search retriever, through its strategy when that is one of
    ``strategies`` (``plain``: the retriever itself); another strategy is an OptionError."""
    if spec.strategy not in strategies:
        shown = ", ".join(s.replace("_", "-") for s in strategies)
        raise OptionError(
            f"--strategy {spec.strategy.replace('_', '-')} does not apply here",
            fix=f"use one of: {shown} (the others answer with `orchestrator rag`)",
        )
    ((retriever, _),) = open_retrievers(spec, floor=False).values()
    if spec.strategy == "plain":
        return retriever
    from orchestrator.chains.strategies import rag_strategy
    from orchestrator.models import chat_model

    llm = chat_model(answer_model_spec(spec))
    options = dict(spec.strategy_options)
    return StrategyRetriever(rag_strategy(spec.strategy, llm, retriever, **options))


def search_trace(retriever: Any, query: str) -> dict[str, Any]:
    """What a strategy retriever did for ``query`` (empty for a plain retriever)."""
    traces = getattr(retriever, "traces", None)
    if traces is None:
        return {}
    return {"strategy": retriever.strategy.strategy, **trace_of(traces.get(query, {}))}
