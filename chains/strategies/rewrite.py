"""Query transforms: ``rewrite`` (one model-written query) and ``multi_query`` (RAG-Fusion)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import Field

from orchestrator.chains.sources import Sources, Trace, search_many_docs
from orchestrator.chains.strategies.fusion import fuse_documents
from orchestrator.chains.strategies.queries import (
    clean_queries,
    generate_json,
    json_budget,
    list_schema,
    query_field,
    string_schema,
)
from orchestrator.prompts.library import MULTI_QUERY, QUERY_REWRITE


class RewriteSources(Sources):
    """Search for a model-written query instead of the question.

    The reply's key is ``search_query``: with the key ``query`` SmolLM2-135M often wrote a
    timestamp (``"2014-03-28T09:57:56.143Z"`` for "When was the Eiffel Tower completed?");
    with ``search_query`` and the instruction first it wrote keywords (docs/benchmarks.md)."""

    strategy: ClassVar[str] = "rewrite"
    llm: Runnable[Any, Any]

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


class MultiQuerySources(Sources):
    """RAG-Fusion: the question plus ``n_queries`` model-written variants, fused by RRF."""

    strategy: ClassVar[str] = "multi_query"
    llm: Runnable[Any, Any]
    n_queries: int = Field(default=3, ge=1, le=8)

    def plan(self, question: str, config: RunnableConfig | None = None) -> Trace:
        n = self.n_queries
        reply = generate_json(
            self.llm,
            MULTI_QUERY,
            {"question": question, "n": n},
            list_schema("queries", query_field(), n, n),
            max_tokens=json_budget(n),
            config=config,
        )
        variants = reply.get("queries", [])
        listed = variants if isinstance(variants, list) else []
        return {"queries": clean_queries(listed, keep=[question])}

    def search(
        self, plans: Sequence[Trace], k: int | None, config: RunnableConfig | None = None
    ) -> list[list[Document]]:
        """Every plan's queries in one batch, then each plan's lists fused."""
        top = self.k_or_default(k)
        results = search_many_docs(self.retriever, [q for p in plans for q in p["queries"]], top)
        out, start = [], 0
        for plan in plans:
            n = len(plan["queries"])
            out.append(fuse_documents(results[start : start + n], top))
            start += n
        return out
