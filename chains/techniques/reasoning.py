"""Reasoning before the answer: chain-of-thought, and self-consistency's vote over samples.

- :class:`ChainOfThought`: "Let's think step by step" (Kojima et al. 2022), then the answer
  alone under a grammar; returns ``reasoning`` and ``answer``.
- :class:`SelfConsistency`: N sampled chains of thought, majority vote on their normalised
  answers (Wang et al. 2023, "Self-Consistency Improves Chain of Thought Reasoning"); the
  samples are drawn together (:meth:`~orchestrator.chains.techniques.base.ModelCalls.together`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from langchain_core.runnables import RunnableConfig
from pydantic import Field

from orchestrator.chains.techniques.answer import AnswerStep, normalize_answer
from orchestrator.chains.techniques.base import ModelCalls, Technique
from orchestrator.prompts.library import COT

#: How :class:`SelfConsistency` breaks a tie between equally voted answers.
TIE_BREAK = "earliest sample: the tied answer whose first sample has the lowest seed wins"


def think(
    step: AnswerStep,
    calls: ModelCalls,
    question: str,
    config: RunnableConfig | None,
    reasoning_tokens: int | None,
    **options: Any,
) -> tuple[str, str]:
    """One chain of thought: (reasoning, answer); the reasoning is cut at ``reasoning_tokens``
    (``None``: the model's ``max_tokens``), ``options`` (``seed``, ``temperature``) go to both
    calls."""
    limit: dict[str, Any] = {} if reasoning_tokens is None else {"max_tokens": reasoning_tokens}
    reasoning = calls.ask(COT, {"question": question}, config, **limit, **options)
    return reasoning, step.answer(calls, question, reasoning, config, **options)


class ChainOfThought(Technique, AnswerStep):
    """Reasoning first, then the answer under a grammar, so the answer is one short line
    that a vote or a score can compare; returns ``reasoning`` and ``answer``."""

    technique = "cot"

    reasoning_tokens: int | None = Field(default=None, ge=1)
    """Token limit of the reasoning (``None``: the model's ``max_tokens``)."""

    def run(
        self, question: str, calls: ModelCalls, config: RunnableConfig | None
    ) -> dict[str, Any]:
        reasoning, answer = think(self, calls, question, config, self.reasoning_tokens)
        return {"reasoning": reasoning, "answer": answer}


class SelfConsistency(Technique, AnswerStep):
    """``samples`` chains of thought at ``temperature``, sample ``i`` with seed
    ``base_seed + i`` (the same call gives the same samples), and a plurality vote on the
    normalised answers (:func:`~orchestrator.chains.techniques.answer.normalize_answer`).

    Returns ``answer`` (the winner as its first sample wrote it), ``votes`` (normalised answer
    -> count, most votes first), ``samples`` (seed, reasoning, answer, normalised) and
    ``tie_break`` (:data:`TIE_BREAK`). An answer that normalises to nothing gets no vote; when
    no sample has a vote the answer is empty. The first ``k`` samples of a run are the samples
    a run with ``samples=k`` draws.
    """

    technique = "self-consistency"

    reasoning_tokens: int | None = Field(default=None, ge=1)
    """Token limit of each sample's reasoning (``None``: the model's ``max_tokens``)."""
    samples: int = Field(default=5, ge=1, le=64)
    base_seed: int = Field(default=0, ge=0)
    temperature: float = Field(default=0.7, gt=0.0)
    """Sampling temperature of every sample (greedy samples would all be the same)."""

    def run(
        self, question: str, calls: ModelCalls, config: RunnableConfig | None
    ) -> dict[str, Any]:
        """The samples are independent, so they are drawn together (each still reasons and
        then answers in turn, with its own seed): a batched engine decodes them in the same
        steps, and the results are those of drawing them one by one."""

        def draw(seed: int) -> dict[str, Any]:
            reasoning, answer = think(
                self,
                calls,
                question,
                config,
                self.reasoning_tokens,
                seed=seed,
                temperature=self.temperature,
            )
            normalized = normalize_answer(answer)
            return {
                "seed": seed,
                "reasoning": reasoning,
                "answer": answer,
                "normalized": normalized,
            }

        seeds = range(self.base_seed, self.base_seed + self.samples)
        drawn = calls.together(draw, seeds, config)
        return {**vote(drawn), "samples": drawn, "base_seed": self.base_seed}


def vote(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The plurality vote over ``samples`` (dicts with ``answer`` and ``normalized``, in seed
    order): ``answer``, ``normalized_answer``, ``votes`` and ``tie_break``. ``Counter`` keeps
    equal counts in first-seen order, which is the stated tie rule (:data:`TIE_BREAK`)."""
    counts = Counter(s["normalized"] for s in samples if s["normalized"])
    ranked = counts.most_common()
    if not ranked:
        return {"answer": "", "normalized_answer": "", "votes": {}, "tie_break": TIE_BREAK}
    winner = ranked[0][0]
    first = next(s for s in samples if s["normalized"] == winner)
    return {
        "answer": first["answer"],
        "normalized_answer": winner,
        "votes": dict(ranked),
        "tie_break": TIE_BREAK,
    }
