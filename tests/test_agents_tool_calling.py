"""The tool-calling agent's middleware on scripted models (no GGUF): several calls in one
turn, limits that end with a forced final answer and a reason, tool errors as observations,
retries, fallback, per-tool limits, summarization that keeps calls with their results, the
served-model turn schema."""

from __future__ import annotations

import time
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from orchestrator.agents import create_agent, run_agent
from orchestrator.agents.tool_agent import parse_turn, turn_schema
from orchestrator.models.capabilities import Capabilities
from orchestrator.testing import ScriptedChatModel

RAN: list[str] = []


@tool
def add(a: int, b: int) -> int:
    """Adds two integers."""
    RAN.append(f"add {a} {b}")
    return a + b


@tool
def shout(text: str) -> str:
    """Upper-cases the text."""
    RAN.append(f"shout {text}")
    return text.upper()


@tool
def broken(text: str) -> str:
    """Always fails."""
    raise ValueError(f"cannot handle {text!r}")


def call(name: str, n: int = 0, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": f"c{name}{n}", "type": "tool_call"}


def calls(*items: dict[str, Any]) -> AIMessage:
    return AIMessage("", tool_calls=list(items))


@pytest.fixture(autouse=True)
def _fresh() -> None:
    RAN.clear()


def test_several_calls_in_one_turn_all_run_then_the_answer() -> None:
    model = ScriptedChatModel(
        replies=[calls(call("add", a=1, b=2), call("shout", text="hi")), "3 and HI"]
    )
    result = run_agent(create_agent(model, [add, shout]), "add and shout")
    assert sorted(RAN) == ["add 1 2", "shout hi"]
    assert [s["observation"] for s in result["steps"]] == ["3", "HI"]
    assert result["output"] == "3 and HI"
    assert result["stopped_because"] == "final_answer"


def test_the_step_limit_forces_a_final_answer_without_tools() -> None:
    model = ScriptedChatModel(
        replies=[calls(call("add", 1, a=1, b=1)), calls(call("add", 2, a=2, b=2)), "4, I think"]
    )
    result = run_agent(create_agent(model, [add], max_steps=3), "keep adding")
    assert result["stopped_because"] == "max_iterations"
    assert result["output"] == "4, I think"
    last = model.calls[-1]
    assert not last["kwargs"].get("tools")  # the final answer is asked for without tools
    assert "used all my steps" in last["messages"][-1].content
    assert RAN == ["add 1 1", "add 2 2"]


def test_a_repeated_call_ends_the_run_with_its_reason() -> None:
    model = ScriptedChatModel(
        replies=[calls(call("add", 1, a=1, b=1)), calls(call("add", 2, a=1, b=1)), "2"]
    )
    result = run_agent(create_agent(model, [add]), "add")
    assert result["stopped_because"] == "repeated_action"
    assert RAN == ["add 1 1"]  # the repeat never ran
    assert result["output"] == "2"


def test_a_failing_tool_is_an_observation_and_the_run_goes_on() -> None:
    model = ScriptedChatModel(replies=[calls(call("broken", text="x")), "it failed"])
    result = run_agent(create_agent(model, [broken]), "try")
    observation = result["steps"][0]["observation"]
    assert observation.startswith("Tool broken failed: ValueError: cannot handle 'x'")
    assert result["output"] == "it failed"


class Flaky(ScriptedChatModel):
    failures: int = 0

    def _stream(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("the server hiccuped")
        yield from super()._stream(*args, **kwargs)


def test_model_errors_are_retried_with_backoff() -> None:
    model = Flaky(replies=["fine"], failures=2)
    result = run_agent(create_agent(model, [add], retries=2, retry_delay=0.01), "hello")
    assert result["output"] == "fine"


def test_the_fallback_model_answers_when_the_model_keeps_failing() -> None:
    broken_model = Flaky(replies=[], failures=99)
    backup = ScriptedChatModel(replies=["from the fallback"])
    agent = create_agent(broken_model, [add], retries=1, retry_delay=0.01, fallback=[backup])
    assert run_agent(agent, "hello")["output"] == "from the fallback"


def test_a_tool_at_its_limit_is_no_longer_offered() -> None:
    model = ScriptedChatModel(
        replies=[calls(call("add", 1, a=1, b=1)), calls(call("shout", text="x")), "done"]
    )
    result = run_agent(create_agent(model, [add, shout], tool_limits={"add": 1}), "go")
    offered = [[t.name for t in c["kwargs"].get("tools", [])] for c in model.calls]
    assert offered[0] == ["add", "shout"]
    assert offered[1] == ["shout"]
    assert result["stopped_because"] == "final_answer"


def test_every_tool_at_its_limit_forces_the_final_answer() -> None:
    model = ScriptedChatModel(replies=[calls(call("add", 1, a=1, b=1)), "2"])
    result = run_agent(create_agent(model, [add], tool_limits={"*": 1}), "go")
    assert result["stopped_because"] == "tool_call_limit"
    assert result["output"] == "2"


def test_the_time_limit_forces_the_final_answer() -> None:
    @tool
    def slow(text: str) -> str:
        """Takes its time."""
        time.sleep(0.3)
        return text

    model = ScriptedChatModel(replies=[calls(call("slow", text="a")), "late answer"])
    result = run_agent(create_agent(model, [slow], max_seconds=0.2), "go")
    assert result["stopped_because"] == "max_execution_time"
    assert result["output"] == "late answer"


def served(model: Any, **fields: Any) -> Capabilities:
    """What a served chat model of a test declares."""
    return Capabilities(model=model, chat=True, local=False, label="served", **fields)


def _words(text: str) -> int:
    return len(text.split())


class SmallWindow(ScriptedChatModel):
    """A scripted model that declares a 200-token context window and answers a request to
    summarize with a fixed summary (whenever it comes)."""

    def _stream(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
        if "summar" in str(messages[-1].content).lower() and not kwargs.get("tools"):
            self.replies.insert(0, "summary of the early turns")
        yield from super()._stream(messages, *args, **kwargs)

    def model_capabilities(self) -> Capabilities:
        return served(self, native_tools=True, find_window=lambda: 200, counter=_words)


def test_summarization_near_the_window_keeps_each_call_with_its_result() -> None:
    long = " ".join(["word"] * 40)
    steps = [calls(call("shout", i, text=f"{long} {i}")) for i in range(5)]
    model = SmallWindow(replies=[*steps, "done"])
    result = run_agent(create_agent(model, [shout], max_steps=10), "shout a lot")
    assert result["output"] == "done"
    last_messages = model.calls[-1]["messages"]
    assert any("summary of the early turns" in str(m.content) for m in last_messages)
    asked = {c["id"] for m in last_messages if isinstance(m, AIMessage) for c in m.tool_calls}
    answered = {m.tool_call_id for m in last_messages if isinstance(m, ToolMessage)}
    assert answered and answered <= asked  # no result without the call that asked for it


def test_a_served_model_without_native_tools_decides_under_one_schema() -> None:
    class SchemaOnly(ScriptedChatModel):
        def model_capabilities(self) -> Capabilities:
            return served(self, find_ways=lambda: ("json_schema",))

    model = SchemaOnly(
        replies=[
            '{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}',
            '{"answer": "five"}',
        ],
    )
    result = run_agent(create_agent(model, [add]), "2+3?")
    assert RAN == ["add 2 3"]
    assert result["output"] == "five"
    fmt = model.calls[0]["kwargs"]["response_format"]
    assert fmt["schema"] == turn_schema([_openai(add)])


def _openai(t: Any) -> dict[str, Any]:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    return convert_to_openai_tool(t)


def test_parse_turn_reads_calls_answers_and_plain_text() -> None:
    found = parse_turn('{"tool_calls": [{"name": "add", "arguments": {"a": 1}}]}', ["add"])
    assert found.tool_calls[0]["name"] == "add" and found.tool_calls[0]["args"] == {"a": 1}
    assert parse_turn('{"answer": " yes "}', ["add"]).content == "yes"
    assert parse_turn("just text", ["add"]).content == "just text"
    assert (
        parse_turn('{"tool_calls": [{"name": "nope", "arguments": {}}]}', ["add"]).tool_calls == []
    )


def test_a_thread_continues_with_its_history() -> None:
    model = ScriptedChatModel(replies=["first", "second"])
    agent = create_agent(model, [add], checkpointer=InMemorySaver())
    run_agent(agent, "one", thread_id="t")
    assert run_agent(agent, "two", thread_id="t")["output"] == "second"
    sent = model.calls[-1]["messages"]
    assert [m.content for m in sent if isinstance(m, HumanMessage)] == ["one", "two"]
