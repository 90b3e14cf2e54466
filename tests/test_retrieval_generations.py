"""Deletes are seen: a retriever (and a RAG chain over it) opened before another process
changes the index answers from the new generation on its next query, never from a deleted
document; deleting an id the index does not hold is an error naming it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.chains import rag_chain
from orchestrator.errors import DataError
from orchestrator.retrieval import build_index, open_retriever
from orchestrator.retrieval.dense import LangChainEmbedder
from orchestrator.testing import HashEmbeddings, ScriptedChatModel

FILES = {
    "bakery.md": "# Bakery\n\nThe bakery sells rye bread and opens at seven.",
    "mill.md": "# Mill\n\nThe mill grinds rye into flour by the river.",
    "port.md": "# Port\n\nShips unload grain and bread flour at the port.",
}
QUESTION = "Where can I buy rye bread?"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real ``orchestrator`` command, in its own process."""
    exe = Path(sys.executable).with_name("orchestrator")
    assert exe.exists(), exe
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=600, check=False
    )


def embedder() -> LangChainEmbedder:
    return LangChainEmbedder(HashEmbeddings(dim=128))


@pytest.fixture()
def index(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in FILES.items():
        (docs / name).write_text(text)
    path = tmp_path / "index"
    build_index([docs], path, embedding=embedder())
    return path


def test_a_delete_by_another_process_is_seen_by_open_retriever_and_chain(index: Path) -> None:
    retriever = open_retriever(index, mode="hybrid", k=3, embedding=embedder())
    chain = rag_chain(ScriptedChatModel(replies=["At the bakery [1]."] * 2), retriever)
    assert "bakery.md" in {d.metadata["doc_id"] for d in retriever.invoke(QUESTION)}
    before = chain.invoke(QUESTION)
    assert before["sources"][0]["doc_id"] == "bakery.md" and before["citations"] == [1]

    done = cli("index", "--index", str(index), "--delete", "bakery.md", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["removed_chunks"] == 1

    after = retriever.invoke(QUESTION)
    assert after and "bakery.md" not in {d.metadata["doc_id"] for d in after}
    answered = chain.invoke(QUESTION)
    assert "bakery.md" not in {s["doc_id"] for s in answered["sources"]}
    assert {s["doc_id"] for s in answered["sources"]} <= {"mill.md", "port.md"}


def test_an_add_by_another_process_is_seen_on_the_next_query(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(FILES["mill.md"])
    index = tmp_path / "kw"
    build_index([notes], index, modes=("bm25",))
    retriever = open_retriever(index, mode="bm25", k=3)
    assert retriever.invoke("oven temperature") == []
    oven = tmp_path / "oven.md"
    oven.write_text("The oven temperature is 220 degrees.")
    done = cli("index", str(oven), "--index", str(index), "--update", "--json")
    assert done.returncode == 0, done.stderr
    found = retriever.invoke("oven temperature")
    assert [d.metadata["doc_id"] for d in found] == [oven.as_posix()]


def test_a_removed_index_is_a_clear_error_not_stale_results(index: Path) -> None:
    retriever = open_retriever(index, mode="bm25", k=3)
    assert retriever.invoke(QUESTION)
    shutil.rmtree(index)
    with pytest.raises(DataError, match="is not an index directory"):
        retriever.invoke(QUESTION)


def test_deleting_an_unknown_id_is_an_error_naming_it(index: Path) -> None:
    done = cli("index", "--index", str(index), "--delete", "bakery.txt", "--json")
    assert done.returncode == 2
    err = " ".join(done.stderr.split())
    assert "no document with the id 'bakery.txt'" in err
    assert "did you mean 'bakery.md'" in err and "fix:" in err
    retriever = open_retriever(index, mode="bm25", k=3)
    assert "bakery.md" in {d.metadata["doc_id"] for d in retriever.invoke(QUESTION)}
