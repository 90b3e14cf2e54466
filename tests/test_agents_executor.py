"""The ReAct loop with scripted models: the book's interface, limits, errors, events, traces."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.llms import LLM
from langchain_core.outputs import GenerationChunk
from langchain_core.prompts import PromptTemplate
from pydantic import Field
from rich.console import Console

from orchestrator.agents import (
    AgentExecutor,
    AgentFinish,
    AgentParseError,
    AgentTrace,
    DuckDuckGoSearchResults,
    Tool,
    create_react_agent,
    load_tools,
    tool,
)
from orchestrator.agents.testing import FakeSearchBackend
from orchestrator.errors import DataError, OptionError
from orchestrator.prompts.library import REACT
from orchestrator.testing import ScriptedChatModel, ScriptedLLM

CALC = " I should multiply.\nAction: calculator\nAction Input: 37593 * 67\n"
DONE = " I now know the final answer\nFinal Answer: 2518731"


def _executor(llm: Any, tools: list[Any] | None = None, **options: Any) -> AgentExecutor:
    tools = tools if tools is not None else load_tools(["llm-math"], llm=llm)
    options.setdefault("handle_parsing_errors", True)
    return AgentExecutor(agent=create_react_agent(llm, tools), tools=tools, **options)


def test_the_books_agent_code_runs_unchanged() -> None:
    llm = ScriptedLLM(
        replies=[
            " Find the price.\nAction: duckduck\nAction Input: MacBook Pro price USD\n",
            " Convert it.\nAction: Calculator\nAction Input: 1999 * 0.85\n",
            " I now know the final answer\nFinal Answer: about 1699.15 EUR",
        ]
    )
    search = DuckDuckGoSearchResults(
        backend=FakeSearchBackend(
            {"macbook": [{"title": "MacBook Pro", "href": "https://a.example", "body": "$1,999"}]}
        )
    )
    search_tool = Tool(
        name="duckduck",
        description="A web search engine. Use this to as a search engine for general queries.",
        func=search.run,
    )
    react_prompt = PromptTemplate(
        template=REACT, input_variables=["tools", "tool_names", "input", "agent_scratchpad"]
    )
    tools = load_tools(["llm-math"], llm=llm)
    tools.append(search_tool)
    agent = create_react_agent(llm, tools, react_prompt)
    agent_executor = AgentExecutor(
        agent=agent, tools=tools, verbose=False, handle_parsing_errors=True
    )
    result = agent_executor.invoke({"input": "What is the price of a MacBook Pro in EUR?"})
    assert result["output"] == "about 1699.15 EUR"
    assert result["stopped_because"] == "final_answer"
    assert [s["action"] for s in result["steps"]] == ["duckduck", "calculator"]
    assert result["steps"][1]["observation"] == "1699.15"
    # each observation reaches the model's next prompt, and generation stops at Observation:
    assert "Observation: snippet: $1,999, title: MacBook Pro" in llm.prompts[1]
    assert (
        "Action: calculator\nAction Input: 1999 * 0.85\nObservation: 1699.15\nThought: "
        in (llm.prompts[2])
    )
    assert all(stop == ["\nObservation:"] for stop in llm.stops)
    assert "calculator - Evaluates one arithmetic expression" in llm.prompts[0]


def test_chat_models_work_and_intermediate_steps_are_returned() -> None:
    llm = ScriptedChatModel(replies=["Thought: maths\n" + CALC.split("\n", 1)[1], DONE])
    result = _executor(llm, return_intermediate_steps=True).invoke("What is 37593 * 67?")
    assert result["output"] == "2518731"
    ((action, observation),) = result["intermediate_steps"]
    assert (action.tool, action.tool_input, observation) == ("calculator", "37593 * 67", "2518731")
    assert "Observation: 2518731" in llm.calls[1]["messages"][0].content


def test_only_the_first_action_runs() -> None:
    calls: list[str] = []

    @tool
    def record(text: str) -> str:
        """Records its input."""
        calls.append(text)
        return "ok"

    llm = ScriptedLLM(
        replies=[
            " Two.\nAction: record\nAction Input: one\nAction: record\nAction Input: two",
            DONE,
        ]
    )
    result = _executor(llm, [record]).invoke({"input": "go"})
    assert calls == ["one"] and result["stopped_because"] == "final_answer"


def test_parse_errors_are_fed_back_when_handled() -> None:
    llm = ScriptedLLM(replies=["no format at all", DONE])
    result = _executor(llm).invoke({"input": "q"})
    assert result["steps"][0]["parse_error"] is True
    assert "Observation: Invalid Format: Missing 'Action:' after 'Thought:'" in llm.prompts[1]
    assert result["output"] == "2518731"


def test_parse_error_handler_may_be_text_or_callable() -> None:
    llm = ScriptedLLM(replies=["junk", "junk 2", DONE])
    seen: list[str] = []

    def handler(exc: Exception) -> str:
        seen.append(type(exc).__name__)
        return "Use the format, please."

    _executor(llm, handle_parsing_errors=handler).invoke({"input": "q"})
    assert seen == ["OutputParserException", "OutputParserException"]
    assert llm.prompts[2].count("Observation: Use the format, please.") == 2
    fixed = ScriptedLLM(replies=["junk", DONE])
    _executor(fixed, handle_parsing_errors="Try again.").invoke({"input": "q"})
    assert "Observation: Try again." in fixed.prompts[1]


def test_parse_errors_raise_when_not_handled() -> None:
    with pytest.raises(AgentParseError) as info:
        _executor(ScriptedLLM(replies=["junk"]), handle_parsing_errors=False).invoke("q")
    assert "handle_parsing_errors=True" in (info.value.fix or "")


def test_max_iterations_asks_once_more_for_a_final_answer_without_tools() -> None:
    llm = ScriptedLLM(
        replies=[
            " a\nAction: calculator\nAction Input: 1+1",
            " b\nAction: calculator\nAction Input: 2+2",
            " The answer is 4.",
        ]
    )
    result = _executor(llm, max_iterations=2).invoke({"input": "q"})
    assert result["stopped_because"] == "max_iterations"
    assert result["output"] == "The answer is 4."
    assert llm.prompts[2].endswith(
        "I have used all my steps, so I must answer now from what I found.\nFinal Answer:"
    )
    assert "Observation: 4\nThought: " in llm.prompts[2]


def test_force_returns_the_classic_message_without_a_model_call() -> None:
    llm = ScriptedLLM(replies=[])
    result = _executor(llm, max_iterations=0, early_stopping_method="force").invoke("q")
    assert result["output"] == "Agent stopped due to iteration limit or time limit."
    assert llm.prompts == []


def test_a_repeated_identical_action_ends_the_loop() -> None:
    calls: list[str] = []

    @tool
    def lookup(query: str) -> str:
        """Looks something up."""
        calls.append(query)
        return "Paris"

    step = " Look.\nAction: lookup\nAction Input: capital of France"
    llm = ScriptedLLM(replies=[step, step, "Final Answer: Paris"])
    events = list(_executor(llm, [lookup]).stream({"input": "capital?"}))
    assert calls == ["capital of France"]
    limit = next(e for e in events if e["type"] == "limit")
    assert limit == {
        "type": "limit",
        "reason": "repeated_action",
        "action": "lookup",
        "action_input": "capital of France",
    }
    assert events[-1]["result"]["output"] == "Paris"
    assert events[-1]["stopped_because"] == "repeated_action"


def test_the_same_unparseable_output_twice_ends_the_loop() -> None:
    llm = ScriptedLLM(replies=["junk", "junk", "Final Answer: dunno"])
    result = _executor(llm).invoke("q")
    assert result["stopped_because"] == "repeated_output"
    assert result["output"] == "dunno"


def test_max_execution_time_stops_between_steps() -> None:
    @tool
    def slow(query: str) -> str:
        """Takes a while."""
        time.sleep(0.3)
        return "done"

    llm = ScriptedLLM(replies=[" s\nAction: slow\nAction Input: x", "Final Answer: late"])
    result = _executor(llm, [slow], max_execution_time=0.1).invoke("q")
    assert result["stopped_because"] == "max_execution_time"
    assert result["output"] == "late" and len(result["steps"]) == 1


class _SlowStreamingLLM(LLM):
    """Streams one word every 50 ms, forever unless stopped (a model that never ends)."""

    produced: list[str] = Field(default_factory=list)
    finals: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "slow"

    def _call(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> str:
        self.finals.append(prompt)
        return "Final Answer: gave up"

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        if prompt.endswith("Final Answer:"):
            yield GenerationChunk(text=self._call(prompt))
            return
        while True:
            time.sleep(0.05)
            self.produced.append("word")
            yield GenerationChunk(text="word ")


def test_max_execution_time_interrupts_a_generation_in_progress() -> None:
    llm = _SlowStreamingLLM()
    result = _executor(llm, max_execution_time=0.3).invoke("q")
    assert result["stopped_because"] == "max_execution_time"
    assert result["output"] == "gave up"
    assert 1 <= len(llm.produced) < 100


def test_tool_errors_and_unknown_tools_become_observations() -> None:
    @tool
    def broken(query: str) -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    llm = ScriptedLLM(
        replies=[
            " t\nAction: broken\nAction Input: x",
            " t\nAction: teleport\nAction Input: moon",
            DONE,
        ]
    )
    result = _executor(llm, [broken]).invoke("q")
    observations = [s["observation"] for s in result["steps"]]
    assert observations == [
        "Tool broken failed: RuntimeError: disk on fire",
        "teleport is not a valid tool, try one of [broken].",
    ]


def test_decorated_multi_argument_and_return_direct_tools() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Adds two integers."""
        return a + b

    direct = Tool(name="echo", description="Echoes", func=lambda s: f"echo {s}", return_direct=True)
    llm = ScriptedLLM(
        replies=[
            ' t\nAction: add\nAction Input: {"a": 2, "b": 3}',
            " t\nAction: echo\nAction Input: hi",
        ]
    )
    result = _executor(llm, [add, direct]).invoke("q")
    assert result["steps"][0]["observation"] == "5"
    assert result["output"] == "echo hi" and result["stopped_because"] == "return_direct"


