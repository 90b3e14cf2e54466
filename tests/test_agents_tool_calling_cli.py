"""``orchestrator agent --mode tools --approve ...`` in a pseudo-terminal, on the embedded
model and three MCP tools with side effects: the person approves one call, edits another
(a wrong edit is refused and asked again) and rejects the third with a reason; only what
was approved, as approved, runs. Without a terminal the run waits and says how to resume."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pexpect
import pytest
from agent_tools_support import QUESTION, agent_command, agent_env, write_bookings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APPROVE = ("--approve", "book_flight,book_hotel,rent_car")


def test_approve_edit_and_reject_at_the_terminal(tmp_path: Path) -> None:
    config, log = write_bookings(tmp_path / "tools")
    env = {**agent_env(tmp_path / "home"), "NO_COLOR": "1", "TERM": "dumb"}
    command, *args = agent_command(config, *APPROVE, QUESTION)
    child = pexpect.spawn(command, args, env=env, encoding="utf-8", timeout=600)
    decided: dict[str, str] = {}
    try:
        while True:
            found = child.expect([r"Approve\?\s+(\w+)", r"stopped because (\w+)", pexpect.EOF])
            if found != 0:
                break
            tool = child.match.group(1)
            decided[tool] = _decide(child, tool)
        assert found == 1, child.before
        assert child.match.group(1) == "final_answer"
    finally:
        child.close()
    assert set(decided) == {"book_flight", "book_hotel", "rent_car"}
    lines = log.read_text(encoding="utf-8").splitlines()
    assert sorted(lines) == ["flight Paris", "hotel Rome"]  # approved, edited; car rejected


def _decide(child: pexpect.spawn, tool: str) -> str:
    child.expect(r"Decision \[a=approve/e=edit/r=reject\]")
    if tool == "book_hotel":
        child.sendline("a")
        return "approve"
    if tool == "book_flight":
        child.sendline("e")
        child.expect(r"New arguments \(JSON\)")
        child.sendline(json.dumps({"city": 5}))  # not a string: refused, asked again
        child.expect("not valid")
        child.expect(r"Decision \[a=approve/e=edit/r=reject\]")
        child.sendline("e")
        child.expect(r"New arguments \(JSON\)")
        child.sendline(json.dumps({"city": "Paris"}))
        return "edit"
    child.sendline("r")
    child.expect("Reason")
    child.sendline("no car needed, I will take the train")
    return "reject"


def test_without_a_terminal_the_run_waits_for_approval(tmp_path: Path) -> None:
    config, log = write_bookings(tmp_path / "tools")
    thread = uuid.uuid4().hex[:8]
    done = subprocess.run(
        agent_command(config, *APPROVE, "--thread", thread, "--json", QUESTION),
        capture_output=True,
        text=True,
        env=agent_env(tmp_path / "home"),
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["stopped_because"] == "awaiting_approval"
    assert result["thread_id"] == thread and result["pending"]
    assert not log.exists()  # nothing ran before a decision
