"""Duplicates: a chunk is stored once and returned once; a repeated id in the input is an error
naming where each copy came from (file and line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.errors import DataError
from orchestrator.retrieval import IndexStore, build_index, load_documents, open_retriever
from orchestrator.retrieval.dense import LangChainEmbedder
from orchestrator.retrieval.types import SourceDocument
from orchestrator.testing import HashEmbeddings

BAKERY = {"doc_id": "bakery.md", "text": "The bakery opens at seven and sells rye bread."}
OTHERS = [
    {"doc_id": "mill.md", "text": "The mill grinds rye into flour."},
    {"doc_id": "port.md", "text": "Ships unload grain at the port every morning."},
    {"doc_id": "inn.md", "text": "The inn serves bread and soup to travellers."},
    {"doc_id": "forge.md", "text": "The smith works iron at the forge."},
]
SEARCHES = [
    ("dense", {}),
    ("bm25", {}),
    ("hybrid", {"fusion": "rrf"}),
    ("hybrid", {"fusion": "weighted"}),
]


def embedder() -> LangChainEmbedder:
    return LangChainEmbedder(HashEmbeddings(dim=128))


def top3(index_dir: Path, mode: str, options: dict[str, str]) -> list[str]:
    retriever = open_retriever(index_dir, mode=mode, k=3, embedding=embedder(), **options)
    return [d.metadata["chunk_id"] for d in retriever.invoke("bakery rye bread")]


@pytest.mark.parametrize(("mode", "options"), SEARCHES)
def test_the_same_document_twice_is_stored_once_and_found_once(tmp_path, mode, options) -> None:
    index_dir = tmp_path / "ix"
    store = build_index([BAKERY, BAKERY, *OTHERS], index_dir, embedding=embedder())
    chunk_ids = [c.chunk_id for c in store.chunks]
    assert len(chunk_ids) == len(set(chunk_ids)) == 5
    found = top3(index_dir, mode, options)
    assert len(found) == len(set(found)) == 3
    assert found[0] == next(c.chunk_id for c in store.chunks if c.doc_id == "bakery.md")


@pytest.mark.parametrize(("mode", "options"), SEARCHES)
def test_an_old_index_holding_a_chunk_twice_still_returns_it_once(tmp_path, mode, options):
    """Indexes written before duplicates were refused may hold one chunk in two rows: search
    is the safety net."""
    index_dir = tmp_path / "old"
    store = IndexStore.create(index_dir, embedder=embedder())
    store.add_documents([SourceDocument(**d) for d in OTHERS])
    bakery = store.chunker.split(SourceDocument(**BAKERY))[0]
    store._append([bakery, bakery], progress=False)  # what the old code stored
    store.save()
    assert [c.chunk_id for c in IndexStore.open(index_dir, embedder=embedder()).chunks].count(
        bakery.chunk_id
    ) == 2
    found = top3(index_dir, mode, options)
    assert found[0] == bakery.chunk_id
    assert len(found) == len(set(found)) == 3


def test_different_documents_with_one_id_in_one_batch_are_an_error(tmp_path) -> None:
    other = {"doc_id": "bakery.md", "text": "A different text under the same id."}
    with pytest.raises(DataError, match=r"two different documents have the id 'bakery.md'"):
        build_index([BAKERY, *OTHERS, other], tmp_path / "ix", modes=("bm25",))
    assert not (tmp_path / "ix").exists()


def rows(*pairs: tuple[str, str]) -> str:
    return "\n".join(json.dumps({"_id": i, "text": t}) for i, t in pairs) + "\n"


def test_a_jsonl_id_on_two_lines_is_an_error_naming_file_and_lines(tmp_path) -> None:
    corpus = tmp_path / "notes.jsonl"
    corpus.write_text(rows(("a", "first"), ("b", "second"), ("a", "third")))
    result = CliRunner().invoke(
        app, ["index", str(corpus), "--index", str(tmp_path / "ix"), "--modes", "bm25"]
    )
    output = " ".join(result.output.split())
    assert result.exit_code == 2, output
    assert f"'a' is used twice: by {corpus}:1 and by {corpus}:3" in output
    assert "fix:" in output and not (tmp_path / "ix").exists()


def test_a_beir_corpus_id_on_two_lines_is_an_error_naming_the_lines(tmp_path) -> None:
    beir = tmp_path / "beir"
    beir.mkdir()
    (beir / "corpus.jsonl").write_text(rows(("d1", "lift"), ("d2", "drag"), ("d1", "again")))
    with pytest.raises(DataError) as caught:
        list(load_documents([beir]))
    assert caught.value.message.endswith(f"by {beir}/corpus.jsonl:1 and by {beir}/corpus.jsonl:3")


def test_one_id_from_two_folders_is_an_error_naming_both_files(tmp_path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "notes.md").write_text(f"notes kept in {folder}")
    with pytest.raises(DataError, match=r"'notes.md' is used twice") as caught:
        list(load_documents([tmp_path / "a", tmp_path / "b"]))
    assert str(tmp_path / "a" / "notes.md") in caught.value.message
    assert str(tmp_path / "b" / "notes.md") in caught.value.message


def test_the_same_file_passed_twice_is_read_once(tmp_path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("a single note")
    assert [d.doc_id for d in load_documents([note, note])] == [note.as_posix()]
