"""The Ragas path: offline import, the constrained local judge, failures with reasons, QA files."""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
from pathlib import Path

import pytest
from evals_support import example_suite
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.runnables import RunnableLambda
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.errors import DataError, OptionError
from orchestrator.evals.judge import JudgeTimeoutError, LlamaJudge, import_ragas, tighten_schema
from orchestrator.evals.qa import QASample, answer_samples, load_qa, to_evaluation_dataset
from orchestrator.evals.rag import NON_LLM_METRICS, evaluate_rag
from orchestrator.testing import ScriptedChatModel

EIFFEL = "The Eiffel Tower is in Paris. It was completed in 1889 for the World's Fair."


def _output_models() -> dict[str, type]:
    import_ragas()
    from ragas.metrics.collections.answer_relevancy.util import AnswerRelevanceOutput
    from ragas.metrics.collections.context_precision.util import ContextPrecisionOutput
    from ragas.metrics.collections.context_recall.util import ContextRecallOutput
    from ragas.metrics.collections.faithfulness.util import (
        NLIStatementOutput,
        StatementGeneratorOutput,
    )

    return {
        "nli": NLIStatementOutput,
        "statements": StatementGeneratorOutput,
        "precision": ContextPrecisionOutput,
        "recall": ContextRecallOutput,
        "relevance": AnswerRelevanceOutput,
    }


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(self: socket.socket, *args: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def test_ragas_imports_offline_with_telemetry_off() -> None:
    ragas = import_ragas()
    assert os.environ["RAGAS_DO_NOT_TRACK"] == "true"
    assert importlib_ok("ragas.metrics.collections")
    # the vertexai stand-in lives only while ragas imports: nothing fake is left behind
    assert "langchain_community.chat_models.vertexai" not in sys.modules
    from ragas.llms.base import InstructorBaseRagasLLM

    assert issubclass(LlamaJudge, InstructorBaseRagasLLM)  # what Ragas' metrics require
    from ragas._analytics import do_not_track

    assert do_not_track() is True
    assert ragas.__version__ == "0.4.3"


def importlib_ok(name: str) -> bool:
    import importlib

    return importlib.import_module(name) is not None


def test_tightened_schemas_bound_verdicts_lists_and_strings() -> None:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    models = _output_models()
    nli = tighten_schema(models["nli"].model_json_schema(), max_items=3, max_chars=50)
    item = nli["$defs"]["StatementFaithfulnessAnswer"]["properties"]
    assert item["verdict"]["enum"] == [0, 1]
    assert item["reason"]["maxLength"] == 50
    assert (
        nli["properties"]["statements"]["minItems"],
        nli["properties"]["statements"]["maxItems"],
    ) == (1, 3)
    recall = tighten_schema(models["recall"].model_json_schema(), max_items=3, max_chars=50)
    classification = recall["$defs"]["ContextRecallClassification"]["properties"]
    assert classification["attributed"]["enum"] == [0, 1]
    for name in ("precision", "relevance"):
        schema = tighten_schema(models[name].model_json_schema(), max_items=3, max_chars=50)
        binary = [p for p in schema["properties"].values() if p.get("type") == "integer"]
        assert binary and all(p["enum"] == [0, 1] for p in binary)
        assert '"0" | "1"' in json_schema_to_gbnf(json.dumps(schema))
    # the original model's schema is not modified
    assert "enum" not in models["precision"].model_json_schema()["properties"]["verdict"]


def test_judge_sends_the_tightened_schema_and_validates_the_reply() -> None:
    fake = ScriptedChatModel(
        replies=['{"reason": "stated", "verdict": 1}'], constraint="json_schema"
    )
    judge = LlamaJudge(fake, max_items=2, max_chars=40)
    out = judge.generate("Is it useful?", _output_models()["precision"])
    assert out.verdict == 1
    call = fake.calls[0]
    schema = call["kwargs"]["response_format"]["schema"]
    assert schema["properties"]["verdict"]["enum"] == [0, 1]
    assert call["kwargs"]["max_tokens"] == judge.max_tokens
    assert call["messages"][-1].content == "Is it useful?"


def test_concurrent_judgements_are_serialised_on_one_model() -> None:
    """Ragas awaits many generations at once; a model that declares no parallel slots (this
    fake, another LangChain model) sees one at a time (tests/test_evals_together.py: more)."""
    import asyncio
    import threading

    active, peak, lock = [0], [0], threading.Lock()

    class Tracking(ScriptedChatModel):
        def _stream(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.05)
            yield from super()._stream(*args, **kwargs)  # type: ignore[arg-type]
            with lock:
                active[0] -= 1

    judge = LlamaJudge(Tracking(replies=['{"reason": "r", "verdict": 1}'] * 4))
    model = _output_models()["precision"]

    async def many() -> list[object]:
        return await asyncio.gather(*(judge.agenerate(f"q{i}", model) for i in range(4)))

    results = asyncio.run(many())
    assert [r.verdict for r in results] == [1, 1, 1, 1]  # type: ignore[attr-defined]
    assert peak[0] == 1 and judge.calls == 4


def test_judge_stops_at_its_deadline() -> None:
    judge = LlamaJudge(GenericFakeChatModel(messages=iter(['{"verdict": 1, "reason": "x"}'])))
    judge.deadline = time.monotonic() - 1
    with pytest.raises(JudgeTimeoutError, match="time budget"):
        judge.generate("q", _output_models()["precision"])


def _faithfulness_replies(statements: list[str], verdicts: list[int]) -> list[str]:
    nli = [
        {"statement": s, "reason": "r", "verdict": v}
        for s, v in zip(statements, verdicts, strict=True)
    ]
    return [json.dumps({"statements": statements}), json.dumps({"statements": nli})]


def test_scores_failures_and_means_never_hide_nan() -> None:
    judge = LlamaJudge(
        GenericFakeChatModel(
            messages=iter(
                [*_faithfulness_replies(["a", "b"], [1, 0]), json.dumps({"statements": []})]
            )
        )
    )
    samples = [
        QASample(
            id="ok",
            user_input="When?",
            reference="1889",
            response="In 1889.",
            retrieved_contexts=[EIFFEL],
        ),
        QASample(
            id="empty",
            user_input="Where?",
            reference="Paris",
            response="Paris.",
            retrieved_contexts=[EIFFEL],
        ),
        QASample(id="unanswered", user_input="Who?", reference="Eiffel"),
    ]
    result = evaluate_rag(samples, ["faithfulness"], judge=judge, timeout=30)
    assert result.mean == {"faithfulness": 0.5}
    reasons = {(f["id"], f["metric"]): f["reason"] for f in result.failed}
    assert "undefined (NaN)" in reasons["empty", "faithfulness"]
    assert "no response, retrieved_contexts" in reasons["unanswered", "faithfulness"]
    payload = result.to_json()
    assert payload["scored"] == {"faithfulness": 1}
    assert not any(isinstance(v, float) and math.isnan(v) for v in payload["mean"].values())


def test_a_slow_sample_is_reported_as_timed_out() -> None:
    class Slow(ScriptedChatModel):
        def _stream(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            for chunk in super()._stream(*args, **kwargs):  # type: ignore[arg-type]
                time.sleep(0.3)
                yield chunk

    judge = LlamaJudge(Slow(replies=['{"statements": ["one two three four"]}']))
    sample = QASample(
        id="s",
        user_input="q",
        reference="r",
        response="one two three four",
        retrieved_contexts=["c"],
    )
    result = evaluate_rag([sample], ["faithfulness"], judge=judge, timeout=0.5)
    assert result.mean == {"faithfulness": None}
    assert "time budget" in result.failed[0]["reason"]


def test_llm_metrics_without_a_judge_are_refused() -> None:
    sample = QASample(id="1", user_input="q", reference="r", response="a", retrieved_contexts=["c"])
    with pytest.raises(OptionError, match="need a judge"):
        evaluate_rag([sample], ["context_recall"])
    with pytest.raises(OptionError, match="did you mean 'faithfulness'"):
        evaluate_rag([sample], ["faithfullness"])


def _qa_file(tmp_path: Path, rows: list[object]) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"user_input": "q", "reference": "r"}, {"user_input": "q", "refrence": "r"}],
            r"qa\.jsonl:2 got an unknown option 'refrence'",
        ),
        ([{"user_input": "q"}], r"qa\.jsonl:1: 'reference' is missing"),
        (["{not json"], r"qa\.jsonl:1: not valid JSON"),
        (
            [{"user_input": "q", "reference": "r", "retrieved_contexts": "one"}],
            r"qa\.jsonl:1: 'retrieved_contexts' must be a list of strings",
        ),
        ([], r"qa\.jsonl: the question set is empty"),
    ],
)
def test_bad_question_sets_name_file_and_line(
    tmp_path: Path, rows: list[object], message: str
) -> None:
    with pytest.raises(DataError, match=message):
        load_qa(_qa_file(tmp_path, rows))


