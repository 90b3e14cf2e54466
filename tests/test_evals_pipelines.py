"""Evals build from pipeline specs: a suite names a PostgreSQL index and a RAG strategy and
gates; ``eval rag`` / ``eval retrieval`` take ``--dsn`` and ``--strategy`` and score the
pipeline ``orchestrator rag`` answers with (the same sources, the same answer).

Real parts: the session's PostgreSQL server, the embedded GGUF (small ``max_tokens``), one
index of eight short documents built once for the module."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from postgres_support import PgServer, write_beir
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.errors import DataError

QUESTION = "What buckles thin cylindrical shells?"
_names = itertools.count()


@pytest.fixture(scope="module")
def pg_index(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """``(dsn, name)`` of a hybrid index of postgres_support's corpus."""
    from orchestrator.retrieval import IndexSpec, build_index

    beir = write_beir(tmp_path_factory.mktemp("evals-pg") / "beir")
    name = f"evals{next(_names)}"
    build_index([beir], IndexSpec.of(name, pg_server.dsn))
    return pg_server.dsn, name


@pytest.fixture
def qa(tmp_path: Path) -> Path:
    """Two unanswered questions; the first has its reference passage."""
    rows = [
        {
            "id": "shells",
            "user_input": QUESTION,
            "reference": "Axial compression buckles thin shells.",
            "reference_contexts": ["axial compression buckles thin shells"],
        },
        {"id": "wedge", "user_input": "What forms on a supersonic wedge?", "reference": "A shock."},
    ]
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.integration
def test_suite_names_a_postgres_index_and_a_strategy_and_gates(
    pg_index: tuple[str, str], qa: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn, name = pg_index
    monkeypatch.setenv("EVAL_PG_DSN", dsn)  # the suite reads it: no DSN in the file
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: pg-multi\ndataset: qa.jsonl\nmetrics: [non_llm_context_recall, rouge]\n"
        "thresholds: {non_llm_context_recall: 0.5}\nconfigurations:\n"
        f"  - {{name: multi, index: {name}, dsn: '${{EVAL_PG_DSN}}', strategy: multi-query,\n"
        "     k: 2, max_tokens: 16, strategy_options: {n_queries: 2}}\n"
    )
    result = CliRunner().invoke(
        app, ["eval", str(suite), "--out", str(tmp_path / "out"), "--fail-below", "rouge=1.01"]
    )
    assert result.exit_code == 1, result.output  # the --fail-below gate, not the suite's
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["gate"]["failures"] == [
        f"multi: rouge = {saved['configurations'][0]['mean']['rouge']:.4f} is below 1.01"
    ]
    config = saved["configurations"][0]
    assert config["mean"]["non_llm_context_recall"] >= 0.5  # the suite's threshold held
    settings = config["settings"]
    assert settings["strategy"] == "multi_query" and settings["k"] == 2
    shown = "${EVAL_PG_DSN}"  # as written: results.json never holds a password
    assert settings["indexes"] == [{"backend": "postgres", "name": name, "dsn": shown}]
    first = config["samples"][0]
    assert first["sources"][0]["doc_id"] == "shells"
    assert [s["text"] for s in first["sources"]] == first["retrieved_contexts"]


@pytest.mark.integration
def test_eval_rag_scores_the_answers_orchestrator_rag_gives(
    pg_index: tuple[str, str], qa: Path
) -> None:
    """Same spec through ``rag`` and ``eval rag``: same sources in the same order, same
    answer (greedy); the eval's samples carry those sources (ids and passages)."""
    dsn, name = pg_index
    pipeline = ["--index", name, "--dsn", dsn, "--strategy", "multi-query", "--k", "2"]
    pipeline += ["--max-tokens", "16"]
    answered = _invoke("rag", QUESTION, *pipeline, "--json")
    scored = _invoke("eval", "rag", "--dataset", str(qa), *pipeline, "--metrics", "rouge", "--json")
    sample = scored["samples"][0]
    assert sample["sources"] == answered["sources"] and sample["sources"]
    assert {"doc_id", "text", "n"} <= set(sample["sources"][0])
    assert sample["response"].strip() == answered["answer"]
    assert sample["retrieved_contexts"] == [s["text"] for s in answered["sources"]]


@pytest.mark.integration
def test_eval_retrieval_with_dsn_and_strategy(pg_index: tuple[str, str], tmp_path: Path) -> None:
    dsn, name = pg_index
    beir = write_beir(tmp_path / "beir")
    args = ["eval", "retrieval", "--dataset", str(beir), "--index", name, "--dsn", dsn]
    mean = _invoke(*args, "--strategy", "multi-query", "--metrics", "P_1,map", "--json")
    assert set(mean) == {"P_1", "map"} and 0.0 <= mean["map"] <= 1.0


def test_a_suite_configuration_is_checked_as_a_pipeline(tmp_path: Path) -> None:
    """Typos in the new keys name file and line, with the fix; a spec file stands alone."""
    from orchestrator.evals.suite import load_suite

    def load(config: str) -> None:
        (tmp_path / "qa.jsonl").write_text('{"user_input": "q", "reference": "r"}\n')
        (tmp_path / "s.yaml").write_text(
            f"name: s\ndataset: qa.jsonl\nmetrics: [rouge]\nconfigurations:\n  - {config}\n"
        )
        load_suite(tmp_path / "s.yaml")

    with pytest.raises(DataError, match=r"s\.yaml:5: .*'multi-qeury'") as info:
        load("{name: a, index: i, strategy: multi-qeury}")
    assert info.value.fix == "did you mean 'multi-query'?"
    with pytest.raises(DataError, match=r"s\.yaml:5: unknown key 'stratgey'") as info:
        load("{name: a, stratgey: hyde}")
    assert info.value.fix == "did you mean 'strategy'?"
    with pytest.raises(DataError, match="spec names the whole pipeline; 'k' cannot"):
        load("{name: a, spec: rag.json, k: 2}")
    with pytest.raises(DataError, match="dsn needs index"):
        load("{name: a, dsn: 'postgresql://u@h/db'}")
