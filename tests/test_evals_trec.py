"""TREC qrels/run files: round trips, and bad input reported with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytrec_eval

from orchestrator.errors import DataError
from orchestrator.evals import evaluate_run, read_qrels, read_run, write_qrels, write_run


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_run_round_trip_keeps_scores_and_trec_order(tmp_path: Path) -> None:
    run = {"q1": {"a": 1.0, "b": 1.0, "c": 0.1 + 0.2}, "q2": {"10": 3.5, "9": 3.5}}
    path = write_run(run, tmp_path / "runs" / "x.trec", tag="bm25")
    lines = path.read_text().splitlines()
    assert lines[0] == "q1 Q0 b 1 1.0 bm25"  # tie: document id descending
    assert lines[3].startswith("q2 Q0 9 1 ")
    assert read_run(path) == run  # float repr round-trips exactly
    with path.open() as handle:
        assert pytrec_eval.parse_run(handle) == run


def test_qrels_round_trip_and_beir_tsv(tmp_path: Path) -> None:
    qrels = {"1": {"184": 3, "29": 0}, "2": {"12": 2}}
    assert read_qrels(write_qrels(qrels, tmp_path / "q.txt")) == qrels
    beir = "query-id\tcorpus-id\tscore\n1\t184\t3\n1\t29\t0\n2\t12\t2\n"
    tsv = _write(tmp_path / "test.tsv", beir)
    assert read_qrels(tsv) == qrels


def test_files_feed_evaluate_run(tmp_path: Path) -> None:
    qrels = read_qrels(_write(tmp_path / "q", "q1 0 a 1\nq1 0 b 0\n"))
    run = read_run(_write(tmp_path / "r", "q1 Q0 b 1 2.0 x\nq1 Q0 a 2 1.0 x\n"))
    assert evaluate_run(qrels, run, ["recip_rank"])["mean"]["recip_rank"] == 0.5


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("q1 0 a 1\nq1 0 b\n", 2, "expected 'qid iter docid relevance'"),
        ("q1 0 a 1\n\nq1 0 b high\n", 3, "relevance 'high' is not an integer"),
        ("q1 0 a 1\nq1 0 a 2\n", 2, "query 'q1' judges document 'a' again .first on line 1."),
        ("q1 0 a 1\nq1 0 b \u0663\n", 2, "relevance '\u0663' is not an integer"),
        ("q1 0 a 1\nq1 0 b 1_0\n", 2, "relevance '1_0' is not an integer"),
        ("q1 0 a 1 extra field\n", 1, "expected .*, got 6 fields"),
    ],
)
def test_malformed_qrels_name_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = _write(tmp_path / "bad.qrels", text)
    with pytest.raises(DataError, match=rf"bad\.qrels:{line}: {message}"):
        read_qrels(path)


def test_run_naming_unknown_documents_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.trec", "q1 Q0 d1 1 2.0 x\nq1 Q0 nope 2 1.0 x\n")
    with pytest.raises(DataError, match=r"r\.trec:2: document 'nope' is not in the corpus"):
        read_run(path, known_docs={"d1", "d2"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q1 Q0 d1 1 2.0\n", r":1: expected 'qid Q0 docid rank score tag'"),
        ("q1 Q0 d1 1 high x\n", r":1: score 'high' is not a number"),
        ("q1 Q0 d1 1 nan x\n", r":1: score 'nan' is not a number"),
        ("q1 Q0 d1 1 \u0661.5 x\n", r":1: score '\u0661.5' is not a number"),
        ("q1 Q0 d1 1 2 x\nq1 Q0 d1 2 1 x\n", r":2: query 'q1' retrieves document 'd1' twice"),
    ],
)
def test_malformed_runs_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_run(_write(tmp_path / "r.trec", text))


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no judgements"):
        read_qrels(_write(tmp_path / "q", "\n\n"))
    with pytest.raises(DataError, match="the run is empty"):
        read_run(_write(tmp_path / "r", ""))
    with pytest.raises(DataError, match="absent: no such qrels file"):
        read_qrels(tmp_path / "absent")
    with pytest.raises(DataError, match="absent: no such run file"):
        read_run(tmp_path / "absent")


def test_ids_with_spaces_cannot_be_written(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="whitespace"):
        write_run({"q 1": {"a": 1.0}}, tmp_path / "r")
    with pytest.raises(DataError, match="has spaces"):
        write_run({"q1": {"a": 1.0}}, tmp_path / "r", tag="my run")
