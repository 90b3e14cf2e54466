"""Tracing overhead (issue 21): the same calls with tracing off and on, interleaved, and the
store's size per 1,000 runs.

Workloads, on the embedded model, greedy:

- ``gen128``: one completion of 128 tokens (``LlamaCpp(max_tokens=128)``, a prompt that does
  not end early; the tokens generated are printed);
- ``rag``: ``rag_chain`` over a BM25 index of 40 passages (k=4), a 64-token answer;
- ``agent3``: a ReAct agent taking three tool steps and a final answer. Its steps are
  scripted (the 135M model does not reliably take three), and each model call is paid for
  with a real 48-token generation on the step's prompt (outside LangChain), so a run costs
  what four real model calls cost and records what a real agent run records.

Each call is one run (``tracing.run``), as the CLI records a command.

Runs alternate off/on in ABBA order. "on" times include ``tracing.flush()`` (every span of
the run written to SQLite before the clock stops), so the overhead is an upper bound: in
use, writing overlaps the next call. Wall time and this process's CPU time (all threads,
the writer's included) are both reported: on a shared machine the CPU time is the steadier
measure of the work tracing adds. Each workload's runs go to a store of their own; the bytes
they added (after a WAL checkpoint) per run give the size of 1,000 runs.

Last, the recording's own cost: CPU milliseconds per run of a 4-span chain around a scripted
model, with and without tracing (no model timing in it).

    ORCHESTRATOR_THREADS=1 python -m benchmarks.tracing_overhead --repeats 10 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROMPT = "Here is a long story about a dragon who learns to bake bread.\n\nOnce upon a time,"
TOPICS = ["tower", "bridge", "river", "castle", "forest", "harbour", "market", "library"]
STEPS = [
    " I should look up Paris.\nAction: lookup\nAction Input: paris\n",
    " Now Rome.\nAction: lookup\nAction Input: rome\n",
    " Compare them.\nAction: lookup\nAction Input: compare\n",
    " I now know the final answer\nFinal Answer: Rome has more people.",
]


def paced_agent(generator: Any) -> Callable[[], Any]:
    """The ``agent3`` call: scripted steps, each after a real 48-token generation."""
    from orchestrator.agents import AgentExecutor, create_react_agent, tool
    from orchestrator.llama.engine import Usage
    from orchestrator.testing import ScriptedLLM

    class PacedLLM(ScriptedLLM):
        """Scripted ReAct steps, each after a real 48-token generation on its prompt."""

        def _generate(self, prompts: list[str], *args: Any, **kwargs: Any) -> Any:
            for prompt in prompts:
                tokens = generator.prompt_tokens(prompt)
                for _ in generator.generate_text(tokens, {"max_tokens": 48}, [], Usage()):
                    pass
            return super()._generate(prompts, *args, **kwargs)

    @tool
    def lookup(query: str) -> str:
        """Looks up a city's population. Input: the city."""
        return {"paris": "2.1 million", "rome": "2.8 million"}.get(query, "Rome is larger.")

    def agent() -> Any:
        model = PacedLLM(replies=list(STEPS))
        executor = AgentExecutor(agent=create_react_agent(model, [lookup]), tools=[lookup])
        result = executor.invoke({"input": "Which has more people, Paris or Rome?"})
        assert len(result["steps"]) == 3, result
        return result

    return agent


def one_run(name: str, call: Callable[[], Any]) -> Callable[[], Any]:
    """The call as one run, as the CLI records a command (a no-op with tracing off)."""
    from orchestrator import tracing

    def traced() -> Any:
        with tracing.run(name):
            return call()

    return traced


def workloads(root: Path) -> dict[str, Callable[[], Any]]:
    """The three calls, built once (the model loads before timing starts)."""
    from orchestrator import ChatLlamaCpp, LlamaCpp
    from orchestrator.chains import rag_chain
    from orchestrator.retrieval import build_index, open_retriever

    generator = LlamaCpp(temperature=0.0, seed=0, max_tokens=128)
    docs = [
        {"doc_id": f"{t}-{n}", "text": f"The {t} number {n} was built in {1800 + 7 * n} and "
         f"is {10 + n} metres tall; visitors come to the {t} every day."}
        for t in TOPICS for n in range(5)
    ]  # fmt: skip
    build_index(docs, root / "index", modes=("bm25",))
    rag = rag_chain(
        ChatLlamaCpp(temperature=0.0, seed=0, max_tokens=64),
        open_retriever(root / "index", mode="bm25", k=4),
    )
    return {
        "gen128": one_run("gen128", lambda: generator.invoke(PROMPT)),
        "rag": one_run("rag", lambda: rag.invoke({"question": "How tall is the tower number 3?"})),
        "agent3": one_run("agent3", paced_agent(generator)),
    }


