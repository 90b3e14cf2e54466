"""Ingestion: file formats, BEIR directories, token chunking with overlap, ids and metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import DataError, OptionError
from orchestrator.retrieval import load_beir
from orchestrator.retrieval.ingest import Chunker, ChunkerConfig, load_documents
from orchestrator.retrieval.types import SourceDocument


def write_beir(root) -> None:  # type: ignore[no-untyped-def]
    (root / "qrels").mkdir(parents=True)
    rows = [{"_id": "d1", "title": "Wings", "text": "lift"}, {"_id": "d2", "text": "drag"}]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    queries = [{"_id": "q1", "text": "lift?"}, {"_id": "q2", "text": "unjudged"}]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\n")


def test_load_beir_reads_corpus_judged_queries_and_qrels(tmp_path) -> None:
    write_beir(tmp_path)
    data = load_beir(tmp_path)
    assert data.corpus["d1"] == {"title": "Wings", "text": "lift"}
    assert data.corpus["d2"]["title"] == ""
    assert data.queries == {"q1": "lift?"}
    assert data.qrels == {"q1": {"d1": 2}}


def test_load_beir_errors_name_the_problem(tmp_path) -> None:
    with pytest.raises(DataError, match=r"corpus\.jsonl is missing"):
        load_beir(tmp_path)
    write_beir(tmp_path)
    (tmp_path / "qrels" / "test.tsv").write_text("q1 d1\n")
    with pytest.raises(DataError, match=r"test\.tsv:1"):
        load_beir(tmp_path)


def test_load_documents_from_text_markdown_jsonl_and_beir(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("plain text")
    (tmp_path / "guide.md").write_text("# Title\n\nbody")
    (tmp_path / "rows.jsonl").write_text(
        json.dumps({"id": "r1", "text": "row text", "lang": "en"})
        + "\n"
        + json.dumps({"page_content": "no id"})
        + "\n"
    )
    (tmp_path / "skip.bin").write_bytes(b"\0")
    beir = tmp_path / "beir"
    write_beir(beir)
    docs = {
        d.doc_id: d
        for d in load_documents(
            [tmp_path / "notes.txt", tmp_path / "guide.md", tmp_path / "rows.jsonl", beir]
        )
    }
    # a file passed on its own is named by its path as passed (so a/x.txt != b/x.txt) ...
    assert docs[(tmp_path / "notes.txt").as_posix()].text == "plain text"
    assert docs[(tmp_path / "guide.md").as_posix()].metadata["format"] == "markdown"
    assert docs["r1"].metadata["lang"] == "en"
    assert docs["rows.jsonl:2"].text == "no id"
    assert docs["d1"].title == "Wings"
    # ... and a file found in a directory by its path relative to that directory
    assert {d.doc_id for d in load_documents([tmp_path])} >= {"notes.txt", "guide.md", "r1"}


def test_unsupported_unreadable_or_missing_files_are_errors(tmp_path) -> None:
    (tmp_path / "a.png").write_bytes(b"\x89PNG")
    with pytest.raises(OptionError, match=r"unsupported file type \.png"):
        list(load_documents([tmp_path / "a.png"]))
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    with pytest.raises(DataError, match=r"a\.pdf is not a readable PDF"):
        list(load_documents([tmp_path / "a.pdf"]))
    with pytest.raises(DataError, match="does not exist"):
        list(load_documents([tmp_path / "nope.txt"]))


def test_chunks_respect_the_token_budget_overlap_and_keep_metadata() -> None:
    chunker = Chunker(ChunkerConfig(chunk_size=40, chunk_overlap=10))
    sentences = [f"Sentence number {i} talks about shock waves and wings." for i in range(30)]
    doc = SourceDocument("doc-7", " ".join(sentences), "src.txt", "Shocks", {"year": 1960})
    chunks = chunker.split(doc)
    assert len(chunks) > 5
    assert all(chunker.count_tokens(c.text) <= 40 for c in chunks)
    assert all(c.doc_id == "doc-7" and c.source == "src.txt" for c in chunks)
    assert all(c.metadata == {"year": 1960, "title": "Shocks"} for c in chunks)
    assert all(c.text.startswith("Shocks\n") for c in chunks)
    first_words = chunks[1].text.split()[1:4]
    assert " ".join(first_words) in chunks[0].text
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    assert [c.chunk_id for c in chunker.split(doc)] == [c.chunk_id for c in chunks]


def test_chunker_rejects_bad_sizes() -> None:
    with pytest.raises(OptionError, match="chunk_overlap < chunk_size"):
        ChunkerConfig(chunk_size=32, chunk_overlap=32)


@pytest.mark.parametrize("line", ["q1\td1\t\u00b2", "q1\td1\tx", "q1\td1"])
def test_malformed_beir_qrels_line_names_file_and_line(tmp_path: Path, line: str) -> None:
    from orchestrator.errors import DataError
    from orchestrator.retrieval.beir import load_qrels

    qrels = tmp_path / "test.tsv"
    qrels.write_text(f"query-id\tcorpus-id\tscore\nq0\td0\t1\n{line}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test\.tsv:3"):
        load_qrels(qrels)


def test_duplicate_beir_judgement_is_an_error(tmp_path: Path) -> None:
    from orchestrator.errors import DataError
    from orchestrator.retrieval.beir import load_qrels

    qrels = tmp_path / "test.tsv"
    qrels.write_text("q1\td1\t1\nq1\td1\t2\n", encoding="utf-8")
    with pytest.raises(DataError, match="again"):
        load_qrels(qrels)