def test_long_observations_are_truncated() -> None:
    big = Tool(name="big", description="Big output", func=lambda s: "x" * 5000)
    llm = ScriptedLLM(replies=[" t\nAction: big\nAction Input: go", DONE])
    result = _executor(llm, [big], max_observation_chars=100).invoke("q")
    assert result["steps"][0]["observation"] == "x" * 100 + " ... [truncated]"


def test_events_stream_in_order_and_verbose_prints_them() -> None:
    llm = ScriptedLLM(replies=[CALC, "junk", DONE])
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=200)
    events = list(_executor(llm, verbose=True, console=console).stream({"input": "q"}))
    kinds = [e["type"] for e in events]
    assert kinds == ["start", "action", "observation", "parse_error", "final"]
    assert events[1]["action"] == "calculator" and events[2]["observation"] == "2518731"
    printed = buffer.getvalue()
    for text in ("Action: calculator", "Observation: 2518731", "Final Answer: 2518731"):
        assert text in printed
    assert "stopped because: final_answer" in printed


def test_runs_are_saved_as_json_traces(tmp_path: Path) -> None:
    llm = ScriptedLLM(replies=[CALC, DONE])
    executor = _executor(llm, trace_dir=tmp_path)
    executor.invoke({"input": "What is 37593 * 67?"})
    (path,) = tmp_path.glob("agent-*.json")
    data = json.loads(path.read_text())
    assert data["input"] == "What is 37593 * 67?" and data["output"] == "2518731"
    assert data["steps"][0]["raw"] == CALC and data["parse_errors"] == 0
    assert data["grammar"] is False and data["model"] == "ScriptedLLM"
    loaded = AgentTrace.load(path)
    assert loaded.steps[0].observation == "2518731"
    assert executor.last_trace is not None and executor.last_trace.run_id == loaded.run_id
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(DataError):
        AgentTrace.load(bad)


