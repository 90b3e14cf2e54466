"""Fluency and perceived utility of RAG answers, judged on a Likert scale; a perplexity baseline.

*Hands-On Large Language Models* (ch. 8) evaluates generative search answers on fluency and
perceived utility after Liu et al. 2023, "Evaluating Verifiability in Generative Search
Engines" (Findings of EMNLP 2023), where annotators rated agreement with "the response is
fluent and cohesive" and "the response is a helpful and informative answer to the query" on a
five-point Likert scale. Here the local judge gives that rating:

- ``fluency`` / ``perceived_utility``: the judge (``evals.judge.LlamaJudge`` or anything with
  ``generate(prompt, model)``) answers 1-5 under a grammar built from the enum ``1..5``, so
  only a valid rating can be decoded; it is normalised to [0, 1] as ``(rating - 1) / 4``.
  Citation markers are removed before fluency is rated: ``[2]`` is not a fluency fault.
- ``fluency_perplexity``: the non-LLM baseline for fluency, from the answer's perplexity under
  a local language model (the embedded GGUF unless ``model_path`` says otherwise), scaled
  by the vocabulary: ``1 - ln(perplexity) / ln(vocabulary size)``, clipped to [0, 1]. Text as
  likely as uniform noise scores 0, fully predictable text 1. It measures how ordinary the
  wording is to that model, not whether the answer is right.
- perceived utility has no non-LLM baseline: whether an answer helps with a question is a
  judgement; reference-overlap metrics (``rouge``, ``string_similarity``) measure something
  else and are offered beside it.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import Sequence
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.errors import DataError, ModelLoadError
from orchestrator.evals.citations import Score

LIKERT = (1, 2, 3, 4, 5)
_MARKERS = re.compile(r"\s*\[\d+\]")


class LikertRating(BaseModel):
    """The judge's rating; the enum becomes the decoding grammar."""

    rating: Literal[1, 2, 3, 4, 5] = Field(
        description="agreement: 1 strongly disagree, 3 neutral, 5 strongly agree"
    )


FLUENCY_PROMPT = (
    "Response:\n{response}\n\nStatement: the response is fluent and cohesive (well-formed "
    "sentences that read naturally and connect to each other).\n"
    "Rate your agreement from 1 (strongly disagree) to 5 (strongly agree). "
    'Answer {{"rating": N}}.'
)
UTILITY_PROMPT = (
    "Question: {question}\n\nResponse:\n{response}\n\nStatement: the response is a helpful "
    "and informative answer to the question.\n"
    "Rate your agreement from 1 (strongly disagree) to 5 (strongly agree). "
    'Answer {{"rating": N}}.'
)


def parse_likert(value: Any) -> int:
    """A rating 1..5 from an int or its text (``"4"``, ``" 4 "``); anything else is an error."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) not in LIKERT:
        raise DataError(
            f"the judge's rating {value!r} is not one of 1-5",
            fix="decode the rating under the Likert grammar (LikertRating)",
        )
    return int(text)


def normalise_likert(rating: int) -> float:
    """A 1-5 rating on [0, 1]: 1 -> 0.0, 3 -> 0.5, 5 -> 1.0."""
    return (parse_likert(rating) - 1) / (len(LIKERT) - 1)


def strip_citations(text: str) -> str:
    """``text`` without ``[n]`` markers (and the space before them)."""
    return _MARKERS.sub("", text).strip()


class RatingMetric:
    """``fluency`` or ``perceived_utility``: one judged Likert rating per answer, normalised."""

    def __init__(self, kind: Literal["fluency", "perceived_utility"], judge: Any) -> None:
        if judge is None:
            raise DataError(f"{kind} needs a judge", fix="pass judge=LlamaJudge(...)")
        self.kind = kind
        self.judge = judge

    def prompt(self, response: str, user_input: str | None) -> str:
        answer = strip_citations(response)
        if not answer:
            raise DataError("the answer is empty: nothing to rate", fix="score answers with text")
        if self.kind == "fluency":
            return FLUENCY_PROMPT.format(response=answer)
        return UTILITY_PROMPT.format(question=user_input or "", response=answer)

    def score(self, response: str, user_input: str | None = None) -> Score:
        verdict = self.judge.generate(self.prompt(response, user_input), LikertRating)
        rating = parse_likert(verdict.rating)
        return Score(normalise_likert(rating), {"rating": rating})

    async def ascore(self, response: str, user_input: str | None = None) -> Score:
        return await asyncio.to_thread(self.score, response, user_input)


def perplexity_fluency(logprobs: Sequence[float], vocab_size: int) -> float:
    """``1 - ln(perplexity) / ln(vocab_size)`` clipped to [0, 1], from the per-token
    log-probabilities (natural log) of a text."""
    if not logprobs:
        raise DataError("no token to score", fix="score an answer of at least two tokens")
    if vocab_size < 2:
        raise DataError(f"vocabulary size {vocab_size} is too small", fix="use a real model")
    log_perplexity = -math.fsum(logprobs) / len(logprobs)
    return min(max(1.0 - log_perplexity / math.log(vocab_size), 0.0), 1.0)


class PerplexityFluency:
    """The fluency baseline: perplexity of the answer under a local GGUF.

    llama.cpp keeps the logits of every position only with ``logits_all=True``, which the
    generation engine does not set (it costs vocabulary x context floats), so this loads its
    own small context on first use."""

    def __init__(self, model_path: str | None = None, n_ctx: int = 512) -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self._lock = threading.Lock()

    @cached_property
    def llama(self) -> Any:
        import llama_cpp

        from orchestrator.llama import cpu_repack
        from orchestrator.settings import resolve_model_path

        path = resolve_model_path(self.model_path)
        cpu_repack.apply()  # as every load: llama.cpp's AMX repack crashes a multi-token eval
        try:
            return llama_cpp.Llama(
                model_path=str(path), n_ctx=self.n_ctx, logits_all=True, verbose=False
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {path} for the perplexity baseline: {exc}",
                fix="pass a complete GGUF file, or leave fluency_perplexity out",
            ) from exc

    def logprobs(self, text: str) -> list[float]:
        """Natural-log probabilities of each token of ``text`` after the ones before it (the
        first token only conditions; ``text`` is cut to the context size)."""
        import numpy as np

        with self._lock:
            llama = self.llama
            tokens = llama.tokenize(text.encode("utf-8"), add_bos=True, special=False)
            tokens = tokens[: self.n_ctx]
            if len(tokens) < 2:
                raise DataError("the answer is too short to score", fix="score longer answers")
            llama.reset()
            llama.eval(tokens)
            logits = np.asarray(llama.scores[: len(tokens) - 1], dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        picked = logits[np.arange(len(tokens) - 1), tokens[1:]]
        return [float(v) for v in picked - log_z]

    def score(self, response: str) -> Score:
        answer = strip_citations(response)
        values = self.logprobs(answer)
        vocab = int(self.llama.n_vocab())
        return Score(perplexity_fluency(values, vocab), {"tokens": len(values) + 1})

    async def ascore(self, response: str) -> Score:
        return await asyncio.to_thread(self.score, response)


def build_quality_metric(name: str, judge: Any) -> RatingMetric | PerplexityFluency:
    """The metric named ``fluency``, ``perceived_utility`` or ``fluency_perplexity``."""
    if name == "fluency_perplexity":
        return PerplexityFluency()
    kind: Literal["fluency", "perceived_utility"] = (
        "fluency" if name == "fluency" else "perceived_utility"
    )
    return RatingMetric(kind, judge)
