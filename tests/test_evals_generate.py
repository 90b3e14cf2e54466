"""Test-set generation (evals/generate.py): grammar-constrained rows, de-duplication, and a
real index + the embedded model writing a question set that ``eval rag`` reads back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evals_support import EXAMPLES
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.evals.generate import QUESTION_SCHEMA, Deduplicator, generate_rows
from orchestrator.evals.qa import load_qa
from orchestrator.retrieval.types import Chunk
from orchestrator.testing import ScriptedChatModel

PASSAGES = [
    Chunk("c1", "d1", "TREC is organised by NIST. " * 6),
    Chunk("c2", "d2", "Cranfield 2 had 1,400 abstracts and 225 queries. " * 4),
]


def _reply(question: str, answer: str) -> str:
    return json.dumps({"question": question, "answer": answer})


def test_rows_come_from_constrained_replies_without_duplicates() -> None:
    llm = ScriptedChatModel(
        replies=[
            _reply("Who organises TREC?", "NIST"),
            _reply("who organises TREC", "NIST"),  # the same question: dropped
            "not json",  # unparseable: dropped
            _reply("How many queries did Cranfield 2 have?", "225"),
        ],
        constraint="json_schema",
    )
    rows, tally = generate_rows(PASSAGES, 2, llm, two_passage=0.0, seed=1)
    assert [r["user_input"] for r in rows] == [
        "Who organises TREC?",
        "How many queries did Cranfield 2 have?",
    ]
    assert tally == {"duplicates": 1, "failed": 1, "two_passage": 0}
    by_id = {c.chunk_id: c.text for c in PASSAGES}
    for row in rows:
        assert [by_id[i] for i in row["reference_context_ids"]] == row["reference_contexts"]
    sent = llm.calls[0]["kwargs"]["response_format"]["schema"]
    assert sent == QUESTION_SCHEMA  # every generation is held to the schema


def test_two_passage_rows_pair_passages_of_different_documents() -> None:
    llm = ScriptedChatModel(replies=[_reply("How do TREC and Cranfield relate?", "both")])
    rows, tally = generate_rows(PASSAGES, 1, llm, two_passage=1.0)
    assert tally["two_passage"] == 1 and sorted(rows[0]["reference_context_ids"]) == ["c1", "c2"]
    assert "BOTH passages" in str(llm.calls[0]["messages"][-1].content)


def test_deduplicator_catches_repeats_and_near_repeats() -> None:
    seen = Deduplicator()
    assert not seen.seen("What is BM25?")
    assert seen.seen("what is bm25")
    assert not seen.seen("How is nDCG computed?")


@pytest.mark.integration
def test_generate_from_a_real_index_and_read_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.retrieval import build_index, open_store

    monkeypatch.setenv("ORCHESTRATOR_CACHE", str(tmp_path / "cache"))
    index = tmp_path / "index"
    build_index([EXAMPLES / "rag_docs"], index, modes=("bm25",))
    out = tmp_path / "qa.jsonl"
    result = CliRunner().invoke(
        app,
        ["eval", "generate", "--index", str(index), "-n", "3", "--two-passage", "0.5",
         "--max-tokens", "160", "--out", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    samples = load_qa(out)  # the question set eval rag reads
    assert len(samples) == report["written"] >= 2
    chunks = {c.chunk_id: c.text for c in open_store(index).chunks}
    for sample in samples:
        assert sample.user_input.strip() and sample.reference.strip()
        assert sample.reference_context_ids
        assert [chunks[i] for i in sample.reference_context_ids] == sample.reference_contexts
    assert len({s.user_input.lower() for s in samples}) == len(samples)
