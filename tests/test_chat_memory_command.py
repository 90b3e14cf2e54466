"""``/memory`` shows the next turn's history without running a turn.

In ``orchestrator chat --index`` a turn retrieves sources for the message; ``/memory`` used to
build a turn for an empty message, so it searched the index for "" (an error) and would have
replaced the last answer's sources.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda

from orchestrator.chains.rag import DocumentTurn
from orchestrator.cli.chat import ChatOptions, ChatState
from orchestrator.cli.chat_commands import run_command
from orchestrator.testing import ScriptedChatModel

DOC = Document("Zorblat is the capital of Quendia.", metadata={"doc_id": "geo", "score": 1.0})


def test_memory_command_does_not_retrieve_or_touch_the_last_sources() -> None:
    queries: list[str] = []

    def search(query: str) -> list[Document]:
        queries.append(query)
        return [DOC]

    turn = DocumentTurn(RunnableLambda(search), system="Answer from the sources.")
    out = io.StringIO()
    state = ChatState(
        llm=ScriptedChatModel(replies=["Zorblat [1]."]),
        options=ChatOptions(system="Answer from the sources."),
        build_factory=lambda _system: turn,
        out=out,
    )
    state.open(None)
    assert state.conversation.ask("What is the capital of Quendia?") == "Zorblat [1]."
    sources = list(turn.last_sources)
    assert queries == ["What is the capital of Quendia?"] and sources[0]["doc_id"] == "geo"

    assert run_command(state, "/memory") is True
    assert queries == ["What is the capital of Quendia?"]  # no retrieval
    assert turn.last_sources == sources  # the last answer's sources are kept
    assert out.getvalue().splitlines() == [
        "[buffer memory, session 'default'] the model will see:",
        "system: Answer from the sources.",
        "you: What is the capital of Quendia?",  # the user's words, not the stuffed prompt
        "ai: Zorblat [1].",
    ]


def test_memory_preview_does_not_change_the_conversation_state() -> None:
    state = ChatState(
        llm=ScriptedChatModel(replies=["Hi."]),
        options=ChatOptions(),
        build_factory=lambda _system: DocumentTurn(RunnableLambda(lambda q: [])),
        out=io.StringIO(),
    )
    state.open(None)
    state.conversation.ask("hello")
    before = (state.conversation.last_dropped, state.conversation.newly_dropped)
    seen, dropped = state.conversation.preview()
    assert [m.content for m in seen] == ["hello", "Hi."] and dropped == 0
    assert (state.conversation.last_dropped, state.conversation.newly_dropped) == before


@pytest.mark.integration
def test_memory_command_works_in_the_real_chat_over_an_index(tmp_path: Path) -> None:
    from orchestrator.retrieval import build_index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "quendia.md").write_text("# Quendia\n\nZorblat is the capital city of Quendia.\n")
    (docs / "other.md").write_text("# Weather\n\nIt rains a lot in the northern valleys.\n")
    build_index([docs], tmp_path / "index", modes=("bm25",))
    command = [sys.executable, "-m", "orchestrator.cli.app", "chat", "--index"]
    command += [str(tmp_path / "index"), "--mode", "bm25", "--max-tokens", "20"]
    command += ["--seed", "0", "--temperature", "0", "--system", "Be brief."]
    env: dict[str, Any] = {**os.environ, "ORCHESTRATOR_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        command,
        input="What is the capital of Quendia?\n/memory\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    answer = lines[0]
    assert lines[1:] == [
        "[buffer memory, session 'default'] the model will see:",
        "system: Be brief.",
        "you: What is the capital of Quendia?",
        f"ai: {answer.strip()}",
    ]
    assert "empty" not in done.stderr and "error" not in done.stderr.lower(), done.stderr
