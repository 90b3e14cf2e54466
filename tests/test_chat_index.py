"""Chat over documents: each turn's question carries its sources; history stays plain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableLambda

from orchestrator.chains.rag import DocumentTurn

DOCS = [
    Document("Zorblat is the capital of Quendia.", metadata={"doc_id": "geo", "score": 1.0}),
    Document("Quendia exports glass.", metadata={"doc_id": "trade", "score": 0.5}),
]


def test_sources_go_into_the_newest_message_only() -> None:
    turn = DocumentTurn(RunnableLambda(lambda q: DOCS), system="Be brief.")
    history = [HumanMessage("hi"), AIMessage("hello")]
    messages = turn("What is the capital of Quendia?", history)
    assert isinstance(messages[0], SystemMessage) and messages[1:3] == history
    last = str(messages[-1].content)
    assert "[1] Zorblat is the capital of Quendia." in last and "[2] Quendia exports" in last
    assert last.rstrip().endswith("Answer:")
    assert [s["doc_id"] for s in turn.last_sources] == ["geo", "trade"]


def test_no_sources_leaves_the_message_as_typed() -> None:
    turn = DocumentTurn(RunnableLambda(lambda q: []))
    assert turn("hello {there}", [])[-1].content == "hello {there}"
    assert turn.last_sources == []


@pytest.mark.integration
def test_chat_with_index_answers_from_documents(tmp_path: Path) -> None:
    from orchestrator.retrieval import build_index, open_retriever

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "quendia.md").write_text("# Quendia\n\nZorblat is the capital city of Quendia.\n")
    (docs / "other.md").write_text("# Weather\n\nIt rains a lot in the northern valleys.\n")
    build_index([docs], tmp_path / "index", modes=("dense", "bm25"))
    turn = DocumentTurn(open_retriever(tmp_path / "index", k=1, min_similarity=0.3))
    assert "[1] # Quendia" in str(turn("What is the capital of Quendia?", [])[-1].content)
    assert turn.last_sources[0]["doc_id"].endswith("quendia.md")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator.cli.app",
            "chat",
            "--index",
            str(tmp_path / "index"),
            "--max-tokens",
            "30",
            "--seed",
            "0",
            "--temperature",
            "0",
        ],
        input="What is the capital of Quendia?\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1, "one answer line for one message"
