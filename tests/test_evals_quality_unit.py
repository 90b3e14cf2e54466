"""Fluency and perceived utility (evals/quality.py): Likert parsing, normalisation, baseline."""

from __future__ import annotations

import math

import pytest

from orchestrator.errors import DataError
from orchestrator.evals.judge import JudgeBehaviour
from orchestrator.evals.quality import (
    RatingMetric,
    normalise_likert,
    parse_likert,
    perplexity_fluency,
    strip_citations,
)
from orchestrator.evals.report import ANSWER_METRIC_NOTES, figures, markdown
from orchestrator.evals.suite import load_suite
from orchestrator.testing import ScriptedChatModel


@pytest.mark.parametrize(("value", "rating"), [(1, 1), ("4", 4), (" 5 ", 5), (3, 3)])
def test_likert_ratings_parse(value: object, rating: int) -> None:
    assert parse_likert(value) == rating


@pytest.mark.parametrize("value", [0, 6, "x", "", "4.5", True, None, -1])
def test_anything_but_one_to_five_is_an_error(value: object) -> None:
    with pytest.raises(DataError, match="not one of 1-5"):
        parse_likert(value)


def test_likert_normalisation() -> None:
    assert [normalise_likert(r) for r in (1, 2, 3, 4, 5)] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_citation_markers_are_not_rated() -> None:
    assert strip_citations("Paris [1]. It is big [2][3].") == "Paris. It is big."


def test_fluency_rating_is_decoded_under_the_enum_and_normalised() -> None:
    fake = ScriptedChatModel(replies=['{"rating": 4}', '{"rating": 1}'], constraint="json_schema")
    judge = JudgeBehaviour(fake)
    score = RatingMetric("fluency", judge).score("Paris is the capital [1].")
    assert (score.value, score.detail) == (0.75, {"rating": 4})
    schema = fake.calls[0]["kwargs"]["response_format"]["schema"]
    assert schema["properties"]["rating"]["enum"] == [1, 2, 3, 4, 5]
    prompt = fake.calls[0]["messages"][-1].content
    assert "Paris is the capital." in prompt and "[1]" not in prompt
    assert "fluent and cohesive" in prompt
    utility = RatingMetric("perceived_utility", judge).score("Paris.", "Capital of France?")
    assert utility.value == 0.0
    assert "Question: Capital of France?" in fake.calls[1]["messages"][-1].content


def test_rating_needs_a_judge_and_an_answer() -> None:
    with pytest.raises(DataError, match="needs a judge"):
        RatingMetric("fluency", None)
    metric = RatingMetric("fluency", JudgeBehaviour(ScriptedChatModel(replies=[])))
    with pytest.raises(DataError, match="empty"):
        metric.score(" [1] ")


def test_perplexity_fluency_exact_values() -> None:
    # every token at p = 1/2 over a vocabulary of 4: ln(ppl) = ln 2, ln V = ln 4 -> 0.5
    assert perplexity_fluency([-math.log(2)] * 3, 4) == pytest.approx(0.5)
    assert perplexity_fluency([-math.log(4)] * 2, 4) == pytest.approx(0.0)  # uniform noise
    assert perplexity_fluency([0.0, 0.0], 4) == 1.0  # certain
    assert perplexity_fluency([-10.0], 4) == 0.0  # worse than uniform: clipped
    with pytest.raises(DataError, match="no token"):
        perplexity_fluency([], 4)


def _results(metrics: list[str]) -> dict[str, object]:
    samples = [
        {"id": str(i), "user_input": "q", "response": "a", "scores": dict.fromkeys(metrics, v)}
        for i, v in enumerate((0.25, 1.0))
    ]
    config = {
        "name": "bm25",
        "kind": "rag",
        "mean": dict.fromkeys(metrics, 0.625),
        "samples": samples,
        "failed": [],
        "seconds": 1.0,
    }
    return {
        "suite": "s",
        "kind": "rag",
        "dataset": "qa.jsonl",
        "metrics": metrics,
        "created": "now",
        "machine": "m",
        "configurations": [config],
    }


def test_reports_explain_the_answer_metrics_and_plot_citations() -> None:
    metrics = list(ANSWER_METRIC_NOTES)
    results = _results(metrics)
    images = figures(results)
    assert set(images) == {"comparison.png", "distribution.png", "citations.png"}
    assert images["citations.png"].startswith(b"\x89PNG")
    text = markdown(results, [], ["figures/citations.png"])
    assert "| bm25 | " + " | ".join(["0.6250"] * len(metrics)) + " | 1.0 |" in text
    for name in metrics:
        assert f"- `{name}`:" in text
    assert "no non-LLM baseline" in text
    # without citation metrics there is no citation plot and no notes section
    plain = _results(["rouge"])
    assert "citations.png" not in figures(plain)
    assert "## Answer metrics" not in markdown(plain, [], [])


def test_suites_accept_the_new_metric_names_and_reject_typos(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "qa.jsonl").write_text('{"user_input": "q", "reference": "r"}\n')
    body = (
        "name: s\ndataset: qa.jsonl\nmetrics:\n  - citation_recall\n  - {metric}\n"
        "configurations:\n  - {{name: a}}\n"
    )
    good = tmp_path / "good.yaml"
    good.write_text(body.format(metric="perceived_utility"))
    suite, _ = load_suite(good)
    assert suite.metrics == ["citation_recall", "perceived_utility"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(body.format(metric="fluenc"))
    with pytest.raises(DataError, match=r"bad\.yaml:5: .*'fluenc'") as info:
        load_suite(bad)
    assert "did you mean 'fluency'?" in info.value.fix
