"""Span trees of real pipelines on the embedded model (issue 21, point 1): a RAG chain over a
small index, and an agent with a tool; token counts equal the models' ``usage_metadata``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import get_usage_metadata_callback
from tracing_support import assert_one_tree, by_kind, recorded

from orchestrator import tracing
from orchestrator.agents import AgentExecutor, create_react_agent, load_tools
from orchestrator.chains import rag_chain
from orchestrator.retrieval import build_index, open_retriever
from orchestrator.tracing import names

pytestmark = pytest.mark.integration

DOCS = [
    {"doc_id": "tower", "text": "The Eiffel Tower is 330 metres tall and stands in Paris."},
    {"doc_id": "bridge", "text": "The Golden Gate Bridge spans the strait in San Francisco."},
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tracing-rag") / "index"
    build_index(DOCS, path, modes=("bm25",))
    return path


def _usage(callback: Any) -> tuple[int, int]:
    totals = list(callback.usage_metadata.values())
    return sum(u["input_tokens"] for u in totals), sum(u["output_tokens"] for u in totals)


def test_a_rag_chain_records_retrieval_and_the_model_call(
    index: Path, chat_llm: Any, tmp_path: Path
) -> None:
    chain = rag_chain(chat_llm, open_retriever(index, mode="bm25", k=2))
    with (
        tracing.tracing(tmp_path / "t.sqlite") as path,
        get_usage_metadata_callback() as usage,
        tracing.run("rag", pipeline="rag:plain"),
    ):
        result = chain.invoke({"question": "How tall is the Eiffel Tower?"})
    [(run, spans)] = recorded(path)
    assert_one_tree(spans)
    assert (run.command, run.pipeline, run.status) == ("rag", "rag:plain", "ok")
    assert (run.input, run.output) == ("How tall is the Eiffel Tower?", result["answer"])
    (found,) = by_kind(spans, "retriever")
    (chain,) = [s for s in spans if s.name == "RAGChain"]  # the chain is one span in the run
    assert found.parent_id == chain.span_id and chain.parent_id == run.root_span
    assert found.attributes[names.DOC_IDS][0] == "tower"
    assert len(found.attributes[names.SCORES]) == len(found.attributes[names.DOC_IDS])
    (call,) = by_kind(spans, "llm")
    assert (call.input_tokens, call.output_tokens) == _usage(usage)
    assert (run.input_tokens, run.output_tokens) == _usage(usage)
    assert run.model == call.model == call.attributes[names.REQUEST_MODEL]
    assert call.attributes[names.CACHE_READ] >= 0
    assert call.attributes[names.MODEL_SHA256] and len(call.attributes[names.MODEL_SHA256]) == 64
    assert (call.attributes[names.TEMPERATURE], call.attributes[names.MAX_TOKENS]) == (0.0, 64)
    prompt = call.attributes[names.INPUT_MESSAGES][0]["parts"][0]["content"]
    assert "[1] The Eiffel Tower" in prompt
    with tracing.TraceStore(path) as store:
        assert [h.run.run_id for h in store.search("Eiffel tall")] == [run.run_id]


def test_an_agent_records_its_model_calls_and_tool_call(chat_llm: Any, tmp_path: Path) -> None:
    tools = load_tools(["calculator"])
    agent = AgentExecutor(
        agent=create_react_agent(chat_llm, tools, step_max_tokens=64), tools=tools,
        max_iterations=1,
        handle_parsing_errors=True,
    )  # fmt: skip
    with (
        tracing.tracing(tmp_path / "t.sqlite") as path,
        get_usage_metadata_callback() as usage,
        tracing.run("agent"),
    ):
        result = agent.invoke({"input": "What is 12 * 7? Use the calculator."})
    [(run, spans)] = recorded(path)
    assert_one_tree(spans)
    calls = by_kind(spans, "llm")
    assert len(calls) >= 2  # a step and the final answer, at least
    assert (run.input_tokens, run.output_tokens) == _usage(usage)
    assert [(c.input_tokens, c.output_tokens) for c in calls] == [
        (c.attributes[names.INPUT_TOKENS], c.attributes[names.OUTPUT_TOKENS]) for c in calls
    ]
    assert all(names.GRAMMAR in c.attributes or names.SCHEMA in c.attributes for c in calls)
    used = [s["action_input"] for s in result["steps"] if s["action"] == "calculator"]
    tools_run = by_kind(spans, "tool")
    assert used and [t.attributes[names.TOOL_ARGUMENTS] for t in tools_run] == used
    for call in tools_run:
        assert call.attributes[names.TOOL_NAME] == "calculator"
        assert call.attributes[names.TOOL_RESULT]
