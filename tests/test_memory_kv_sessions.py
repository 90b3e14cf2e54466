"""Stored sessions that come back without re-prefilling (issue 20, point 4): a session's saved
KV state is loaded on a resumed conversation's first turn (Python and CLI), checked against the
model and the prompt, survives kill -9 during a save, and stays under its disk cap."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import llama_cpp
import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.errors import OptionError
from orchestrator.memory import Conversation, SQLiteStore, create_memory
from orchestrator.memory.kv_sessions import (
    STALE_PARTIAL_SECONDS,
    SessionCacheWarning,
    SessionKV,
    evict,
    kv_folder,
)

SYSTEM = "You are a helpful assistant. Answer in one short sentence."
FIRST = (
    "Tell me about the sea, the sky and the mountains, please; I like all three of them, and I "
    "spend my holidays walking along the coast or climbing the hills above the harbour."
)
NEXT = "And which of them is the highest?"
CHAT = ["chat", "--temperature", "0", "--seed", "0"]


def evaluated(engine: Any) -> int:
    """Tokens llama.cpp itself evaluated so far (prompt and generated)."""
    data = llama_cpp.llama_perf_context(engine.llama._ctx.ctx)
    return int(data.n_p_eval + data.n_eval)


def conversation(llm: Any, store: SQLiteStore, session: str = "s1", kv: bool = True) -> Any:
    memory = create_memory("buffer", chat_memory=store.history(session), return_messages=True)
    cache = SessionKV.beside(store.path, session) if kv else None
    return Conversation(llm, memory, system=SYSTEM, kv_cache=cache)


def cold_answer(llm: Any, store: SQLiteStore, text: str, session: str = "s1") -> str:
    """What the turn answers with nothing cached and nothing loaded (nothing is stored)."""
    llm.engine.reset()
    messages = conversation(llm, store, session, kv=False).next_messages(text)
    return str(llm.invoke(messages, max_tokens=8).content).strip()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "sessions.db") as opened:
        yield opened


# --- policy, no model ----------------------------------------------------------------------


def test_state_files_are_named_by_a_hash_inside_their_folder(tmp_path: Path) -> None:
    kv = SessionKV.beside(tmp_path / "sessions.db", "work-notes.v2")
    assert kv.folder == tmp_path / "sessions.db-kv"
    assert re.fullmatch(r"[0-9a-f]{32}\.kv", kv.kv_path.name) and kv.kv_path.parent == kv.folder
    assert kv.sidecar_path == kv.kv_path.with_suffix(".json")
    for bad in ("../../etc/passwd", "a/b", ""):
        with pytest.raises(OptionError, match="session name"):
            SessionKV.beside(tmp_path / "sessions.db", bad)


def test_a_bad_cap_setting_is_named_with_its_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_KV_CACHE_BYTES", "1GB")
    with pytest.raises(OptionError, match="ORCHESTRATOR_KV_CACHE_BYTES='1GB'") as caught:
        SessionKV.beside(tmp_path / "sessions.db", "s1")
    assert caught.value.fix and "0 to save no KV states" in caught.value.fix


def test_eviction_removes_least_recently_used_states_and_only_ours(tmp_path: Path) -> None:
    folder = kv_folder(tmp_path / "sessions.db")
    folder.mkdir()
    now = time.time()
    stems = [f"{i:032x}" for i in range(4)]
    for age, stem in zip((40, 30, 20, 10), stems, strict=True):  # stems[0] is the oldest
        for suffix, size in ((".kv", 1000), (".json", 100)):
            path = folder / f"{stem}{suffix}"
            path.write_bytes(b"x" * size)
            os.utime(path, (now - age, now - age))
    stale = folder / f"{'f' * 32}.kv.partial"
    stale.write_bytes(b"x" * 5000)
    os.utime(stale, (now - STALE_PARTIAL_SECONDS - 5,) * 2)
    foreign = folder / "notes.txt"
    foreign.write_bytes(b"x" * 10_000)
    removed = evict(folder, 2500, keep=stems[0])  # keep: just saved, goes last
    assert removed == [stems[1], stems[2]]
    left = sorted(p.name for p in folder.iterdir())
    assert left == sorted([f"{stems[0]}.json", f"{stems[0]}.kv", f"{stems[3]}.json",
                           f"{stems[3]}.kv", "notes.txt"])
    assert evict(folder, 0) == [stems[0], stems[3]] and foreign.exists()


# --- the Python path: Conversation with a SessionKV ----------------------------------------


@pytest.mark.integration
def test_a_resumed_session_evaluates_only_the_new_tokens(chat_llm: Any, store: SQLiteStore) -> None:
    first = conversation(chat_llm, store)
    first.ask(FIRST, max_tokens=8)
    chunk = chat_llm.engine.prefill_chunk
    previous = first.last_usage["input_tokens"]
    assert first.kv_cache.kv_path.is_file() and previous >= 2 * chunk
    chat_llm.engine.reset()  # what a new process starts with: nothing cached
    resumed = conversation(chat_llm, store)
    before = evaluated(chat_llm.engine)
    resumed.ask(NEXT, max_tokens=1)  # one token: nothing generated is evaluated
    usage = resumed.last_usage
    reused = usage["input_token_details"]["cache_read"]
    # the previous prompt's whole aligned chunks: all a warm turn in one process reuses
    assert resumed.resumed is not None and resumed.resumed.loaded == reused
    assert reused == previous - previous % chunk
    assert evaluated(chat_llm.engine) - before == usage["input_tokens"] - reused
    assert resumed.resumed.prompt_tokens == usage["input_tokens"]


def _other_n_ctx(kv: SessionKV) -> None:
    _edit_sidecar(kv, n_ctx=1234)


def _other_model(kv: SessionKV) -> None:
    _edit_sidecar(kv, model_sha256="0" * 64, model_path="/models/other.gguf")


def _flipped_bytes(kv: SessionKV) -> None:
    data = bytearray(kv.kv_path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # llama.cpp would load this silently
    kv.kv_path.write_bytes(bytes(data))


def _truncated_but_described(kv: SessionKV) -> None:
    import hashlib

    data = kv.kv_path.read_bytes()[:4096]
    kv.kv_path.write_bytes(data)
    _edit_sidecar(kv, kv_bytes=len(data), kv_sha256=hashlib.sha256(data).hexdigest())


def _sidecar_not_json(kv: SessionKV) -> None:
    kv.sidecar_path.write_text("{not json")


def _edit_sidecar(kv: SessionKV, **changes: Any) -> None:
    data = json.loads(kv.sidecar_path.read_text())
    kv.sidecar_path.write_text(json.dumps({**data, **changes}))


@pytest.mark.integration
@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (_other_n_ctx, r"context size \(n_ctx\) 1234, and this turn runs with \d+"),
        (_other_model, r"another model file \(/models/other.gguf"),
        (_flipped_bytes, r"is not the one its sidecar describes"),
        (_truncated_but_described, r"llama.cpp could not load"),
        (_sidecar_not_json, r"\.json is not valid"),
    ],
)
def test_a_state_that_does_not_match_is_ignored_with_a_warning(
    chat_llm: Any, store: SQLiteStore, spoil: Callable[[SessionKV], None], reason: str
) -> None:
    first = conversation(chat_llm, store)
    first.ask(FIRST, max_tokens=8)
    spoil(first.kv_cache)
    cold = cold_answer(chat_llm, store, NEXT)
    chat_llm.engine.reset()
    resumed = conversation(chat_llm, store)
    with pytest.warns(SessionCacheWarning, match=reason) as caught:
        answer = resumed.ask(NEXT, max_tokens=8)
    assert "this turn reads the whole history" in str(caught[0].message)
    assert answer == cold and resumed.resumed is None
    assert resumed.last_usage["input_token_details"]["cache_read"] == 0
    assert len(store.history("s1").messages) == 4  # nothing lost
    # the state saved after the turn is whole again
    saved = json.loads(first.kv_cache.sidecar_path.read_text())
    assert saved["n_ctx"] == chat_llm.engine.n_ctx and saved["tokens"] > 0


@pytest.mark.integration
def test_the_cap_keeps_the_folder_small_least_recently_used_first(
    chat_llm: Any, store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = conversation(chat_llm, store, "one")
    one.ask(FIRST, max_tokens=4)
    folder = one.kv_cache.folder
    size = sum(p.stat().st_size for p in folder.iterdir())
    monkeypatch.setenv("ORCHESTRATOR_KV_CACHE_BYTES", str(int(size * 1.5)))
    two = conversation(chat_llm, store, "two")
    two.ask(FIRST, max_tokens=4)
    assert sum(p.stat().st_size for p in folder.iterdir()) <= size * 1.5
    assert not one.kv_cache.kv_path.exists() and two.kv_cache.kv_path.exists()
    monkeypatch.setenv("ORCHESTRATOR_KV_CACHE_BYTES", "1000")
    three = conversation(chat_llm, store, "three")
    with pytest.warns(SessionCacheWarning, match="larger than the cap of 1,000 bytes"):
        three.ask(FIRST, max_tokens=4)
    assert list(folder.iterdir()) == [] and len(store.history("three").messages) == 2


# --- the CLI: orchestrator chat --session --------------------------------------------------


@pytest.mark.integration
def test_chat_cli_resumes_from_the_saved_state_and_says_so(
    chat_llm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_HOME", str(tmp_path))
    runner = CliRunner()
    first = runner.invoke(app, [*CHAT, "--max-tokens", "8", "--session", "cli"], FIRST + "\n")
    assert first.exit_code == 0, first.output
    chat_llm.engine.reset()  # the same engine the command used, as a new process finds it
    before = evaluated(chat_llm.engine)
    second = runner.invoke(app, [*CHAT, "--max-tokens", "1", "--session", "cli"], NEXT + "\n")
    assert second.exit_code == 0, second.output
    said = re.search(
        r"resumed session cli: (\d+) of (\d+) prompt tokens from the saved cache", second.stderr
    )
    assert said is not None, second.stderr
    loaded, prompt = int(said[1]), int(said[2])
    assert 0 < loaded < prompt
    assert evaluated(chat_llm.engine) - before == prompt - loaded
    _edit_sidecar(SessionKV.beside(tmp_path / "sessions.db", "cli"), n_ctx=1)
    chat_llm.engine.reset()
    third = runner.invoke(app, [*CHAT, "--max-tokens", "1", "--session", "cli"], "Thanks!\n")
    assert third.exit_code == 0, third.output
    assert " ".join(third.stderr.split()).startswith(
        "warning: the saved KV state of session 'cli' was not used: it was made with context "
        "size (n_ctx) 1"
    )
    assert "resumed session" not in third.stderr


# --- kill -9 while a state is being written ------------------------------------------------

SAVER = """
import sys
from orchestrator import ChatLlamaCpp
from orchestrator.memory import Conversation, SQLiteStore, create_memory
from orchestrator.memory.kv_sessions import SessionKV

