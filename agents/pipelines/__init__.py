"""Pipelines as data: closed specs for a RAG pipeline, an agent and the story chain, the one
options-to-spec function and the one builder.

    from orchestrator.agents.pipelines import build, load_spec, spec_from_options

    spec = spec_from_options("rag", index="docs-index", strategy="multi-query", k=4)
    chain = build(spec)                       # the same runnable `orchestrator rag` runs
    chain.invoke({"question": "What is BM25?"})

The top library layer: it builds chains and agents, and every shell (the CLI, the HTTP
server, the MCP server) and the evals build their pipelines here, so the defaults (the
answering floor, greedy answers, the tools an agent gets) are written once.
"""

from __future__ import annotations

from orchestrator.agents.pipelines.build import build
from orchestrator.agents.pipelines.options import spec_from_options
from orchestrator.agents.pipelines.rag import DEFAULT_MIN_SIMILARITY, open_retrievers
from orchestrator.agents.pipelines.specs import (
    SPEC_KINDS,
    AgentSpec,
    PipelineSpec,
    RagSpec,
    StorySpec,
    dump_spec,
    from_dict,
    load_spec,
    resolve_paths,
    to_dict,
)
from orchestrator.agents.pipelines.strategies import strategy_runnable, trace_of

__all__ = [
    "DEFAULT_MIN_SIMILARITY",
    "SPEC_KINDS",
    "AgentSpec",
    "PipelineSpec",
    "RagSpec",
    "StorySpec",
    "build",
    "dump_spec",
    "from_dict",
    "load_spec",
    "open_retrievers",
    "resolve_paths",
    "spec_from_options",
    "strategy_runnable",
    "to_dict",
    "trace_of",
]
