"""ALCE citation recall and precision (evals/citations.py) with fake entailment and judges."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.errors import DataError, OptionError
from orchestrator.evals.citations import (
    JudgeEntailment,
    Statement,
    citation_scores,
    lexical_entails,
    lexical_recall,
    split_statements,
)
from orchestrator.evals.judge import JudgeBehaviour
from orchestrator.evals.qa import QASample
from orchestrator.evals.rag import RAG_METRICS, check_metrics, evaluate_rag
from orchestrator.testing import ScriptedChatModel

A, B, C = "Passage A.", "Passage B.", "Passage C."


def _entails(true_pairs: set[tuple[str, str]]):  # type: ignore[no-untyped-def]
    """An entailment function that says yes exactly for ``true_pairs`` and records calls."""
    calls: list[tuple[str, str]] = []

    def entails(premise: str, statement: str) -> bool:
        calls.append((premise, statement))
        return (premise, statement) in true_pairs

    entails.calls = calls  # type: ignore[attr-defined]
    return entails


def test_statements_keep_their_citations_and_lose_the_markers() -> None:
    answer = (
        "Cranfield 2 had 1,400 abstracts [1]. It was run by Dr. Cleverdon in 1960. [2] "
        "TREC is run by NIST [3][2][3]. No source here."
    )
    assert split_statements(answer) == [
        Statement("Cranfield 2 had 1,400 abstracts.", (1,)),
        Statement("It was run by Dr. Cleverdon in 1960.", (2,)),  # "[2]" after the stop
        Statement("TREC is run by NIST.", (3, 2)),  # first-citation order, no repeats
        Statement("No source here.", ()),
    ]
    assert split_statements("   ") == []
    assert split_statements("[1] Leading marker. Next [2].") == [
        Statement("Leading marker.", (1,)),
        Statement("Next.", (2,)),
    ]


def test_recall_and_precision_follow_alce_including_rule_b() -> None:
    """S1 [1] entailed by A. S2 [1][2] needs both (rule b: removing either breaks it).
    S3 [2][3]: B alone entails it (rule a), C is redundant (B still entails without it).
    S4 has no citation. recall = 3/4, precision = (1 + 2 + 1) / 5."""
    answer = "S one [1]. S two [1][2]. S three [2][3]. S four."
    joint = f"{A}\n{B}"
    entails = _entails(
        {
            (A, "S one."),
            (joint, "S two."),
            (f"{B}\n{C}", "S three."),
            (B, "S three."),
        }
    )
    scores = citation_scores(answer, [A, B, C], entails)
    assert (scores.recall, scores.precision) == (0.75, 0.8)
    assert (scores.statements, scores.supported, scores.citations, scores.relevant) == (4, 3, 5, 4)
    # rule (b) for S two: each passage alone fails, then the rest (the other one) is tried
    assert (A, "S two.") in entails.calls and (B, "S two.") in entails.calls  # type: ignore[attr-defined]


def test_a_statement_its_citations_do_not_entail_has_no_relevant_citation() -> None:
    scores = citation_scores("Claim [1][2]. Other [2].", [A, B], _entails({(B, "Other.")}))
    assert (scores.recall, scores.precision) == (0.5, 1 / 3)
    assert (scores.citations, scores.relevant) == (3, 1)


def test_answers_without_citations_score_zero_and_empty_answers_are_errors() -> None:
    always = _entails(set())
    scores = citation_scores("Paris is in France. It is big.", [A], always)
    assert (scores.recall, scores.precision, scores.citations) == (0.0, 0.0, 0)
    assert always.calls == []  # type: ignore[attr-defined]  # nothing cited: no judgement
    with pytest.raises(DataError, match="no statement"):
        citation_scores("  ", [A], always)


def test_a_citation_outside_the_retrieved_passages_scores_recall_zero_and_is_not_counted() -> None:
    scores = citation_scores("Good [1]. Invented [1][7].", [A], _entails({(A, "Good.")}))
    assert (scores.recall, scores.precision, scores.citations) == (0.5, 1.0, 1)


def test_lexical_baseline_exact_values() -> None:
    premise = "TREC is organised by NIST since 1992."
    # statement words: trec is run by nist -> 4 of 5 in the premise
    assert lexical_recall(premise, "TREC is run by NIST") == pytest.approx(0.8)
    assert lexical_entails(premise, "TREC is run by NIST")
    assert lexical_recall(premise, "Bananas are yellow") == 0.0
    # stemming: "organises" matches "organised"
    assert lexical_recall(premise, "NIST organises TREC") == pytest.approx(1.0)
    assert not lexical_entails(premise, "TREC is run by NIST", threshold=0.9)
    answer = "TREC is run by NIST [1]. Bananas are yellow [1][2]."
    scores = citation_scores(answer, [premise, "Yellow bananas are sold."], lexical_entails)
    # S2: joint entails (3/3), passage 2 alone entails (a), passage 1 alone does not and the
    # rest (passage 2) still entails: passage 1 is not needed.
    assert (scores.recall, scores.precision) == (1.0, 2 / 3)


def _judge(replies: list[str]) -> tuple[JudgeBehaviour, ScriptedChatModel]:
    fake = ScriptedChatModel(replies=replies, constraint="json_schema")
    return JudgeBehaviour(fake), fake


def test_judge_entailment_decodes_under_a_yes_no_grammar_and_remembers() -> None:
    judge, fake = _judge(['{"supported": "yes"}', '{"supported": "no"}'])
    entails = JudgeEntailment(judge)
    assert entails("NIST runs TREC.", "TREC is run by NIST.") is True
    assert entails("NIST runs TREC.", "TREC is run by NIST.") is True  # remembered
    assert entails("Bananas.", "TREC is run by NIST.") is False
    assert judge.calls == 2
    schema = fake.calls[0]["kwargs"]["response_format"]["schema"]
    assert schema["properties"]["supported"]["enum"] == ["yes", "no"]
    prompt = fake.calls[0]["messages"][-1].content
    assert "NIST runs TREC." in prompt and "Claim: TREC is run by NIST." in prompt


def test_evaluate_rag_scores_citation_and_quality_metrics_with_a_scripted_judge() -> None:
    sample = QASample(
        id="nist",
        user_input="Who organises TREC?",
        reference="NIST.",
        response="TREC is run by NIST [1]. It started in 1992 [1][2].",
        retrieved_contexts=["TREC is organised by NIST since 1992.", "Bananas are yellow."],
    )
    # judge calls in order: S1 joint yes; S2 joint yes; S2 [1] alone yes; S2 [2] alone no ->
    # rest ([1]) yes, so [2] is not needed; then fluency 4, perceived utility 2.
    judge, _ = _judge(
        [
            '{"supported": "yes"}',
            '{"supported": "yes"}',
            '{"supported": "yes"}',
            '{"supported": "no"}',
            '{"rating": 4}',
            '{"rating": 2}',
        ]
    )
    names = ["citation_recall", "citation_precision", "fluency", "perceived_utility"]
    result = evaluate_rag([sample], names, judge=judge, timeout=30)
    assert result.failed == []
    assert result.mean == {
        "citation_recall": 1.0,
        "citation_precision": 2 / 3,
        "fluency": 0.75,
        "perceived_utility": 0.25,
    }
    assert judge.calls == 6  # precision re-used recall's verdict on the joint passages
    assert result.judge == "ScriptedChatModel"


def test_lexical_metrics_need_no_judge_and_unanswered_samples_are_reported() -> None:
    answered = QASample(
        id="a",
        user_input="Who?",
        reference="NIST",
        response="TREC is run by NIST [1].",
        retrieved_contexts=["TREC is organised by NIST since 1992."],
    )
    unanswered = QASample(id="b", user_input="Who?", reference="NIST")
    names = ["citation_recall_lexical", "citation_precision_lexical"]
    result = evaluate_rag([answered, unanswered], names)
    assert result.mean == {"citation_recall_lexical": 1.0, "citation_precision_lexical": 1.0}
    assert {(f["id"], f["metric"]) for f in result.failed} == {("b", n) for n in names}
    assert result.judge is None


def test_unknown_metric_names_the_table() -> None:
    with pytest.raises(OptionError) as info:
        check_metrics(["citation_recal"])
    assert "did you mean 'citation_recall'?" in info.value.fix
    for name in RAG_METRICS:
        assert name in info.value.fix
    with pytest.raises(OptionError, match=r"known options: .*perceived_utility"):
        check_metrics(["zzz"])
    new = {
        "citation_recall",
        "citation_precision",
        "citation_recall_lexical",
        "citation_precision_lexical",
        "fluency",
        "fluency_perplexity",
        "perceived_utility",
    }
    assert new <= set(RAG_METRICS)
    assert {n for n in new if RAG_METRICS[n].uses_llm} == {
        "citation_recall",
        "citation_precision",
        "fluency",
        "perceived_utility",
    }


def test_cli_rejects_an_unknown_metric_with_the_list(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "qa.jsonl"
    row = {"user_input": "q", "reference": "r", "response": "a [1].", "retrieved_contexts": ["c"]}
    path.write_text(json.dumps(row) + "\n")
    result = CliRunner().invoke(
        app, ["eval", "rag", "--dataset", str(path), "--metrics", "citation_precison"]
    )
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "citation_precison" in text and "did you mean 'citation_precision'?" in text