def test_answering_fills_response_and_contexts_and_builds_a_ragas_dataset(tmp_path: Path) -> None:
    samples = load_qa(
        _qa_file(
            tmp_path,
            [
                {"user_input": "When?", "reference": "1889"},
                {
                    "user_input": "Where?",
                    "reference": "Paris",
                    "response": "Paris",
                    "retrieved_contexts": ["x"],
                },
            ],
        )
    )
    chain = RunnableLambda(
        lambda q: {"answer": f"answer to {q['question']}", "sources": [{"n": 1, "text": EIFFEL}]}
    )
    answered = answer_samples(samples, chain)
    assert answered[0].response == "answer to When?" and answered[0].retrieved_contexts == [EIFFEL]
    assert answered[1].response == "Paris"  # given answers are kept
    dataset = to_evaluation_dataset(answered)
    assert len(dataset) == 2 and dataset[0].user_input == "When?"


def test_answered_samples_carry_the_strategy_trace_as_rag_json_prints_it() -> None:
    """``eval rag --json`` samples hold what ``orchestrator rag --json`` prints beside the
    answer (the strategy and its queries), so a low score can be traced to its queries."""
    trace = {"strategy": "multi_query", "queries": ["When?", "What year was it built?"]}
    chain = RunnableLambda(
        lambda q: {"answer": "In 1889.", "sources": [{"n": 1, "text": EIFFEL}], **trace}
    )
    samples = answer_samples([QASample(id="a", user_input="When?", reference="1889")], chain)
    row = evaluate_rag(samples, ["rouge"]).to_json()["samples"][0]
    assert {k: row[k] for k in trace} == trace and row["response"] == "In 1889."


