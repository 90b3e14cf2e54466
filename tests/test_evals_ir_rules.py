"""One place for each retrieval-eval rule: qrels, queries, run writing, progress display."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator import evals
from orchestrator.cli.app import app
from orchestrator.errors import DataError
from orchestrator.evals import runner as eval_runner
from orchestrator.evals import trec
from orchestrator.retrieval import beir, progress

cli = CliRunner()


def test_one_qrels_parser_one_progress_display() -> None:
    assert evals.read_qrels is trec.read_qrels is beir.read_qrels is beir.load_qrels
    assert eval_runner.progress_bar is progress.progress_bar


@pytest.fixture()
def beir_dir(tmp_path: Path) -> Path:
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "10", "title": "Shock waves", "text": "oblique shock on a supersonic wedge"},
        {"_id": "11", "title": "Heat", "text": "heat transfer in laminar boundary layers"},
        {"_id": "12", "title": "Shells", "text": "buckling of thin cylindrical shells"},
    ]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in corpus))
    queries = [{"_id": "1", "text": "shell buckling"}, {"_id": "2", "text": "wedge shock"}]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\t12\t1\n2\t10\t1\n")
    return root


@pytest.mark.parametrize(
    ("qrels", "message"),
    [
        ("1\t12\t1\n1\t12\t2\n", r"test\.tsv:2: query '1' judges document '12' again"),
        ("1\t12\t\u0661\n", r"test\.tsv:1: relevance '\u0661' is not an integer"),
        ("1 0 12 1\n2\t10\t1\n", r"test\.tsv:2: expected 'qid iter docid relevance'"),
    ],
)
def test_beir_qrels_follow_the_strict_rules(beir_dir: Path, qrels: str, message: str) -> None:
    (beir_dir / "qrels" / "test.tsv").write_text(qrels)
    with pytest.raises(DataError, match=message):
        beir.load_beir(beir_dir)


def test_beir_reads_trec_layout_qrels_too(beir_dir: Path) -> None:
    (beir_dir / "qrels" / "test.tsv").write_text("1 0 12 1\n2 0 10 2\n")
    assert beir.load_beir(beir_dir).qrels == {"1": {"12": 1}, "2": {"10": 2}}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"_id": "1", "text": "again"}', r"queries\.jsonl:3: query id '1' again .first on line 1"),
        ('{"id": "3", "query": "old keys"}', r"queries\.jsonl:3 needs '_id' and 'text'"),
    ],
)
def test_one_query_reader_for_beir_and_the_cli(
    beir_dir: Path, tmp_path: Path, line: str, message: str
) -> None:
    queries = beir_dir / "queries.jsonl"
    queries.write_text(queries.read_text() + "\n" + line + "\n")
    with pytest.raises(DataError, match=message):
        beir.load_beir(beir_dir)
    index = tmp_path / "idx"
    assert _invoke("index", str(beir_dir), "--index", str(index), "--modes", "bm25").exit_code == 0
    result = _search_run(index, queries, tmp_path / "run.trec")
    assert result.exit_code == 2 and "queries.jsonl:3" in "".join(result.output.split())


def _invoke(*args: str) -> Any:
    return cli.invoke(app, list(args))


def _search_run(index: Path, queries: Path, out: Path, *extra: str) -> Any:
    args = ["search", "--index", str(index), "--mode", "bm25", "--queries", str(queries)]
    return _invoke(*args, "--run-out", str(out), *extra)


def test_cli_run_is_the_evaluators_run_through_the_checked_writer(
    beir_dir: Path, tmp_path: Path
) -> None:
    from orchestrator.evals.retrieval import retrieve_run
    from orchestrator.retrieval import open_retriever

    index = tmp_path / "idx"
    _invoke("index", str(beir_dir), "--index", str(index), "--modes", "bm25")
    out = tmp_path / "run.trec"
    result = _search_run(index, beir_dir / "queries.jsonl", out, "-k", "2", "--json")
    assert result.exit_code == 0, result.output
    queries = beir.load_queries(beir_dir / "queries.jsonl")
    expected = retrieve_run(open_retriever(index, mode="bm25"), queries, k=2)
    assert trec.read_run(out) == expected
    assert out.read_text() == "".join(trec.format_run(expected, tag="orchestrator"))


def test_cli_run_with_a_bad_tag_is_refused_before_searching(beir_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.trec"
    index = tmp_path / "idx"
    _invoke("index", str(beir_dir), "--index", str(index), "--modes", "bm25")
    result = _search_run(index, beir_dir / "queries.jsonl", out, "--tag", "my run")
    assert result.exit_code == 2 and "has spaces" in result.output
    assert not out.exists()


def test_progress_bars_draw_on_stderr_only(capsys: pytest.CaptureFixture[str]) -> None:
    with progress.progress_bar(True) as task:
        first, second = task("retrieving", 2), task("judging", None)
        first(2)
        second(1)
    with progress.progress_task("quiet", 3, enabled=False) as advance:
        advance(3)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "retrieving" in captured.err and "2/2" in captured.err and "judging" in captured.err
    assert "quiet" not in captured.err


def test_beir_corpus_with_a_repeated_id_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    from orchestrator.errors import DataError
    from orchestrator.retrieval.beir import load_corpus

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        '{"_id": "a", "text": "one"}\n{"_id": "b", "text": "two"}\n{"_id": "a", "text": "three"}\n'
    )
    expected = r"corpus.jsonl:3: document id 'a' again \(first on line 1\)"
    with pytest.raises(DataError, match=expected):
        load_corpus(corpus)