def timed(call: Callable[[], Any], on: bool, store: Path) -> tuple[float, float]:
    """Wall and CPU seconds (this process, every thread: the writer's too) of one call."""
    from orchestrator import tracing

    if on:
        tracing.enable(store)
        tracing.flush()  # the writer's start (maintenance) is not part of a call
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        if on:
            tracing.flush()
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        if on:
            tracing.disable()


def store_bytes(store: Path) -> tuple[int, int]:
    """(runs, bytes of the store file once its WAL is checkpointed)."""
    with sqlite3.connect(store) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    return runs, store.stat().st_size


def summary(off: list[float], on: list[float], unit: str) -> dict[str, float]:
    low, high = statistics.median(off), statistics.median(on)
    return {
        f"off_median_{unit}": round(low, 4),
        f"on_median_{unit}": round(high, 4),
        f"overhead_pct_{unit}": round(100 * (high - low) / low, 2),
        f"paired_median_diff_{unit}": round(
            statistics.median(b - a for a, b in zip(off, on, strict=True)), 4
        ),
    }


def measure(repeats: int, root: Path) -> dict[str, Any]:
    calls = workloads(root)
    results: dict[str, Any] = {}
    for name, call in calls.items():
        store = root / f"{name}.sqlite"
        timed(call, False, store)  # warm: the model's weights, the index, caches
        timed(call, True, store)  # and the store (its model file hash is taken once)
        empty_runs, empty = store_bytes(store)
        walls: dict[str, list[float]] = {"off": [], "on": []}
        cpus: dict[str, list[float]] = {"off": [], "on": []}
        for n in range(repeats):
            for mode in ("off", "on") if n % 2 == 0 else ("on", "off"):
                wall, cpu = timed(call, mode == "on", store)
                walls[mode].append(wall)
                cpus[mode].append(cpu)
        runs, size = store_bytes(store)
        results[name] = {
            **summary(walls["off"], walls["on"], "s"),
            **summary(cpus["off"], cpus["on"], "cpu_s"),
            "mb_per_1000_runs": round((size - empty) / (runs - empty_runs) * 1000 / 1e6, 2),
        }
    from orchestrator.tracing import TraceStore

    with TraceStore(root / "gen128.sqlite") as traces:
        results["gen128"]["output_tokens"] = traces.runs()[0].output_tokens
    return results


def recording_cost(root: Path, runs: int = 300) -> dict[str, float]:
    """CPU milliseconds tracing adds to one run of a chain that costs nearly nothing itself
    (prompt | scripted chat model | parser: four spans), written to the store before the
    clock stops: the recording's own cost, free of a model's timing noise."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    from orchestrator import tracing
    from orchestrator.testing import ScriptedChatModel

    def batch(on: bool) -> float:
        model = ScriptedChatModel(replies=["A short scripted answer of a few words."] * runs)
        chain = ChatPromptTemplate.from_template("Answer briefly: {q}") | model | StrOutputParser()
        if on:
            tracing.enable(root / "record.sqlite")
            tracing.flush()
        started = time.process_time()
        for n in range(runs):
            chain.invoke({"q": f"question {n}"})
        if on:
            tracing.flush()
        spent = time.process_time() - started
        if on:
            tracing.disable()
        return spent

    off, on = batch(False), batch(True)
    per_run = {"off": off / runs, "on": on / runs, "added": (on - off) / runs}
    return {f"{k}_ms_per_run": round(1000 * v, 3) for k, v in per_run.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="off/on pairs per workload")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tracing-bench-") as folder:
        results = measure(args.repeats, Path(folder))
        results["recording"] = recording_cost(Path(folder))
    print(f"threads={os.environ.get('ORCHESTRATOR_THREADS', 'auto')} repeats={args.repeats}")
    print("| workload | wall off / on (median s) | wall overhead | CPU off / on (median s) | "
          "CPU overhead | store MB per 1,000 runs |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        if name == "recording":
            continue
        print(f"| {name} | {r['off_median_s']} / {r['on_median_s']} | {r['overhead_pct_s']}% | "
              f"{r['off_median_cpu_s']} / {r['on_median_cpu_s']} | {r['overhead_pct_cpu_s']}% | "
              f"{r['mb_per_1000_runs']} |")  # fmt: skip
    if "output_tokens" in results.get("gen128", {}):
        print(f"gen128 generated {results['gen128']['output_tokens']} tokens per call")
    cost = results["recording"]
    print(
        f"recording alone (4-span scripted chain): {cost['off_ms_per_run']} ms CPU per run "
        f"off, {cost['on_ms_per_run']} ms on: {cost['added_ms_per_run']} ms added per run"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
