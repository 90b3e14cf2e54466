"""``ConversationSummaryBufferMemory`` with the real embedded model, and in ``orchestrator chat``.

Assertions are on what the memory stores, counts and renders, not on the wording of a 135M
model's summaries.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from langchain_core.messages import get_buffer_string
from langchain_core.prompts import PromptTemplate

from orchestrator.chains import LLMChain
from orchestrator.memory import ConversationSummaryBufferMemory, SQLiteStore
from orchestrator.prompts import get_prompt

pytestmark = pytest.mark.integration

TURNS = [
    "Hi! My name is Maarten and I am 33 years old. What is 1 + 1?",
    "What is 3 + 3?",
    "What is the capital of France?",
]


@pytest.fixture(scope="module")
def llm():  # type: ignore[no-untyped-def]
    from orchestrator import ChatLlamaCpp

    return ChatLlamaCpp(temperature=0.0, seed=0, max_tokens=24)


def test_tokens_are_counted_with_the_models_own_tokenizer(llm) -> None:  # type: ignore[no-untyped-def]
    memory = ConversationSummaryBufferMemory(
        llm=llm, max_token_limit=40, return_messages=True, memory_key="chat_history"
    )
    chain = LLMChain(prompt=get_prompt("conversation"), llm=llm, memory=memory)
    for text in TURNS:
        chain.predict(input_prompt=text)
    shown = memory.context_messages()[1:]  # after the summary message
    for message in memory.messages:
        line = get_buffer_string([message])
        assert memory.count(message) == len(llm.engine.tokenize(line, special=False))
    assert sum(memory.count(m) for m in shown) <= 40
    state = memory.chat_memory.load_summary()
    assert state is not None and state.covered >= 2
    assert shown == memory.messages[state.covered :]  # the buffer is the exact recent turns
    dropped = memory.messages[state.covered - 1]  # the newest message folded in
    assert sum(memory.count(m) for m in [dropped, *shown]) > 40


def test_the_model_writes_a_real_summary_of_the_pruned_turns(llm) -> None:  # type: ignore[no-untyped-def]
    from orchestrator import ChatLlamaCpp

    summarizer = ChatLlamaCpp(temperature=0.0, seed=0, max_tokens=48)
    memory = ConversationSummaryBufferMemory(
        llm=summarizer, max_token_limit=40, memory_key="chat_history"
    )
    chain = LLMChain(prompt=get_prompt("conversation"), llm=llm, memory=memory)
    for text in TURNS:
        chain.predict(input_prompt=text)
    summary = memory.moving_summary_buffer
    state = memory.chat_memory.load_summary()
    assert summary and state is not None and summary == state.text
    folded = get_buffer_string(memory.messages[: state.covered])
    assert summary not in {folded, *(m.content for m in memory.messages)}
    assert memory.buffer.startswith(f"System: {summary}\n")  # type: ignore[union-attr]


def test_langchain_style_code_as_written(llm) -> None:  # type: ignore[no-untyped-def]
    prompt = PromptTemplate.from_template(
        "The following is a friendly conversation.\n\n{history}\nHuman: {input}\nAI:"
    )
    memory = ConversationSummaryBufferMemory(llm=llm, max_token_limit=40)
    chain = LLMChain(llm=llm, prompt=prompt, memory=memory)
    for text in TURNS:
        assert chain.predict(input=text)
    result = chain.invoke({"input": "What is my name?"})
    assert result["history"].startswith("System: ")
    assert memory.moving_summary_buffer and len(memory.messages) == 8


def run_chat(home: Path, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    """One ``orchestrator chat`` process (a new process per run, as a user resumes)."""
    command = [sys.executable, "-m", "orchestrator.cli.app", "chat", *args]
    env = {**os.environ, "ORCHESTRATOR_HOME": str(home)}
    return subprocess.run(
        command, input=stdin, env=env, capture_output=True, text=True, timeout=300, check=False
    )


CHAT_OPTIONS = ["--memory", "summary-buffer", "--memory-tokens", "40", "--session", "sb"]
CHAT_OPTIONS += ["--temperature", "0", "--seed", "0", "--max-tokens", "16"]


@dataclass
class Resumed:
    """A session's first ``chat`` process, the summary row it stored, and the resuming one."""

    home: Path
    first: subprocess.CompletedProcess[str]
    stored: tuple[str, int] | None = None
    second: subprocess.CompletedProcess[str] | None = None


def chat_then_resume(home: Path) -> Resumed:
    run = Resumed(home, run_chat(home, *CHAT_OPTIONS, stdin="\n".join(TURNS) + "\n"))
    if run.first.returncode == 0:
        with sqlite3.connect(home / "sessions.db") as db:
            run.stored = db.execute("SELECT text, covered FROM summaries").fetchone()
        run.second = run_chat(home, *CHAT_OPTIONS, stdin="/memory\n")
    return run


@pytest.fixture(scope="module", autouse=True)
def resumed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[Resumed]]:
    """:func:`chat_then_resume`, started with the module (autouse): its processes run on the
    second core while the in-process tests use the first."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(chat_then_resume, tmp_path_factory.mktemp("chat-sb"))


def test_chat_summary_buffer_session_resumes_summary_and_buffer(
    resumed: Future[Resumed],
) -> None:
    run = resumed.result()
    first, second = run.first, run.second
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.splitlines()) == 3
    assert run.stored is not None
    text, covered = run.stored
    assert text and covered >= 2

    assert second is not None and second.returncode == 0, second and second.stderr
    seen = second.stdout.split("the model will see:\n")[1]
    with SQLiteStore(run.home / "sessions.db") as store:
        history = store.history("sb")
        stored, state = history.messages, history.load_summary()
    assert state == (text, covered)  # resuming wrote no new summary
    roles = {"human": "you", "ai": "ai"}
    recent = [f"{roles[m.type]}: {m.content}" for m in stored[covered:]]
    assert seen == "\n".join([f"system: {text}", *recent]) + "\n"
    assert "[summary-buffer memory, session 'sb']" in second.stdout