store = SQLiteStore(sys.argv[1])
llm = ChatLlamaCpp(temperature=0.0, seed=0, max_tokens=8)
memory = create_memory("buffer", chat_memory=store.history("k"), return_messages=True)
conv = Conversation(llm, memory, system=sys.argv[2], kv_cache=SessionKV.beside(store.path, "k"))
conv.ask(sys.argv[3])
messages = conv.next_messages(sys.argv[4])
print("saving", flush=True)
while True:
    conv.kv_cache.save(llm, messages)
"""


@pytest.mark.integration
def test_kill_9_during_a_save_leaves_the_session_usable(chat_llm: Any, tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    env = {**os.environ, "ORCHESTRATOR_THREADS": "1"}
    saver = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(path), SYSTEM, FIRST, NEXT],
        stdout=subprocess.PIPE, env=env, text=True,
    )
    try:
        assert saver.stdout is not None and saver.stdout.readline().strip() == "saving"
        time.sleep(random.uniform(0.0, 0.5))  # some moment inside a save (most of the loop)
        saver.send_signal(signal.SIGKILL)
    finally:
        saver.kill()
        saver.wait(timeout=30)
    with SQLiteStore(path) as store:
        question, _answer = (m.content for m in store.history("k").messages)
        assert question == FIRST
        cold = cold_answer(chat_llm, store, NEXT, "k")
        chat_llm.engine.reset()
        resumed = conversation(chat_llm, store, "k")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SessionCacheWarning)
            assert resumed.ask(NEXT, max_tokens=8) == cold
        # loaded, or (killed between the two renames) refused with the reason
        assert resumed.resumed is not None or "sidecar describes" in str(caught[0].message)
        kv = resumed.kv_cache
        assert sorted(kv.folder.iterdir()) == sorted([kv.kv_path, kv.sidecar_path])
