"""Approvals of the tool-calling agent on a scripted model: approve, edit (checked against
the tool's schema and policy), reject with a reason, a run that waits and is resumed."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from orchestrator.agents import create_agent, run_agent
from orchestrator.agents.tool_agent import PendingCall, check_decision
from orchestrator.errors import OptionError
from orchestrator.testing import ScriptedChatModel

SENT: list[str] = []


@tool
def send_email(to: str, subject: str) -> str:
    """Sends an email."""
    SENT.append(f"{to}: {subject}")
    return f"sent to {to}"


@tool
def lookup(name: str) -> str:
    """Looks a name up."""
    return f"{name} is at example.org"


def turn(to: str = "ann@example.org") -> AIMessage:
    args = {"to": to, "subject": "hi"}
    return AIMessage("", tool_calls=[{"name": "send_email", "args": args, "id": "c1"}])


def agent_for(model: ScriptedChatModel) -> Any:
    return create_agent(
        model, [send_email, lookup], checkpointer=InMemorySaver(), approve=["send_email"]
    )


@pytest.fixture(autouse=True)
def _fresh() -> None:
    SENT.clear()


def test_an_approved_call_runs() -> None:
    model = ScriptedChatModel(replies=[turn(), "done"])
    result = run_agent(agent_for(model), "mail Ann", decide=lambda call: {"type": "approve"})
    assert SENT == ["ann@example.org: hi"]
    assert result["output"] == "done"


def test_an_edited_call_runs_with_the_new_arguments() -> None:
    model = ScriptedChatModel(replies=[turn(), "done"])
    edit = {"type": "edit", "edited_action": {"name": "send_email",
            "args": {"to": "bob@example.org", "subject": "hi"}}}  # fmt: skip
    result = run_agent(agent_for(model), "mail Ann", decide=lambda call: edit)
    assert SENT == ["bob@example.org: hi"]
    assert "bob@example.org" in result["steps"][0]["observation"]


def test_a_rejected_call_does_not_run_and_the_model_reads_why() -> None:
    model = ScriptedChatModel(replies=[turn(), "ok, I will not"])
    reject = {"type": "reject", "message": "Ann is on holiday"}
    result = run_agent(agent_for(model), "mail Ann", decide=lambda call: reject)
    assert SENT == []
    seen = model.calls[-1]["messages"]
    assert any(isinstance(m, ToolMessage) and "Ann is on holiday" in m.text for m in seen)
    assert result["output"] == "ok, I will not"


def test_without_a_reviewer_the_run_waits_and_resumes_later() -> None:
    model = ScriptedChatModel(replies=[turn(), "done"])
    agent = agent_for(model)
    waiting = run_agent(agent, "mail Ann", thread_id="t1")
    assert waiting["stopped_because"] == "awaiting_approval"
    assert waiting["pending"][0]["action"] == "send_email" and SENT == []
    done = run_agent(agent, None, thread_id="t1", resume=True, decide=lambda c: {"type": "approve"})
    assert SENT == ["ann@example.org: hi"] and done["output"] == "done"


def test_python_resumes_with_langgraphs_command() -> None:
    model = ScriptedChatModel(replies=[turn(), "done"])
    agent = agent_for(model)
    config = {"configurable": {"thread_id": "t2"}}
    agent.invoke({"messages": [("user", "mail Ann")]}, config)
    (pending,) = agent.get_state(config).interrupts
    agent.invoke(Command(resume={pending.id: {"type": "approve"}}), config)
    assert SENT == ["ann@example.org: hi"]


CALL = PendingCall(
    "i1", "c1", "send_email", {"to": "a", "subject": "b"}, "", ("approve", "edit", "reject")
)


@pytest.mark.parametrize(
    ("decision", "problem"),
    [
        ({"type": "edit", "edited_action": {"name": "send_email", "args": {"to": 3}}}, "subject"),
        ({"type": "edit", "edited_action": {"name": "lookup", "args": {"name": "x"}}}, "another"),
        ({"type": "reject", "message": " "}, "reason"),
        ({"type": "respond", "message": "hi"}, "not a decision allowed"),
    ],
)
def test_bad_decisions_are_refused_with_the_problem(decision: dict[str, Any], problem: str) -> None:
    tools = {"send_email": send_email, "lookup": lookup}
    with pytest.raises(OptionError, match=problem):
        check_decision(CALL, decision, tools)


def test_approval_of_an_unknown_tool_is_an_error_naming_the_closest() -> None:
    with pytest.raises(OptionError, match="send_emial") as info:
        create_agent(ScriptedChatModel(), [send_email], approve=["send_emial"])
    assert "send_email" in info.value.fix
