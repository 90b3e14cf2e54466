"""Agent metrics (evals/agents.py) on scripted ReAct runs: tool-call accuracy, the judged goal
(through the grammar-constrained judge), the answer baseline, steps and tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.agents import AgentExecutor, create_react_agent, load_tools
from orchestrator.cli.app import app
from orchestrator.errors import DataError, OptionError
from orchestrator.evals.agents import AgentTask, evaluate_agent, load_tasks, tool_calls
from orchestrator.testing import ScriptedChatModel, ScriptedLLM

CALC = " I should multiply.\nAction: calculator\nAction Input: 37593  * 67\n"
WRONG = " I should add.\nAction: calculator\nAction Input: 37593 + 67\n"
DONE = " I now know the final answer\nFinal Answer: 2518731"
TASK = AgentTask(
    "calc",
    "What is 37593 * 67?",
    "2518731",
    [{"name": "calculator", "args": {"expression": "37593 * 67"}}],
)


def _executor(replies: list[str]) -> AgentExecutor:
    llm = ScriptedLLM(replies=replies)
    tools = load_tools(["calculator"])
    return AgentExecutor(agent=create_react_agent(llm, tools), tools=tools, max_iterations=3)


def test_right_tool_and_arguments_score_one_and_steps_and_tokens_are_counted() -> None:
    result = evaluate_agent(_executor([CALC, DONE]), [TASK], count_tokens=lambda t: len(t.split()))
    (row,) = result.to_json()["samples"]
    assert row["tool_calls"] == [{"name": "calculator", "args": {"input": "37593 * 67"}}]
    assert row["scores"]["tool_call_accuracy"] == 1.0  # plain input matched to 'expression'
    assert row["scores"]["answer_match"] == 1.0 and row["scores"]["num_steps"] == 1.0
    assert row["scores"]["num_tokens"] > 5  # counted on the steps' text: no usage reported
    assert result.failed == [] and result.mean["tool_call_accuracy"] == 1.0


def test_wrong_arguments_wrong_order_and_missing_references() -> None:
    tasks = [TASK, AgentTask("free", "Multiply 37593 by 67.", "2518731")]
    agent = _executor([WRONG, " Done.\nFinal Answer: 37660", CALC, DONE])
    result = evaluate_agent(agent, tasks)
    wrong, free = result.samples
    assert wrong["scores"]["tool_call_accuracy"] == 0.0 and wrong["scores"]["answer_match"] == 0.0
    assert "tool_call_accuracy" not in free["scores"]
    assert result.failed == [
        {
            "id": "free",
            "metric": "tool_call_accuracy",
            "reason": "the task has no reference_tool_calls",
        }
    ]
    assert result.mean["answer_match"] == 0.5


def test_goal_accuracy_is_judged_under_the_verdict_schema() -> None:
    from orchestrator.evals.judge import LlamaJudge

    judge_llm = ScriptedChatModel(
        replies=[
            json.dumps({"user_goal": "multiply", "end_state": "the product 2518731 was given"}),
            json.dumps({"reason": "same number", "verdict": "1"}),
        ],
        constraint="json_schema",
    )
    judge = LlamaJudge(llm=judge_llm)
    result = evaluate_agent(_executor([CALC, DONE]), [TASK], ["goal_accuracy"], judge=judge)
    assert result.samples[0]["scores"] == {"goal_accuracy": 1.0}, result.failed
    schema = judge_llm.calls[1]["kwargs"]["response_format"]["schema"]
    assert schema["properties"]["verdict"]["enum"] == ["0", "1"]  # the verdict is constrained
    with pytest.raises(OptionError, match="needs a judge"):
        evaluate_agent(_executor([]), [TASK], ["goal_accuracy"])


def test_tool_calls_parse_json_inputs_and_skip_parse_errors() -> None:
    steps = [
        {"action": "search", "action_input": '{"query": "a  b", "k": 2}'},
        {"action": None, "action_input": None, "parse_error": True},
    ]
    assert tool_calls(steps) == [{"name": "search", "args": {"query": "a b", "k": 2}}]


def test_task_sets_are_read_strictly(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps({"id": "a", "input": "q", "reference": "r"}) + "\n")
    assert load_tasks(path) == [AgentTask("a", "q", "r")]
    path.write_text(json.dumps({"input": "q", "reference": "r", "tools": []}) + "\n")
    with pytest.raises(DataError, match=r"tasks\.jsonl:1"):
        load_tasks(path)
    path.write_text(json.dumps({"input": "q", "reference": "r", "reference_tool_calls": [1]}))
    with pytest.raises(DataError, match="reference_tool_calls"):
        load_tasks(path)


@pytest.mark.integration
def test_cli_eval_agent_runs_the_embedded_model_and_writes_items(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        json.dumps({**TASK.__dict__, "reference_tool_calls": TASK.reference_tool_calls}) + "\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "agent",
            "--dataset",
            str(tasks),
            "--tools",
            "calculator",
            "--max-steps",
            "2",
            "--metrics",
            "tool_call_accuracy,answer_match,num_steps,num_tokens",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    mean = json.loads(result.stdout)["mean"]
    assert set(mean) == {"tool_call_accuracy", "answer_match", "num_steps", "num_tokens"}
    assert mean["num_tokens"] > 0  # the real model reports its usage
    row = json.loads((out / "items.jsonl").read_text().splitlines()[0])
    assert row["id"] == "calc" and "tool_calls" in row and row["model_sha256"]


def test_the_agentic_rag_agent_is_measured_the_same_way() -> None:
    from langchain_core.vectorstores import InMemoryVectorStore

    from orchestrator.agents.agentic_rag import agentic_rag
    from orchestrator.testing import HashEmbeddings

    text = "The Zorblat river is 842 km long and flows into the Quenta sea."
    store = InMemoryVectorStore.from_texts([text], HashEmbeddings(), metadatas=[{"doc_id": "z"}])
    llm = ScriptedChatModel(
        replies=[
            "Thought: search\nAction: rivers\nAction Input: Zorblat  river\n",
            "Thought: I now know the final answer\nFinal Answer: It is 842 km long [1].",
        ]
    )
    agent = agentic_rag({"rivers": store.as_retriever(search_kwargs={"k": 1})}, llm)
    task = AgentTask(
        "z", "How long is the Zorblat?", "842 km", [{"name": "rivers", "args": "Zorblat river"}]
    )
    (row,) = evaluate_agent(agent, [task]).samples
    assert row["tool_calls"] == [{"name": "rivers", "args": {"input": "Zorblat river"}}]
    assert row["scores"]["tool_call_accuracy"] == 1.0 and row["scores"]["answer_match"] == 1.0
    assert row["output"] == "It is 842 km long [1]." and row["scores"]["num_steps"] == 1.0