def test_options_are_closed_and_checked() -> None:
    llm = ScriptedLLM(replies=[])
    tools = load_tools(["calculator"])
    agent = create_react_agent(llm, tools)
    with pytest.raises(OptionError) as info:
        AgentExecutor(agent=agent, tools=tools, max_iteration=3)
    assert "max_iterations" in (info.value.fix or "")
    with pytest.raises(OptionError):
        AgentExecutor(agent=object(), tools=tools)
    with pytest.raises(OptionError):
        AgentExecutor(agent=agent, tools=[])
    with pytest.raises(OptionError):
        create_react_agent(llm, tools, PromptTemplate.from_template("{input}"))
    with pytest.raises(OptionError):
        create_react_agent(llm, tools, grammar=True)
    with pytest.raises(OptionError):
        create_react_agent(llm, [])
    with pytest.raises(OptionError):
        AgentExecutor(agent=agent, tools=tools).invoke({"question": "no input key"})


def test_the_agent_is_a_runnable_step() -> None:
    llm = ScriptedLLM(replies=[DONE])
    agent = create_react_agent(llm, load_tools(["calculator"]))
    result = agent.invoke({"input": "q", "intermediate_steps": []})
    assert isinstance(result, AgentFinish) and result.return_values["output"] == "2518731"


def test_the_agent_carries_on_when_web_search_is_down() -> None:
    search = DuckDuckGoSearchResults(backend=FakeSearchBackend(error=OSError("network down")))
    llm = ScriptedLLM(
        replies=[
            " Search.\nAction: web_search\nAction Input: price of gold\n",
            " Compute instead.\nAction: calculator\nAction Input: 2 * 1900\n",
            " Done.\nFinal Answer: 3800",
        ]
    )
    tools = [*load_tools(["calculator"]), search]
    result = _executor(llm, tools).invoke({"input": "Two ounces of gold at 1900?"})
    assert result["steps"][0]["observation"].startswith(
        "Web search is unavailable: there is no network connection."
    )
    assert result["steps"][1]["observation"] == "3800"
    assert result["output"] == "3800" and result["stopped_because"] == "final_answer"
