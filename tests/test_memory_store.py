"""The SQLite session store: persistence, summaries, bad files, names, processes, kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from ready_support import wait_until

from orchestrator.errors import DataError, OptionError, OrchestratorError
from orchestrator.memory import (
    ConversationBufferWindowMemory,
    ConversationSummaryMemory,
    InProcessStore,
    SQLiteStore,
    default_store_path,
)
from orchestrator.testing import ScriptedLLM, ScriptExhaustedError


def test_default_location_is_the_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ORCHESTRATOR_HOME", str(tmp_path))
    assert default_store_path() == tmp_path / "sessions.db"


def test_sessions_survive_reopening_and_stay_separate(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        memory = ConversationBufferWindowMemory(k=1, chat_memory=store.history("work"))
        memory.save_context({"input": "I am 33 {years}"}, {"output": "noted"})
        memory.save_context({"input": "2+2?"}, {"output": "4"})
        store.history("home").add_messages([HumanMessage("hi")])
    with SQLiteStore(path) as store:
        history = store.history("work")
        assert [m.content for m in history.messages] == ["I am 33 {years}", "noted", "2+2?", "4"]
        assert isinstance(history.messages[1], AIMessage)
        assert {s.name: s.messages for s in store.sessions()} == {"work": 4, "home": 1}
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_summary_is_stored_so_reopening_costs_no_llm_call(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        llm = ScriptedLLM(replies=["Ada is 33."])
        memory = ConversationSummaryMemory(llm=llm, chat_memory=store.history("ada"))
        memory.save_context({"input": "I am Ada, 33"}, {"output": "Hello Ada"})
    with SQLiteStore(path) as store:
        reopened = ConversationSummaryMemory(llm=ScriptedLLM(), chat_memory=store.history("ada"))
        assert reopened.load_memory_variables({}) == {"history": "Ada is 33."}


def test_summary_catches_up_only_on_messages_it_does_not_cover(tmp_path: Path) -> None:
    """A crash after storing an exchange but before summarizing it: only that one is folded."""
    with SQLiteStore(tmp_path / "s.db") as store:
        history = store.history("s")
        llm = ScriptedLLM(replies=["S1"])
        ConversationSummaryMemory(llm=llm, chat_memory=history).save_context(
            {"input": "q1"}, {"output": "a1"}
        )
        history.add_exchange(HumanMessage("q2"), AIMessage("a2"))  # no summary update
        catch_up = ScriptedLLM(replies=["S2"])
        memory = ConversationSummaryMemory(llm=catch_up, chat_memory=history)
        assert memory.buffer == "S2"
        assert "q2" in catch_up.prompts[0] and "q1" not in catch_up.prompts[0]
        assert memory.buffer == "S2"  # covered now: no further call (the script is empty)
        with pytest.raises(ScriptExhaustedError):
            memory.save_context({"input": "q3"}, {"output": "a3"})
        assert len(history.messages) == 6  # the exchange is stored even if summarizing fails


def test_clear_deletes_messages_and_summary(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        memory = ConversationSummaryMemory(
            llm=ScriptedLLM(replies=["S"]), chat_memory=store.history("s")
        )
        memory.save_context({"input": "q"}, {"output": "a"})
        memory.clear()
        assert store.history("s").messages == []
        assert store.history("s").load_summary() is None


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "a\\b", "", "..", "x" * 65, "a b"])
def test_session_names_with_path_characters_are_refused(tmp_path: Path, name: str) -> None:
    with SQLiteStore(tmp_path / "s.db") as store, pytest.raises(OptionError) as info:
        store.history(name)
    assert "session name" in str(info.value) and info.value.fix
    with pytest.raises(OptionError):
        InProcessStore().history(name)


def test_a_file_that_is_not_a_store_is_refused_and_left_untouched(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.db"
    garbage.write_bytes(b"my precious notes, not a database" * 100)
    before = garbage.read_bytes()
    with pytest.raises(DataError, match="not a session store") as info:
        SQLiteStore(garbage)
    assert "left untouched" in (info.value.fix or "")
    assert garbage.read_bytes() == before
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER, balance REAL)")
    with pytest.raises(DataError, match="another program"):
        SQLiteStore(other)


def test_a_corrupted_store_is_a_data_error_and_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        for i in range(200):
            store.history("s").add_messages([HumanMessage(f"message {i} " + "x" * 200)])
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = bytearray(path.read_bytes())
    raw[4096 + 100 : 4096 * 3] = b"\xff" * (4096 * 2 - 100)  # smash b-tree pages
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="corrupted"):
        SQLiteStore(path).history("s").messages  # noqa: B018
    assert path.read_bytes() == bytes(raw)


def test_an_unreadable_store_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    path.mkdir()  # unreadable as a file, whoever runs the test (root ignores chmod)
    (path / "keep.txt").write_text("mine")
    with pytest.raises(OrchestratorError, match="cannot read") as info:
        SQLiteStore(path)
    assert info.value.fix
    assert (path / "keep.txt").read_text() == "mine"


WRITER = textwrap.dedent(
    """
    import sys
    from langchain_core.messages import AIMessage, HumanMessage
    from orchestrator.memory import SQLiteStore
    path, session, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    history = SQLiteStore(path).history(session)
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for i in range(n):
        history.add_exchange(HumanMessage(f"{session} q{i}"), AIMessage(f"{session} a{i}"))
    """
)


def _writer(path: Path, session: str, n: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), session, str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_two_processes_writing_different_sessions_do_not_corrupt_each_other(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    SQLiteStore(path).close()
    procs = [_writer(path, name, 150) for name in ("alpha", "beta")]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    with SQLiteStore(path) as store:
        for name in ("alpha", "beta"):
            texts = [m.content for m in store.history(name).messages]
            assert len(texts) == 300
            assert texts[:4] == [f"{name} q0", f"{name} a0", f"{name} q1", f"{name} a1"]
            assert all(t.startswith(name) for t in texts)
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_kill_9_while_writing_never_leaves_a_half_exchange(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    proc = _writer(path, "s", 100_000)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    # let it commit some exchanges, then kill it mid-write
    wait_until(lambda: path.exists() and _count(path) >= 20, f"20 exchanges committed to {path}",
               limit=30)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with SQLiteStore(path) as store:
        messages = store.history("s").messages
    assert len(messages) >= 20 and len(messages) % 2 == 0
    for i in range(0, len(messages), 2):
        assert (messages[i].content, messages[i + 1].content) == (f"s q{i // 2}", f"s a{i // 2}")
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _count(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_full_disk_reports_the_real_error_and_the_store_stays_usable(tmp_path: Path) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    from orchestrator.errors import OrchestratorError
    from orchestrator.memory import SQLiteStore

    store = SQLiteStore(tmp_path / "s.db")
    history = store.history("work")
    history.add_messages([HumanMessage("hi"), AIMessage("hello")])
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages + 1}")
    with pytest.raises(OrchestratorError, match="full"):
        history.add_messages([HumanMessage("x" * 200_000), AIMessage("y" * 200_000)])
    store._conn.execute("PRAGMA max_page_count = 1000000")
    history.add_messages([HumanMessage("again"), AIMessage("ok")])
    assert [m.content for m in store.history("work").messages] == ["hi", "hello", "again", "ok"]
    store.close()
