"""The book's answer metrics on real parts: the embedded GGUF as judge, the CLI, a suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.evals.citations import JudgeEntailment
from orchestrator.evals.judge import LlamaJudge
from orchestrator.evals.qa import QASample
from orchestrator.evals.quality import PerplexityFluency, RatingMetric
from orchestrator.evals.rag import evaluate_rag

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[1] / "evals" / "examples"
TREC = "TREC is organised by the US National Institute of Standards and Technology (NIST)."
BM25 = "In BM25 the parameter b, usually 0.75, controls document length normalisation."
ANSWER_METRICS = [
    "citation_recall",
    "citation_precision",
    "citation_recall_lexical",
    "citation_precision_lexical",
    "fluency",
    "fluency_perplexity",
    "perceived_utility",
]


@pytest.fixture(scope="module")
def judge() -> LlamaJudge:
    return LlamaJudge(max_tokens=32)


def test_the_embedded_judge_answers_under_the_grammars(judge: LlamaJudge) -> None:
    entails = JudgeEntailment(judge)
    assert isinstance(entails(TREC, "NIST organises TREC."), bool)
    fluency = RatingMetric("fluency", judge).score("TREC is organised by NIST [1].")
    assert fluency.value in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert fluency.detail["rating"] in (1, 2, 3, 4, 5)
    utility = RatingMetric("perceived_utility", judge).score("NIST [1].", "Who organises TREC?")
    assert 0.0 <= utility.value <= 1.0
    assert judge.calls >= 3


def test_perplexity_baseline_prefers_fluent_text() -> None:
    baseline = PerplexityFluency()
    fluent = baseline.score("TREC is organised by the US National Institute of Standards.")
    scrambled = baseline.score("Standards organised US the TREC National by of is Institute.")
    assert 0.0 < scrambled.value < fluent.value < 1.0
    assert fluent.detail["tokens"] >= 10


def test_all_answer_metrics_score_with_the_embedded_judge(judge: LlamaJudge) -> None:
    samples = [
        QASample(
            id="trec",
            user_input="Who organises TREC?",
            reference="NIST.",
            response="TREC is organised by NIST [1]. The parameter b controls length [2][1].",
            retrieved_contexts=[TREC, BM25],
        ),
        QASample(
            id="uncited",
            user_input="What does b control in BM25?",
            reference="Length normalisation.",
            response="It controls document length normalisation.",
            retrieved_contexts=[BM25],
        ),
    ]
    result = evaluate_rag(samples, ANSWER_METRICS, judge=judge, timeout=240)
    assert result.failed == []  # constrained decoding: every verdict parsed
    for row in result.samples:
        assert set(row["scores"]) == set(ANSWER_METRICS)
        assert all(0.0 <= v <= 1.0 for v in row["scores"].values())
    uncited = result.samples[1]["scores"]
    assert uncited["citation_recall"] == uncited["citation_precision"] == 0.0  # ALCE: no cite
    lexical = result.samples[0]["scores"]
    # "TREC is organised by NIST" is all in [1]; "The parameter b controls length" is all in
    # [2] and [1] adds nothing: recall 2/2, precision 2/3.
    assert lexical["citation_recall_lexical"] == 1.0
    assert lexical["citation_precision_lexical"] == pytest.approx(2 / 3)
    assert result.judge


@pytest.fixture(scope="module")
def bm25_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orchestrator.retrieval import build_index

    path = tmp_path_factory.mktemp("citations") / "index"
    build_index([EXAMPLES / "rag_docs"], path, modes=("bm25",))
    return path


def test_cli_eval_rag_with_the_book_metrics_on_the_example_set(bm25_index: Path) -> None:
    metrics = "citation_recall,citation_precision,fluency,perceived_utility"
    result = CliRunner().invoke(
        app,
        [
            "eval", "rag", "--dataset", str(EXAMPLES / "rag_qa.jsonl"), "--index",
            str(bm25_index), "--mode", "bm25", "--k", "2", "--max-tokens", "16",
            "--metrics", metrics, "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    rows = (EXAMPLES / "rag_qa.jsonl").read_text().splitlines()
    assert len(payload["samples"]) == len(rows) == 7
    assert set(payload["mean"]) == set(metrics.split(","))
    assert payload["scored"] == dict.fromkeys(metrics.split(","), 7), payload["failed"]
    for sample in payload["samples"]:
        assert sample["response"] and sample["retrieved_contexts"]
        assert all(0.0 <= v <= 1.0 for v in sample["scores"].values())
    assert payload["judge"]


def test_suite_with_the_book_metrics_writes_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_CACHE", str(tmp_path / "cache"))
    rows = (EXAMPLES / "rag_qa.jsonl").read_text().splitlines()[:2]
    (tmp_path / "qa.jsonl").write_text("\n".join(rows) + "\n")
    listed = "\n".join(f"  - {m}" for m in ANSWER_METRICS)
    (tmp_path / "suite.yaml").write_text(
        f"name: answers\ndataset: qa.jsonl\ndocuments: [{EXAMPLES / 'rag_docs'}]\n"
        f"metrics:\n{listed}\njudge: {{max_tokens: 32, timeout: 240}}\n"
        "configurations:\n  - {name: bm25, mode: bm25, k: 2, max_tokens: 32}\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "suite.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    config = saved["configurations"][0]
    assert config["failed"] == []
    assert set(config["mean"]) == set(ANSWER_METRICS)
    assert all(0.0 <= v <= 1.0 for v in config["mean"].values())
    report = (out / "report.md").read_text()
    assert "## Answer metrics" in report and "- `citation_precision`:" in report
    assert (out / "figures" / "citations.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 3
