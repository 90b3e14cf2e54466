"""The one RAG strategy registry: the chains' strategies and the agents' ``agentic`` joined.

``orchestrator.chains.strategies`` registers the strategies built from chains (``agentic``
is ``None`` there: chains sit below agents); :func:`strategy_runnable` builds any of them,
``agentic`` through :func:`orchestrator.agents.agentic_rag`. What a strategy reports beside
the answer (its trace) is named here too, so every front-end shows the same fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.chains.strategies import (
    BUILT_FIELDS,
    MULTI_INDEX_STRATEGIES,
    QUERY_STRATEGIES,
    RAG_STRATEGIES,
    check_options,
    strategy_name,
)
from orchestrator.chains.strategies import check_strategy_options as check_chain_options
from orchestrator.errors import OptionError
from orchestrator.retrieval import IndexSpec

__all__ = [
    "MULTI_INDEX_STRATEGIES",
    "QUERY_STRATEGIES",
    "RAG_STRATEGIES",
    "TRACE_KEYS",
    "check_strategy_options",
    "index_description",
    "index_name",
    "strategy_name",
    "strategy_runnable",
    "trace_of",
]

#: What a strategy reports beside the answer, sources and citations, where present.
TRACE_KEYS = ("strategy", "queries", "hypothetical", "hops", "stop_reason", "route")

Retrievers = Mapping[str, tuple[Any, str]]
"""``{name: (retriever, description)}``: the indexes a pipeline answers from."""


#: Options a RAG spec sets as its own fields, so never inside ``strategy_options``.
SPEC_OWN_OPTIONS = ("k", "min_similarity", "prompt")


def check_strategy_options(
    name: str, options: Mapping[str, Any], *, where: str = "strategy_options"
) -> dict[str, Any]:
    """The options of strategy ``name`` (any, ``agentic`` included) checked by name and value,
    with errors naming ``where.option`` (see :func:`orchestrator.chains.strategies.
    check_options`); the spec's own fields (:data:`SPEC_OWN_OPTIONS`) are refused here."""
    for own in SPEC_OWN_OPTIONS:
        if own in options:
            raise OptionError(
                f"{where}.{own}: {own} is a field of the spec itself",
                fix=f"write {own} at the top level of the spec (or give its flag)",
            )
    key = strategy_name(name)
    if key != "agentic":
        return check_chain_options(key, options, where=where)
    from orchestrator.agents.agentic_rag import AgenticRAG, KnowledgeIndex

    fields = {n: f for n, f in AgenticRAG.model_fields.items() if n not in BUILT_FIELDS}
    fields.pop("indexes", None)
    fields["max_chars"] = KnowledgeIndex.model_fields["max_chars"]
    return check_options(options, fields, owner="the agentic strategy", where=where)


def index_name(index: IndexSpec | str | Path) -> str:
    """An index's name in a pipeline: its folder's name, or its name in the database."""
    if isinstance(index, IndexSpec):
        return str(index.name) if index.backend == "postgres" else index_name(str(index.path))
    return Path(str(index)).name or str(index)


def index_description(retriever: Any, name: str) -> str:
    """The manifest's ``description`` if the index has one (what ``route`` and ``agentic``
    choose by), else its name."""
    searcher = getattr(retriever, "searcher", None)
    manifest = getattr(getattr(searcher, "backend", None), "manifest", None) or {}
    text = manifest.get("description") if isinstance(manifest, dict) else None
    return " ".join(str(text).split()) if text else name


def strategy_runnable(
    name: str,
    llm: Any,
    retrievers: Retrievers,
    *,
    k: int,
    prompt: Any = None,
    options: Mapping[str, Any] | None = None,
) -> Any:
    """The runnable answering with strategy ``name``: input ``{"question": ...}``, streamed
    parts with ``sources``, ``answer`` and the trace (:data:`TRACE_KEYS`). ``plain`` is the
    RAG chain; ``agentic`` a ReAct agent with one knowledge-base tool per index (``k``
    passages per search); the others the chains' strategies (``k`` is their retrievers')."""
    key = strategy_name(name)
    extra = dict(options or {})
    if key == "agentic":
        from orchestrator.agents.agentic_rag import agentic_rag

        if prompt is not None:
            extra["prompt"] = prompt
        return agentic_rag(dict(retrievers), llm, k=k, **extra)
    if key == "plain" and not extra:
        from orchestrator.chains.rag import rag_chain

        return rag_chain(llm, _one(retrievers), prompt=prompt)
    from orchestrator.chains.strategies import rag_strategy

    return rag_strategy(key, llm, dict(retrievers), prompt=prompt, **extra)


def _one(retrievers: Retrievers) -> Any:
    return next(iter(retrievers.values()))[0]


def trace_of(part: Mapping[str, Any]) -> dict[str, Any]:
    """The strategy's record of what it did, from one streamed part."""
    return {key: part[key] for key in TRACE_KEYS if key in part}