def test_cli_rag_json_with_non_llm_metrics(tmp_path: Path) -> None:
    path = _qa_file(
        tmp_path,
        [
            {
                "id": "a",
                "user_input": "When?",
                "reference": "It was completed in 1889.",
                "response": "It was completed in 1889.",
                "retrieved_contexts": [EIFFEL],
                "reference_contexts": [EIFFEL],
            },
            {
                "id": "b",
                "user_input": "Where?",
                "reference": "In Paris.",
                "response": "Paris",
                "retrieved_contexts": [EIFFEL],
            },
        ],
    )
    metrics = "string_similarity,bleu,rouge,chrf,non_llm_context_precision"
    result = CliRunner().invoke(
        app, ["eval", "rag", "--dataset", str(path), "--metrics", metrics, "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload["mean"]) == set(metrics.split(","))
    assert payload["mean"]["string_similarity"] == pytest.approx((1.0 + 5 / 9) / 2, abs=0.2)
    assert payload["mean"]["non_llm_context_precision"] == pytest.approx(1.0, abs=1e-6)
    assert payload["failed"] == [
        {
            "id": "b",
            "metric": "non_llm_context_precision",
            "reason": "the sample has no reference_contexts",
        }
    ]
    assert [s["id"] for s in payload["samples"]] == ["a", "b"]
    assert set(NON_LLM_METRICS) >= set(payload["mean"])


@pytest.mark.integration
@pytest.mark.slow
def test_ragas_end_to_end_with_the_embedded_judge(no_network: None) -> None:
    from orchestrator.evals.judge import local_embeddings

    judge = LlamaJudge(max_tokens=192, max_items=2, max_chars=80)
    samples = [
        QASample(
            id="eiffel",
            user_input="When was the Eiffel Tower completed?",
            reference="The Eiffel Tower was completed in 1889.",
            response="It was completed in 1889.",
            retrieved_contexts=[EIFFEL],
        ),
        QASample(
            id="bm25",
            user_input="What does b control in BM25?",
            reference="b controls document length normalisation.",
            response="b controls how much scores are normalised by document length.",
            retrieved_contexts=[
                "In BM25 the parameter b, usually 0.75, controls length normalisation."
            ],
        ),
    ]
    metrics = ["faithfulness", "answer_relevancy", "context_precision", "context_recall"]
    result = evaluate_rag(samples, metrics, judge=judge, embeddings=local_embeddings(), timeout=240)
    failed = {(f["id"], f["metric"]) for f in result.failed}
    for row in result.samples:
        for metric in metrics:
            if (row["id"], metric) not in failed:
                assert 0.0 <= row["scores"][metric] <= 1.0
    assert all(f["reason"] for f in result.failed)
    scored = sum(len(r["scores"]) for r in result.samples)
    assert scored >= 6, result.failed  # constrained decoding: the judge's output parses
    assert judge.calls >= 8
    assert result.judge  # the judge model is named in the results


@pytest.mark.integration
def test_rag_suite_answers_with_the_real_model_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    """A suite over the shipped example documents: bm25 index, embedded model answering."""
    monkeypatch.setenv("ORCHESTRATOR_CACHE", str(tmp_path / "cache"))
    example_suite(
        tmp_path,
        2,
        "metrics: [non_llm_context_recall, rouge, string_similarity]\n"
        "configurations:\n  - {name: bm25, mode: bm25, k: 2, max_tokens: 24}\n",
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["eval", str(tmp_path / "suite.yaml"), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    config = saved["configurations"][0]
    assert config["settings"]["mode"] == "bm25" and config["failed"] == []
    first = config["samples"][0]
    assert first["response"] and len(first["retrieved_contexts"]) <= 2
    assert "1,400 abstracts" in " ".join(first["retrieved_contexts"])  # bm25 found the doc
    assert config["mean"]["non_llm_context_recall"] == pytest.approx(1.0)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2  # no precision-recall curve for RAG
    assert "mean little" in (out / "report.md").read_text()  # the judge caveat is stated
