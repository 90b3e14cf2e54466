"""The call-or-answer decision on the real embedded model: it calls a tool, with arguments
valid for the tool's schema, for questions that need one, and answers "Say hello." itself;
the decision is the model's (log-likelihood gains, recorded in the reply's metadata), and
the same decision drives ``bind_tools`` and the agent."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from orchestrator.agents import create_agent, run_agent
from orchestrator.llama.tool_choice import CALL_MARGIN

pytestmark = pytest.mark.integration


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return f"It is sunny in {location}."


TOOLS = {"multiply": multiply, "get_weather": get_weather}


@pytest.mark.parametrize(
    ("question", "expected"),
    [("What is 1234 times 5678?", "multiply"), ("What's the weather in Paris?", "get_weather")],
)
def test_a_question_that_needs_a_tool_gets_a_valid_call(
    chat_llm: Any, question: str, expected: str
) -> None:
    reply = chat_llm.bind_tools(list(TOOLS.values())).invoke([HumanMessage(question)])
    (call,) = reply.tool_calls
    assert call["name"] == expected
    TOOLS[expected].args_schema.model_validate(call["args"])  # valid for its schema
    decision = reply.response_metadata["tool_decision"]
    assert decision["call"] and decision["gains"][expected] >= CALL_MARGIN


def test_say_hello_is_answered_without_a_tool_by_the_models_decision(chat_llm: Any) -> None:
    reply = chat_llm.bind_tools(list(TOOLS.values())).invoke([HumanMessage("Say hello.")])
    assert reply.tool_calls == [] and reply.content.strip()
    decision = reply.response_metadata["tool_decision"]
    assert decision["call"] is False
    assert all(gain < CALL_MARGIN for gain in decision["gains"].values())


def test_after_the_result_the_model_answers(chat_llm: Any) -> None:
    bound = chat_llm.bind_tools([get_weather])
    question = HumanMessage("What is the weather in San Francisco, CA?")
    asked = bound.invoke([question])
    result = get_weather.invoke(asked.tool_calls[0])
    answer = bound.invoke([question, asked, result])
    assert answer.tool_calls == [] and answer.content.strip()


def test_the_agent_calls_the_tool_and_answers(chat_llm: Any) -> None:
    agent = create_agent(chat_llm, list(TOOLS.values()))
    result = run_agent(agent, "What's the weather in Paris?")
    assert [s["action"] for s in result["steps"]] == ["get_weather"]
    assert result["steps"][0]["observation"].startswith("It is sunny in")
    assert result["stopped_because"] == "final_answer" and result["output"]
