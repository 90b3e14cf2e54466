"""Shared parts of the tool-calling agent's process tests (also used by
``benchmarks/agent_durability.py``): three MCP tools with a side effect each (a line
appended to a file), the CLI command that runs them, and a kill at a step.

The embedded model calls all three, one after the other, for :data:`QUESTION` (its
call-or-answer decision points to each tool; a called tool is not offered again).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

QUESTION = "I need a flight, a hotel and a car in Rome."
EXPECTED = ["flight Rome", "hotel Rome", "car Rome"]

STEPS_SERVER = textwrap.dedent(
    '''
    import os
    from mcp.server.fastmcp import FastMCP

    server = FastMCP("bookings")

    def _append(text: str) -> str:
        with open(os.environ["STEPS_LOG"], "a", encoding="utf-8") as log:
            log.write(text + "\\n")
            log.flush()
            os.fsync(log.fileno())
        return f"booked: {text}"

    @server.tool()
    def book_flight(city: str) -> str:
        """Books a flight to a city."""
        return _append(f"flight {city}")

    @server.tool()
    def book_hotel(city: str) -> str:
        """Books a hotel room in a city."""
        return _append(f"hotel {city}")

    @server.tool()
    def rent_car(city: str) -> str:
        """Rents a car in a city."""
        return _append(f"car {city}")

    if __name__ == "__main__":
        server.run("stdio")
    '''
)


def write_bookings(root: Path) -> tuple[Path, Path]:
    """The MCP config (``--mcp-config``) of the three tools, and the file they append to."""
    root.mkdir(parents=True, exist_ok=True)
    script, log = root / "bookings_server.py", root / "bookings.log"
    script.write_text(STEPS_SERVER, encoding="utf-8")
    env = {"STEPS_LOG": str(log), "HF_HUB_OFFLINE": "1"}
    entry = {"command": sys.executable, "args": [str(script)], "env": env}
    config = root / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"bookings": entry}}), encoding="utf-8")
    return config, log


def agent_command(config: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "orchestrator.cli.app", "agent", "--mode", "tools",
        "--mcp-config", str(config), *args,
    ]  # fmt: skip


def agent_env(home: Path) -> dict[str, str]:
    env = dict(os.environ, ORCHESTRATOR_HOME=str(home), ORCHESTRATOR_THREADS="1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["COLUMNS"] = "200"  # one step per line
    return env


def run_killed(config: Path, home: Path, thread: str, after: int, delay: float) -> int:
    """Run :data:`QUESTION` on ``thread`` and ``kill -9`` the process (and its MCP server)
    ``delay`` seconds after its ``after``-th printed step line (Action or Observation);
    the number of step lines seen (fewer when the run ended first)."""
    process = subprocess.Popen(
        agent_command(config, "--thread", thread, QUESTION),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=agent_env(home),
        start_new_session=True,
    )
    seen = 0
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(("Action:", "Observation:")):
            seen += 1
            if seen >= after:
                time.sleep(delay)
                os.killpg(process.pid, signal.SIGKILL)
                break
    process.wait()
    return seen


def resume(config: Path, home: Path, thread: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """``--thread THREAD --resume``, and its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        agent_command(config, "--thread", thread, "--resume"),
        capture_output=True,
        text=True,
        env=agent_env(home),
        timeout=900,
    )
    return done, time.perf_counter() - started


def duplicates(log: Path) -> tuple[int, list[str]]:
    """Lines written more than once (extra copies), and the lines."""
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return sum(n - 1 for n in Counter(lines).values()), lines


def summary_line(done: Any) -> str:
    return (done.stdout.strip().splitlines() or [""])[-1]
