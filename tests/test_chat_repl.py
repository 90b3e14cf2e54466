"""The chat REPL as a user meets it: a real process, a pseudo-terminal, Ctrl-C, kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from orchestrator.memory import SQLiteStore

pytestmark = pytest.mark.integration

CHAT = [sys.executable, "-m", "orchestrator.cli.app", "chat", "--temperature", "0", "--seed", "0"]
LONG_ASK = "Write a long story about a dragon who learns to bake bread."


def env(home: Path) -> dict[str, str]:
    return dict(
        os.environ,
        ORCHESTRATOR_HOME=str(home),
        ORCHESTRATOR_THREADS="1",
        PROMPT_TOOLKIT_NO_CPR="1",
        TERM="xterm",
    )


def test_repl_streams_answers_runs_slash_commands_and_ctrl_c_stops_only_the_answer(
    tmp_path: Path,
) -> None:
    child = pexpect.spawn(
        CHAT[0],
        [*CHAT[1:], "--max-tokens", "2000", "--session", "tty"],
        env=env(tmp_path),
        encoding="utf-8",
        dimensions=(40, 200),
        timeout=120,
    )
    try:
        child.expect_exact("you>")
        child.sendline(LONG_ASK)
        child.expect(r"\?2004l\w+")  # the prompt is gone and the first words stream in
        child.sendintr()  # Ctrl-C while the answer is being generated
        child.expect_exact("[stopped]")
        child.expect_exact("you>")  # still running, back at the prompt
        child.send("half-typed line")
        child.sendintr()  # Ctrl-C at the prompt drops the line, not the program
        child.expect_exact("you>")
        child.sendline("/memory")
        child.expect_exact("the model will see:")
        child.expect_exact("(nothing but your next message)")  # a stopped answer is not kept
        child.expect_exact("you>")
        child.send("My name is Ada.\x1b\rAnswer in one word.\r")  # Esc+Enter: a new line
        child.expect_exact("you>")
        child.sendline("/history")
        child.expect_exact("you: My name is Ada.\r\nAnswer in one word.")
        child.expect_exact("ai: ")
        child.expect_exact("you>")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    with SQLiteStore(tmp_path / "sessions.db") as store:
        messages = store.history("tty").messages
    assert [m.type for m in messages] == ["human", "ai"]
    assert messages[0].content == "My name is Ada.\nAnswer in one word."


def test_kill_9_mid_turn_keeps_every_completed_exchange(tmp_path: Path) -> None:
    args = [*CHAT, "--max-tokens", "200", "--session", "crash", "--memory", "summary"]
    proc = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env(tmp_path), text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write("My name is Ada. Say hello.\n")
        proc.stdin.flush()
        first = proc.stdout.readline()
        assert first.strip()
        proc.stdin.write(LONG_ASK + "\n")
        proc.stdin.flush()
        assert proc.stdout.read(1)  # the second answer has started streaming
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    path = tmp_path / "sessions.db"
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with SQLiteStore(path) as store:
        history = store.history("crash")
        question, answer = (m.content for m in history.messages)  # exactly one exchange
        assert question == "My name is Ada. Say hello."
        assert answer.replace("\n", " ") == first.strip()
        summary = history.load_summary()
        assert summary is not None and summary.covered == 2 and summary.text
    resumed = subprocess.run(
        args, input="/history\n", capture_output=True, env=env(tmp_path), text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[0] == "you: My name is Ada. Say hello."
