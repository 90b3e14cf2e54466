"""A RAG chain and an agent called from Python, without ``tracing.run``, are each one run:
the retrieval, the steps and their model and tool calls are child spans of its root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tracing_support import ListRetriever, assert_one_tree, by_kind, recorded

from orchestrator import tracing
from orchestrator.agents import AgentExecutor, create_react_agent, tool
from orchestrator.chains import rag_chain
from orchestrator.testing import ScriptedChatModel, ScriptedLLM


@tool
def lookup(query: str) -> str:
    """Looks up a population."""
    return "2.1 million"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    with tracing.tracing(tmp_path / "traces.sqlite") as path:
        yield path


def test_a_rag_chain_stream_and_invoke_are_one_run_each(store: Path) -> None:
    chain = rag_chain(ScriptedChatModel(replies=["330 m [1].", "330 m [1]."]), ListRetriever())
    parts = list(chain.stream({"question": "How tall is the Eiffel Tower?"}))
    result = chain.invoke({"question": "How tall is the Eiffel Tower?"})
    assert "".join(p.get("answer", "") for p in parts) == result["answer"] == "330 m [1]."
    runs = recorded(store)
    assert len(runs) == 2
    for run, spans in runs:
        assert_one_tree(spans)
        (root,) = [s for s in spans if s.parent_id is None]
        assert (run.name, run.status, run.root_span) == ("RAGChain", "ok", root.span_id)
        assert run.input == "How tall is the Eiffel Tower?"
        (found,) = by_kind(spans, "retriever")
        assert found.parent_id == root.span_id
        assert len(by_kind(spans, "llm")) == 1


def test_an_agent_invoke_is_one_run_with_a_span_per_step(store: Path) -> None:
    llm = ScriptedLLM(
        replies=[
            " Look it up.\nAction: lookup\nAction Input: paris\n",
            " I now know the final answer\nFinal Answer: 2.1 million",
        ]
    )
    agent = AgentExecutor(agent=create_react_agent(llm, [lookup]), tools=[lookup])
    assert agent.invoke({"input": "How many people live in Paris?"})["output"] == "2.1 million"
    [(run, spans)] = recorded(store)
    assert_one_tree(spans)
    (root,) = [s for s in spans if s.parent_id is None]
    assert (run.name, run.status, root.kind) == ("AgentExecutor", "ok", "agent")
    assert run.output == "2.1 million"
    steps = by_kind(spans, "agent_step")
    assert [s.name for s in steps] == ["agent step 1", "agent step 2"]
    assert all(s.parent_id == root.span_id for s in steps)
    step_ids = {s.span_id for s in steps}
    (used,) = by_kind(spans, "tool")
    assert used.parent_id == steps[0].span_id
    calls = by_kind(spans, "llm")
    assert len(calls) == 2 and all(c.parent_id in step_ids for c in calls)
    assert all(p.parent_id in step_ids for p in by_kind(spans, "prompt"))
