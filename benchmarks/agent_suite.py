"""Agent task suite: success and parse-failure rates, grammar on vs off, local models; and
the tool-calling agents against the ReAct agent (``--agents``).

Tasks need the calculator (products of large numbers a small model cannot guess), the local
knowledge base (facts about invented places, so the answer cannot come from pre-training), or
both. Each configuration runs every task with the same bounded loop (``--max-steps``,
``--max-time`` per task). Run:

    ORCHESTRATOR_THREADS=1 python benchmarks/agent_suite.py              # embedded SmolLM2-135M
    ORCHESTRATOR_THREADS=1 python benchmarks/agent_suite.py --model big.gguf --limit 6
    ORCHESTRATOR_THREADS=1 python benchmarks/agent_suite.py --agents tools,langchain,react

``--agents`` compares ``tools`` (``orchestrator.agents.create_agent``: the local model's
call-or-answer decision, grammar-constrained calls, limits with a forced final answer),
``langchain`` (LangChain's ``create_agent`` on ``ChatLlamaCpp`` as it is) and ``react`` (the
ReAct executor, completion model, grammar on) on the same tools, plus tasks that need no
tool (:data:`CHAT_TASKS`): the share of tool tasks where a tool was called, of calls whose
arguments validate against the tool's schema, of correct answers, and of chat tasks
answered without a tool (``benchmarks/agent_compare.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from orchestrator.agents.executor import AgentExecutor
from orchestrator.agents.react import create_react_agent
from orchestrator.agents.tools.loading import load_tools

FACTS = {
    "zorblat": "The Zorblat river is 842 km long and flows into the Quenta sea.",
    "veloria": "The capital of Veloria is Mirrandel, a city of 312,000 people.",
    "okrel": "Mount Okrel, the highest peak of Veloria, is 5311 metres high.",
    "bridge": "The glass bridge of Mirrandel was built in 1871 by the engineer Tova Lint.",
    "tarnis": "Lake Tarnis covers 64 square kilometres and freezes every winter.",
    "quenta": "The Quenta sea is home to the silver eel, which lives for about 23 years.",
    "festival": "The Mirrandel lantern festival takes place every year on 9 March.",
    "rail": "The Veloria coastal railway is 418 km long and has 27 stations.",
}


@dataclass(frozen=True)
class Task:
    question: str
    kind: str  # "calc", "kb" or "both"
    answer: str | float

    def solved_by(self, output: str) -> bool:
        if isinstance(self.answer, str):
            return self.answer.lower() in output.lower()
        numbers = [float(n.replace(",", "")) for n in re.findall(r"-?\d[\d,]*\.?\d*", output)]
        return any(math.isclose(n, self.answer, rel_tol=5e-3) for n in numbers)


TASKS = [
    Task("What is 37593 * 67?", "calc", 2518731),
    Task("What is 4821 * 739?", "calc", 3562719),
    Task("What is 98765 + 43210 * 3?", "calc", 228395),
    Task("What is 2 to the power of 20?", "calc", 1048576),
    Task("What is the square root of 7921?", "calc", 89),
    Task("What is 123456 / 64?", "calc", 1929),
    Task("How long is the Zorblat river?", "kb", 842),
    Task("What is the capital of Veloria?", "kb", "Mirrandel"),
    Task("Who built the glass bridge of Mirrandel?", "kb", "Tova Lint"),
    Task("How high is Mount Okrel?", "kb", 5311),
    Task("On which day is the Mirrandel lantern festival?", "kb", "9 March"),
    Task("How many stations does the Veloria coastal railway have?", "kb", 27),
    Task("How long is the Zorblat river in miles? One km is 0.621371 miles.", "both", 523.194),
    Task("How high is Mount Okrel in feet? One metre is 3.28084 feet.", "both", 17424.5),
    Task("How many years before 2024 was the glass bridge of Mirrandel built?", "both", 153),
    Task("What is the average distance between stations of the Veloria railway?", "both", 15.48),
]


def build_knowledge_base(directory: Path) -> Any:
    """The facts as a real BM25 index (``orchestrator.retrieval``), opened as the tool."""
    from orchestrator.retrieval import build_index

    docs = [Document(text, metadata={"doc_id": key}) for key, text in FACTS.items()]
    build_index(docs, directory, modes=("bm25",))
    return directory


def make_llm(mode: str, model: str | None, max_tokens: int) -> Any:
    from orchestrator import ChatLlamaCpp, LlamaCpp

    cls = ChatLlamaCpp if mode == "chat" else LlamaCpp
    return cls(model_path=model, temperature=0.0, seed=0, max_tokens=max_tokens)


def run_task(task: Task, llm: Any, grammar: bool, index: Path, args: argparse.Namespace) -> dict:
    tools = load_tools(["calculator", "knowledge_base"], index_dir=index, k=2)
    executor = AgentExecutor(
        agent=create_react_agent(llm, tools, grammar=None if grammar else False),
        tools=tools,
        handle_parsing_errors=True,
        max_iterations=args.max_steps,
        max_execution_time=args.max_time,
    )
    started = time.perf_counter()
    result = executor.invoke({"input": task.question})
    seconds = time.perf_counter() - started
    steps = result["steps"]
    needed = {"calc": {"calculator"}, "kb": {"knowledge_base"}}.get(
        task.kind, {"calculator", "knowledge_base"}
    )
    return {
        "question": task.question,
        "kind": task.kind,
        "output": result["output"],
        "solved": task.solved_by(result["output"]),
        "steps": len(steps),
        "parse_errors": sum(1 for s in steps if s["parse_error"]),
        "used_needed_tools": needed <= {s["action"] for s in steps},
        "stopped_because": result["stopped_because"],
        "seconds": round(seconds, 2),
    }


def summarise(rows: list[dict]) -> dict[str, Any]:
    n = len(rows)
    all_steps = sum(r["steps"] for r in rows)
    by_kind = {
        kind: sum(r["solved"] for r in rows if r["kind"] == kind)
        / max(1, sum(1 for r in rows if r["kind"] == kind))
        for kind in ("calc", "kb", "both")
    }
    return {
        "tasks": n,
        "success": sum(r["solved"] for r in rows) / n,
        "success_by_kind": by_kind,
        "tool_use": sum(r["used_needed_tools"] for r in rows) / n,
        "parse_failure_rate": sum(r["parse_errors"] for r in rows) / max(1, all_steps),
        "tasks_with_parse_errors": sum(1 for r in rows if r["parse_errors"]) / n,
        "mean_steps": all_steps / n,
        "seconds_per_task": sum(r["seconds"] for r in rows) / n,
        "stopped_because": dict(Counter(r["stopped_because"] for r in rows)),
    }


COLUMNS = (
    "config", "success", "calc", "kb", "both", "tool use", "parse failures / step",
    "tasks with a parse failure", "steps / task", "s / task",
)  # fmt: skip


def summary_cells(s: dict[str, Any]) -> list[str]:
    k = s["success_by_kind"]
    return [
        f"{s['success']:.0%}", f"{k['calc']:.0%}", f"{k['kb']:.0%}", f"{k['both']:.0%}",
        f"{s['tool_use']:.0%}", f"{s['parse_failure_rate']:.0%}",
        f"{s['tasks_with_parse_errors']:.0%}", f"{s['mean_steps']:.1f}",
        f"{s['seconds_per_task']:.1f}",
    ]  # fmt: skip


def print_report(report: dict[str, Any], n_tasks: int, console: Console) -> None:
    """A Rich table, the stop reasons, and the same table as markdown for docs/benchmarks.md."""
    configs = {name: data["summary"] for name, data in report.items() if name != "model"}
    table = Table(title=f"agent suite: {n_tasks} tasks, {report['model']}")
    for col in COLUMNS:
        table.add_column(col)
    for name, summary in configs.items():
        table.add_row(name, *summary_cells(summary))
    console.print(table)
    for name, summary in configs.items():
        console.print(f"{name}: stopped because {summary['stopped_because']}", markup=False)
    console.print("| " + " | ".join(COLUMNS) + " |", markup=False)
    console.print("|" + "---|" * len(COLUMNS), markup=False)
    for name, summary in configs.items():
        console.print("| " + " | ".join([name, *summary_cells(summary)]) + " |", markup=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="GGUF file (default: the embedded SmolLM2-135M)")
    parser.add_argument("--modes", default="completion,chat", help="completion and/or chat")
    parser.add_argument("--limit", type=int, default=0, help="run only the first N tasks")
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--max-time", type=float, default=60.0, help="seconds per task")
    parser.add_argument("--max-tokens", type=int, default=128, help="tokens per model call")
    parser.add_argument("--out", type=Path, help="write every row and the summary as JSON")
    parser.add_argument("--agents", help="compare agents instead: tools, langchain, react")
    args = parser.parse_args()
    if args.agents:
        from agent_compare import compare

        compare(args, TASKS, build_knowledge_base)
        return
    tasks = TASKS[: args.limit] if args.limit else TASKS
    configs = [(m, g) for m in args.modes.split(",") for g in (True, False)]
    console = Console(width=160)
    report: dict[str, Any] = {"model": args.model or "embedded SmolLM2-135M-Instruct Q4_1"}
    with tempfile.TemporaryDirectory() as tmp, Progress(console=console) as progress:
        index = build_knowledge_base(Path(tmp) / "kb")
        bar = progress.add_task("agent tasks", total=len(tasks) * len(configs))
        for mode, grammar in configs:
            llm = make_llm(mode, args.model, args.max_tokens)
            rows = []
            for task in tasks:
                rows.append(run_task(task, llm, grammar, index, args))
                progress.advance(bar)
            name = f"{mode} / grammar {'on' if grammar else 'off'}"
            report[name] = {"summary": summarise(rows), "rows": rows}
    print_report(report, len(tasks), console)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
