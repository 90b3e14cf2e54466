"""Evaluation makes its independent calls together: samples answered, and each sample's judge
prompts made, as many at a time as the model decodes together; per-sample budgets, failures
and order kept."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from evals_support import example_suite
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from orchestrator.evals.judge import LlamaJudge
from orchestrator.evals.qa import QASample
from orchestrator.evals.rag import evaluate_rag
from orchestrator.models import Capabilities
from orchestrator.testing import ScriptedChatModel


class RatingJudgeModel(ScriptedChatModel):
    """A fake judge model declaring ``parallel`` slots: it rates a response by its length
    (whatever order the calls come in), slowly for a response containing ``slow``, and
    counts the calls running at once."""

    parallel: int = 3
    running: int = 0
    most: int = 0

    def model_capabilities(self) -> Capabilities:
        return dataclasses.replace(super().model_capabilities(), parallel=self.parallel)

    def _stream(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Iterator[Any]:
        prompt = str(messages[-1].content)
        response = re.search(r"Response:\n(.*?)\n", prompt)
        text = response.group(1) if response else prompt
        with _LOCK:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)
            for _ in range(40 if "slow" in text else 1):
                time.sleep(0.05)
                yield ChatGenerationChunk(message=AIMessageChunk(content=""))
            rating = len(text.split()) % 5 + 1
            yield ChatGenerationChunk(message=AIMessageChunk(content=f'{{"rating": {rating}}}'))
        finally:
            with _LOCK:
                self.running -= 1


_LOCK = threading.Lock()


def _samples() -> list[QASample]:
    responses = ["Paris.", "It is in Paris, France.", "slow slow", "", "Rome is not it.", "Yes."]
    return [
        QASample(id=f"s{i}", user_input="Where is it?", reference="Paris", response=r or None)
        for i, r in enumerate(responses)
    ]


def test_metrics_are_judged_together_and_samples_keep_their_order_and_budgets() -> None:
    metrics = ["fluency", "perceived_utility"]
    runs = {}
    # (judge slots, samples at a time) -> the most judge calls running at once
    for slots, samples, most in [(1, 1, 1), (3, 1, 2), (3, 3, 3)]:
        model = RatingJudgeModel(parallel=slots)
        ticks: list[int] = []
        result = evaluate_rag(
            _samples(),
            metrics,
            judge=LlamaJudge(model),
            timeout=1.0,
            concurrency=samples,
            progress=ticks.append,
        )
        assert model.most == most and sum(ticks) == 6
        runs[slots, samples] = result.to_json()
    alone = runs[1, 1]
    for together in runs.values():
        assert [s["id"] for s in together["samples"]] == [f"s{i}" for i in range(6)]
        assert together["samples"] == alone["samples"] and together["mean"] == alone["mean"]
        assert together["failed"] == alone["failed"]
    reasons = {(f["id"], f["metric"]): f["reason"] for f in alone["failed"]}
    assert set(reasons) == {(s, m) for s in ("s2", "s3") for m in metrics}
    assert "time budget" in reasons["s2", "fluency"]  # its own budget, not its neighbours'
    assert "no response" in reasons["s3", "fluency"]
    assert alone["samples"][0]["scores"] == {"fluency": 0.25, "perceived_utility": 0.25}


@pytest.mark.integration
def test_a_rag_suite_answers_and_judges_together_as_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chat_llm: Any
) -> None:
    from orchestrator.evals.runner import run_suite
    from orchestrator.evals.suite import load_suite

    monkeypatch.setenv("ORCHESTRATOR_CACHE", str(tmp_path / "cache"))
    rows = example_suite(
        tmp_path,
        3,
        "metrics: [fluency, perceived_utility, rouge]\njudge: {max_tokens: 16}\n"
        "configurations:\n  - {name: bm25, mode: bm25, k: 1, max_tokens: 12}\n",
    )
    suite, base = load_suite(tmp_path / "suite.yaml")
    alone = run_suite(suite, base, None, progress=False, models={"n_parallel": 1})
    stats = chat_llm.engine.scheduler.stats  # the engine the suite's default models share
    stats["largest_batch"] = 0
    together = run_suite(suite, base, None, progress=False)
    assert stats["largest_batch"] > 1
    first, second = alone["configurations"][0], together["configurations"][0]
    assert [s["id"] for s in second["samples"]] == [r["id"] for r in rows[:3]]
    assert second["samples"] == first["samples"] and second["failed"] == first["failed"]
    assert all(
        s["scores"].keys() == {"fluency", "perceived_utility", "rouge"} for s in second["samples"]
    )
