"""Durable runs of the tool-calling agent, with real processes: ``orchestrator agent --mode
tools`` on the embedded model with three MCP tools that each append a line to a file is
killed with ``-9`` at a step and resumed with ``--thread ID --resume``: every booking is made,
none twice. (20 such runs, at random steps and delays: ``benchmarks/agent_durability.py``.)
Also: checkpoints in PostgreSQL, and the storage a thread keeps."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from agent_tools_support import (
    EXPECTED,
    duplicates,
    resume,
    run_killed,
    summary_line,
    write_bookings,
)
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from orchestrator.agents import create_agent, run_agent
from orchestrator.agents.tool_agent import (
    close_checkpointer,
    open_checkpointer,
    prune_thread,
    thread_bytes,
)
from orchestrator.testing import ScriptedChatModel


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize(("after", "delay"), [(2, 0.0), (3, 0.3)])
def test_a_run_killed_at_a_step_resumes_without_running_a_tool_twice(
    tmp_path: Path, after: int, delay: float
) -> None:
    config, log = write_bookings(tmp_path / "tools")
    thread = uuid.uuid4().hex[:8]
    seen = run_killed(config, tmp_path / "home", thread, after, delay)
    assert seen >= after  # killed mid-run, not after it ended
    done, _ = resume(config, tmp_path / "home", thread)
    assert done.returncode == 0, done.stderr[-2000:]
    extra, lines = duplicates(log)
    assert extra == 0, lines
    assert sorted(lines) == sorted(EXPECTED)
    assert "stopped because final_answer" in summary_line(done)


@tool
def note(text: str) -> str:
    """Notes a text."""
    return f"noted: {text}"


def _steps(n: int) -> list[AIMessage | str]:
    return [
        *[
            AIMessage(
                "", tool_calls=[{"name": "note", "args": {"text": f"item {i}"}, "id": f"c{i}"}]
            )
            for i in range(n)
        ],
        "done",
    ]


def test_a_thread_keeps_one_checkpoint_not_one_per_step(tmp_path: Path) -> None:
    saver = open_checkpointer(tmp_path / "cp.sqlite")
    try:
        kept = create_agent(
            ScriptedChatModel(replies=_steps(20)), [note], checkpointer=saver, max_steps=30
        )
        run_agent(kept, "note", thread_id="all", prune=False)
        everything = thread_bytes(saver, "all")
        pruned = create_agent(
            ScriptedChatModel(replies=_steps(20)), [note], checkpointer=saver, max_steps=30
        )
        run_agent(pruned, "note", thread_id="pruned")
        one = thread_bytes(saver, "pruned")
        assert everything["checkpoints"] > 20 and one["checkpoints"] == 1
        assert one["state_bytes"] * 10 < everything["state_bytes"]
        prune_thread(saver, "all")
        assert thread_bytes(saver, "all")["checkpoints"] == 1
        state = pruned.get_state({"configurable": {"thread_id": "pruned"}}).values
        assert state["messages"][-1].content == "done" and len(state["messages"]) == 42
    finally:
        close_checkpointer(saver)


@pytest.mark.integration
def test_checkpoints_in_postgresql(pg_dsn: str) -> None:
    saver = open_checkpointer(pg_dsn)
    try:
        agent = create_agent(ScriptedChatModel(replies=_steps(3)), [note], checkpointer=saver)
        result = run_agent(agent, "note", thread_id="pg", prune=False)
        assert result["output"] == "done" and len(result["steps"]) == 3
        assert thread_bytes(saver, "pg")["checkpoints"] > 3
        prune_thread(saver, "pg")  # LangGraph's PostgresSaver.prune
        assert thread_bytes(saver, "pg")["checkpoints"] == 1
        more = create_agent(ScriptedChatModel(replies=["again"]), [note], checkpointer=saver)
        assert run_agent(more, "and now?", thread_id="pg")["output"] == "again"
    finally:
        close_checkpointer(saver)
