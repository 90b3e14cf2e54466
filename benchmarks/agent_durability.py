"""Durability of the tool-calling agent: kill -9 and resume, checkpoint storage, resume time.

1. ``--runs N`` (default 20): ``orchestrator agent --mode tools`` on the embedded model with
   three MCP tools that each append a line to a file (``tests/agent_tools_support.py``) is
   killed with ``-9`` after a random step line (1 to 6: an Action or an Observation) plus a
   random delay (0 to 1.5 s, or none), then resumed with ``--thread ID --resume``. Counted:
   duplicated lines (a tool run twice), runs with every booking made once, the resume's
   wall time (a new process: model load, MCP server start, the rest of the run).
2. Checkpoint bytes per step after ``--steps`` (default 100) tool steps of a scripted model
   (no GGUF), in SQLite, keeping every checkpoint vs pruning to the latest
   (``run_agent``'s default); with ``--dsn`` the same in PostgreSQL.
3. Time to resume in process: reading a 100-step thread's state and continuing it.

    ORCHESTRATOR_THREADS=1 python benchmarks/agent_durability.py --runs 20 --out dur.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from agent_tools_support import EXPECTED, duplicates, resume, run_killed, write_bookings
from langchain_core.messages import AIMessage
from langchain_core.tools import tool


def kill_runs(runs: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            root = Path(tmp) / f"run{i}"
            config, log = write_bookings(root / "tools")
            thread = uuid.uuid4().hex[:8]
            after, delay = rng.randint(1, 6), rng.choice([0.0, round(rng.uniform(0, 1.5), 2)])
            seen = run_killed(config, root / "home", thread, after, delay)
            done, seconds = resume(config, root / "home", thread)
            extra, lines = duplicates(log)
            row = {"after": after, "delay": delay, "seen": seen, "duplicates": extra,
                   "complete": sorted(lines) == sorted(EXPECTED), "resume_rc": done.returncode,
                   "resume_seconds": round(seconds, 2), "lines": lines}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    times = [r["resume_seconds"] for r in rows]
    return {
        "runs": len(rows),
        "duplicated_lines": sum(r["duplicates"] for r in rows),
        "complete_runs": sum(r["complete"] for r in rows),
        "failed_resumes": sum(r["resume_rc"] != 0 for r in rows),
        "resume_seconds_median": statistics.median(times),
        "resume_seconds_max": max(times),
        "rows": rows,
    }


@tool
def note(text: str) -> str:
    """Notes a text."""
    return f"noted: {text}"


def _script(steps: int) -> list[Any]:
    calls = [
        AIMessage(
            "",
            tool_calls=[{"name": "note", "args": {"text": f"item {i} " + "x" * 40}, "id": f"c{i}"}],
        )
        for i in range(steps)
    ]
    return [*calls, "done"]


def storage(steps: int, where: str) -> dict[str, Any]:
    """Bytes per step of a ``steps``-step thread, all checkpoints kept vs pruned."""
    from orchestrator.agents import create_agent, run_agent
    from orchestrator.agents.tool_agent import close_checkpointer, open_checkpointer, thread_bytes
    from orchestrator.testing import ScriptedChatModel

    saver = open_checkpointer(where)
    found: dict[str, Any] = {}
    try:
        for prune in (False, True):
            thread = f"bytes-{uuid.uuid4().hex[:6]}"
            model = ScriptedChatModel(replies=_script(steps))
            agent = create_agent(model, [note], checkpointer=saver, max_steps=steps + 2)
            peak = [0]

            def watch(_: dict[str, Any], thread: str = thread, peak: list[int] = peak) -> None:
                sizes = thread_bytes(saver, thread)
                peak[0] = max(peak[0], sizes["state_bytes"] + sizes["write_bytes"])

            started = time.perf_counter()
            run_agent(agent, "note things", thread_id=thread, prune=prune, on_event=watch)
            seconds = time.perf_counter() - started
            sizes = thread_bytes(saver, thread)
            total = sizes["state_bytes"] + sizes["write_bytes"]
            found["pruned" if prune else "all_kept"] = {
                **sizes, "bytes_per_step": round(total / steps), "peak_bytes": peak[0],
                "run_seconds": round(seconds, 2), "thread": thread,
            }  # fmt: skip
        found["resume_in_process_ms"] = _resume_ms(saver, found["pruned"]["thread"])
    finally:
        close_checkpointer(saver)
    return found


def _resume_ms(saver: Any, thread: str) -> float:
    """Open a finished 100-step thread again and ask one more question (scripted answer)."""
    from orchestrator.agents import create_agent, run_agent
    from orchestrator.testing import ScriptedChatModel

    agent = create_agent(ScriptedChatModel(replies=["again"]), [note], checkpointer=saver)
    started = time.perf_counter()
    run_agent(agent, "one more?", thread_id=thread)
    return round((time.perf_counter() - started) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="kill -9 and resume runs")
    parser.add_argument("--steps", type=int, default=100, help="steps for checkpoint bytes")
    parser.add_argument("--dsn", help="also measure checkpoints in this PostgreSQL database")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        report["sqlite"] = storage(args.steps, str(Path(tmp) / "cp.sqlite"))
    if args.dsn:
        report["postgres"] = storage(args.steps, args.dsn)
    print(json.dumps(report, indent=2))
    if args.runs:
        report["kill"] = kill_runs(args.runs, args.seed)
        print(json.dumps({k: v for k, v in report["kill"].items() if k != "rows"}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
