"""RAG evaluation from synchronous code, from inside a running event loop, and awaited."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from orchestrator.errors import OptionError
from orchestrator.evals.judge import LlamaJudge
from orchestrator.evals.qa import QASample
from orchestrator.evals.rag import aevaluate_rag, evaluate_rag

EIFFEL = "The Eiffel Tower is in Paris. It was completed in 1889."
SAMPLES = [
    QASample(
        id="same",
        user_input="When?",
        reference="It was completed in 1889.",
        response="It was completed in 1889.",
        retrieved_contexts=[EIFFEL],
    ),
    QASample(
        id="other",
        user_input="Where?",
        reference="In Paris.",
        response="Somewhere else entirely.",
        retrieved_contexts=[EIFFEL],
    ),
]
METRICS = ["bleu", "string_similarity"]


def _judge() -> object:
    """Faithfulness of one sample: two statements, one supported (score 0.5)."""
    statements = ["It was completed.", "It was in 1889."]
    verdicts = zip(statements, (1, 0), strict=True)
    nli = [{"statement": s, "reason": "r", "verdict": v} for s, v in verdicts]
    replies = [json.dumps({"statements": statements}), json.dumps({"statements": nli})]
    return LlamaJudge(GenericFakeChatModel(messages=iter(replies)))


def test_sync_call_outside_a_loop() -> None:
    result = evaluate_rag(SAMPLES, METRICS)
    assert result.samples[0]["scores"]["bleu"] == pytest.approx(1.0)
    assert result.samples[1]["scores"]["bleu"] < 0.5
    assert result.failed == []


def test_sync_call_inside_a_running_loop_matches_the_plain_call() -> None:
    """What a notebook cell or an async app does; ``asyncio.run`` inside would raise."""
    expected = evaluate_rag(SAMPLES, METRICS).to_json()
    ticks: list[int] = []

    async def app() -> dict[str, object]:
        loop_thread = threading.get_ident()
        result = evaluate_rag(SAMPLES, METRICS, progress=ticks.append)
        assert threading.get_ident() == loop_thread  # the caller is back on its loop
        return result.to_json()

    got = asyncio.run(app())
    assert got["samples"] == expected["samples"] and got["mean"] == expected["mean"]
    assert ticks == [1, 1]


def test_sync_call_with_a_judge_inside_a_running_loop() -> None:
    sample = SAMPLES[0]

    async def app() -> dict[str, object]:
        return evaluate_rag([sample], ["faithfulness"], judge=_judge(), timeout=30).to_json()

    got = asyncio.run(app())
    assert got["mean"] == {"faithfulness": 0.5} and got["failed"] == []


def test_errors_still_reach_a_caller_inside_a_loop() -> None:
    async def app() -> None:
        evaluate_rag(SAMPLES, ["faithfulness"])  # no judge

    with pytest.raises(OptionError, match="need a judge"):
        asyncio.run(app())


async def test_awaited_in_an_async_test() -> None:
    result = await aevaluate_rag([SAMPLES[0]], ["faithfulness", "bleu"], judge=_judge())
    assert result.mean == {"faithfulness": 0.5, "bleu": pytest.approx(1.0)}
    assert result.judge == "GenericFakeChatModel"
