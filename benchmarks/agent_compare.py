"""The agent suite's tasks on three agents (``agent_suite.py --agents tools,langchain,react``).

- ``tools``: ``orchestrator.agents.create_agent`` (LangChain's agent with the local model's
  call-or-answer decision, grammar-constrained calls, limits with a forced final answer);
- ``langchain``: ``langchain.agents.create_agent(ChatLlamaCpp(...), tools)`` as it is
  (``ChatLlamaCpp.bind_tools`` makes the same call-or-answer decision; nothing else added;
  its only bound is LangGraph's recursion limit, two graph steps per agent step);
- ``react``: the ReAct executor on the completion model, grammar on (the suite's best).

Per agent: tool tasks where a tool was called, where every needed tool was called, calls
whose arguments validate against the tool's schema, correct answers; chat tasks
(:data:`CHAT_TASKS`, which need no tool) answered without one; seconds per task.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from rich.console import Console
from rich.table import Table

CHAT_TASKS = ["Say hello.", "Thank you!", "What is your name?", "Tell me a joke."]
NEEDED = {
    "calc": {"calculator"},
    "kb": {"knowledge_base"},
    "both": {"calculator", "knowledge_base"},
}


def run_tools(question: str, llm: Any, tools: list[Any], args: Any) -> dict[str, Any]:
    from orchestrator.agents import create_agent, run_agent

    agent = create_agent(llm, tools, max_steps=args.max_steps + 1, max_seconds=args.max_time)
    result = run_agent(agent, question)
    calls = [(s["action"], s["args"]) for s in result["steps"]]
    return {"calls": calls, "output": result["output"], "stopped": result["stopped_because"]}


def run_langchain(question: str, llm: Any, tools: list[Any], args: Any) -> dict[str, Any]:
    from langchain.agents import create_agent
    from langgraph.errors import GraphRecursionError

    agent = create_agent(llm, tools)
    state: dict[str, Any] = {"messages": []}
    stopped = "final_answer"
    config = {"recursion_limit": 2 * args.max_steps + 1}
    try:
        for state in agent.stream(  # noqa: B007 (the last state is kept)
            {"messages": [HumanMessage(question)]}, config, stream_mode="values"
        ):
            pass
    except GraphRecursionError:
        stopped = "recursion_limit"
    messages = [m for m in state["messages"] if isinstance(m, AIMessage)]
    calls = [(c["name"], c["args"]) for m in messages for c in m.tool_calls]
    answers = [m for m in messages if not m.tool_calls]
    output = str(answers[-1].content) if answers and stopped == "final_answer" else ""
    return {"calls": calls, "output": output, "stopped": stopped}


def run_react(question: str, llm: Any, tools: list[Any], args: Any) -> dict[str, Any]:
    from orchestrator.agents import AgentExecutor, create_react_agent

    executor = AgentExecutor(
        agent=create_react_agent(llm, tools),
        tools=tools,
        handle_parsing_errors=True,
        max_iterations=args.max_steps,
        max_execution_time=args.max_time,
    )
    result = executor.invoke({"input": question})
    calls = [(s["action"], s["action_input"]) for s in result["steps"] if s["action"]]
    return {"calls": calls, "output": result["output"], "stopped": result["stopped_because"]}


RUNNERS: dict[str, Callable[[str, Any, list[Any], Any], dict[str, Any]]] = {
    "tools": run_tools,
    "langchain": run_langchain,
    "react": run_react,
}


def valid(call: tuple[str, Any], tools: dict[str, Any]) -> bool:
    """The call names a tool and its arguments validate against the tool's schema (a ReAct
    step's input is the tool's one argument)."""
    name, given = call
    tool = tools.get(name)
    if tool is None:
        return False
    if not isinstance(given, dict):
        given = {next(iter(tool.args)): given}
    try:
        tool.tool_call_schema.model_validate(given)
    except Exception:
        return False
    return True


def score(row: dict[str, Any], tools: dict[str, Any]) -> dict[str, Any]:
    called = {name for name, _ in row["calls"]}
    return {
        **row,
        "tool_called": bool(row["calls"]),
        "needed_called": row["needed"] <= called if row["needed"] else not row["calls"],
        "valid_calls": sum(valid(c, tools) for c in row["calls"]),
        "calls": [[n, a] for n, a in row["calls"]],
        "needed": sorted(row["needed"]),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    tool_rows = [r for r in rows if r["needed"]]
    chat_rows = [r for r in rows if not r["needed"]]
    n_calls = sum(len(r["calls"]) for r in tool_rows)
    return {
        "tool_called": sum(r["tool_called"] for r in tool_rows) / len(tool_rows),
        "needed_called": sum(r["needed_called"] for r in tool_rows) / len(tool_rows),
        "args_valid": sum(r["valid_calls"] for r in tool_rows) / n_calls if n_calls else None,
        "calls": n_calls,
        "correct": sum(r["correct"] for r in tool_rows) / len(tool_rows),
        "chat_without_tool": sum(not r["calls"] for r in chat_rows) / max(1, len(chat_rows)),
        "seconds_per_task": sum(r["seconds"] for r in rows) / len(rows),
        "stopped": {k: sum(r["stopped"] == k for r in rows) for k in {r["stopped"] for r in rows}},
    }


def compare(args: Any, tasks: Sequence[Any], build_knowledge_base: Callable[[Path], Any]) -> None:
    from orchestrator import ChatLlamaCpp, LlamaCpp
    from orchestrator.agents import load_tools

    tasks = tasks[: args.limit] if args.limit else tasks
    names = [n.strip() for n in args.agents.split(",") if n.strip()]
    options = {
        "model_path": args.model,
        "temperature": 0.0,
        "seed": 0,
        "max_tokens": args.max_tokens,
    }
    report: dict[str, Any] = {"model": args.model or "embedded SmolLM2-135M-Instruct Q4_1"}
    with tempfile.TemporaryDirectory() as tmp:
        index = build_knowledge_base(Path(tmp) / "kb")
        tools = load_tools(["calculator", "knowledge_base"], index_dir=index, k=2)
        by_name = {t.name: t for t in tools}
        for name in names:
            llm = LlamaCpp(**options) if name == "react" else ChatLlamaCpp(**options)
            work = [(t.question, NEEDED[t.kind], t) for t in tasks] + [
                (q, set(), None) for q in CHAT_TASKS
            ]
            rows = []
            for question, needed, task in work:
                started = time.perf_counter()
                try:
                    row = RUNNERS[name](question, llm, tools, args)
                except Exception as exc:  # an agent that fails a task scores nothing on it
                    row = {"calls": [], "output": "", "stopped": f"error: {type(exc).__name__}"}
                row.update(
                    question=question,
                    needed=needed,
                    seconds=round(time.perf_counter() - started, 2),
                )
                row["correct"] = bool(task and task.solved_by(row["output"]))
                rows.append(score(row, by_name))
                print(name, json.dumps(rows[-1], ensure_ascii=False, default=str), flush=True)
            report[name] = {"summary": summarise(rows), "rows": rows}
    show(report, len(tasks))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))


COLUMNS = ("agent", "tool called", "needed tools called", "args valid (calls)", "correct",
           "chat tasks without a tool", "s / task")  # fmt: skip


def show(report: dict[str, Any], n_tasks: int) -> None:
    table = Table(
        title=f"agents: {n_tasks} tool tasks + {len(CHAT_TASKS)} chat tasks, {report['model']}"
    )
    for column in COLUMNS:
        table.add_column(column)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name, data in report.items():
        if name == "model":
            continue
        s = data["summary"]
        valid_share = "-" if s["args_valid"] is None else f"{s['args_valid']:.0%}"
        cells = [name, f"{s['tool_called']:.0%}", f"{s['needed_called']:.0%}",
                 f"{valid_share} ({s['calls']})", f"{s['correct']:.0%}",
                 f"{s['chat_without_tool']:.0%}", f"{s['seconds_per_task']:.1f}"]  # fmt: skip
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console = Console(width=160)
    console.print(table)
    for name, data in report.items():
        if name != "model":
            console.print(f"{name}: stopped {data['summary']['stopped']}", markup=False)
    console.print("\n".join(lines), markup=False)
