"""A final answer is only the answer: a step the model invents after it is cut.

After ``Final Answer:`` a model may go on with ``Thought:``, ``Action:`` or ``Observation:``
(or a new ``Question:``); none of that reaches ``output``, on the invoke, stream and astream
paths, for a step answer and for the tool-less answer asked for when a limit stops the loop.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from orchestrator.agents import AgentExecutor, create_react_agent, load_tools
from orchestrator.agents.parser import clean_answer, parse_step
from orchestrator.testing import ScriptedChatModel, ScriptedLLM

LABEL_LINE = re.compile(r"^\s*(Thought|Action|Action Input|Observation|Question)\s*:", re.M)
RUN_ON = (
    " I know it.\nFinal Answer: 42\nThought: I should double-check\n"
    "Action: calculator\nAction Input: 6*7\n"
)


def _has_labels(text: str) -> bool:
    return bool(LABEL_LINE.search(text)) or any(
        label in text for label in ("Thought:", "Action:", "Observation:")
    )


@pytest.mark.parametrize(
    ("raw", "answer"),
    [
        (" 42\nThought: check\nAction: calculator", "42"),
        (" 42 Observation: 42\nThought: done", "42"),
        ("Final Answer: 42\nAction Input: 6*7", "42"),
        (" Paris is the capital.\n\nQuestion: and Spain?", "Paris is the capital."),
        (" 42 Final Answer: 42", "42"),
        (" The thought: that counts is kind.", "The thought: that counts is kind."),
        (" Two lines\nof answer.", "Two lines\nof answer."),
    ],
)
def test_clean_answer_cuts_at_the_first_invented_step(raw: str, answer: str) -> None:
    assert clean_answer(raw) == answer


def test_a_step_answer_with_a_run_on_step_is_cut() -> None:
    finish = parse_step(RUN_ON, ["calculator"])
    assert finish.return_values["output"] == "42"  # type: ignore[union-attr]


def _executor(llm: Any, **options: Any) -> AgentExecutor:
    tools = load_tools(["calculator"])
    options.setdefault("handle_parsing_errors", True)
    return AgentExecutor(agent=create_react_agent(llm, tools), tools=tools, **options)


def _outputs(replies: list[str], **options: Any) -> list[str]:
    """The output on the invoke, stream and astream paths (a fresh fake model each)."""
    invoked = _executor(ScriptedLLM(replies=list(replies)), **options).invoke("q")["output"]
    streamed = list(_executor(ScriptedLLM(replies=list(replies)), **options).stream("q"))[-1]

    async def collect() -> list[dict[str, Any]]:
        executor = _executor(ScriptedLLM(replies=list(replies)), **options)
        return [event async for event in executor.astream("q")]

    events = asyncio.run(collect())
    assert streamed["type"] == events[-1]["type"] == "final"
    return [invoked, streamed["output"], events[-1]["output"], events[-1]["result"]["output"]]


def test_run_on_after_the_final_answer_is_cut_on_every_path() -> None:
    assert _outputs([RUN_ON]) == ["42"] * 4


def test_the_forced_final_answer_is_cut_on_every_path() -> None:
    replies = [" 42\nThought: I need more\nAction: calculator\nAction Input: 1+1"]
    assert _outputs(replies, max_iterations=0) == ["42"] * 4
    # the answer before a bare repeated label is kept, not replaced by the run-on
    bare = " 80\nFinal Answer:\n\nQuestion: what else?\nThought: hm"
    assert _outputs([bare], max_iterations=0) == ["80"] * 4


def test_a_chat_model_run_on_is_cut_too() -> None:
    llm = ScriptedChatModel(replies=["Thought: easy\n" + RUN_ON.lstrip()])
    tools = load_tools(["calculator"])
    result = AgentExecutor(agent=create_react_agent(llm, tools), tools=tools).invoke("q")
    assert result["output"] == "42"


@pytest.mark.integration
def test_the_real_model_never_leaves_steps_in_its_final_answer() -> None:
    """Unconstrained (grammar off), SmolLM2 runs on after its answer; none of it is output."""
    from orchestrator import LlamaCpp

    llm = LlamaCpp(temperature=0.0, seed=0, max_tokens=120)
    tools = load_tools(["calculator"])
    ran_on = 0
    for question in ("What is 12 times 7?", "Who wrote Hamlet?", "What is 2 to the power 10?"):
        for limit in (0, 1, 2):
            executor = AgentExecutor(
                agent=create_react_agent(llm, tools, grammar=False),
                tools=tools,
                max_iterations=limit,
                handle_parsing_errors=True,
            )
            events = list(executor.stream({"input": question}))
            assert executor.last_trace is not None
            ran_on += bool(LABEL_LINE.search(executor.last_trace.final_raw))
            output = events[-1]["output"]
            assert output == events[-1]["result"]["output"]
            assert not _has_labels(output), (question, limit, output)
    assert ran_on > 0  # the model did invent further steps, and they were cut
