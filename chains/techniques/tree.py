"""Tree-of-thought prompting: proposed and rated thoughts, searched breadth-first with a beam.

Yao et al. 2023, "Tree of Thoughts: Deliberate Problem Solving with Large Language Models"
(NeurIPS 2023, arXiv:2305.10601). A *thought* is one intermediate step towards the answer;
the model *proposes* thoughts that extend a partial solution (sampled, one per call, seeds
``base_seed``, ``base_seed + 1``, ...) and *rates* each extended solution under a grammar,
either the paper's ``sure`` / ``likely`` / ``impossible`` value prompt (scored 20 / 1 / 0.001
as in the paper's code) or a number from 1 to 10. Breadth-first search keeps the ``breadth``
best solutions per level (the beam) for ``depth`` levels; the best one is then answered with the
same grammar-constrained answer step as chain-of-thought.

The proposals of one level are made together, and then their ratings (as many at a time as
the model decodes together: :meth:`~orchestrator.chains.techniques.base.ModelCalls.together`),
with the seeds and in the order one-by-one calls have.

Bounds: at most ``breadth * proposals`` proposals and as many ratings per level, ``depth``
levels, and ``time_limit`` seconds, checked before every proposal and rating starts (a call
already running finishes; it is bounded by its grammar's token limit). The answer step always
runs, so an answer comes back whatever stopped the search; ``stop_reason`` says what did:
``depth`` (every level searched) or ``time_limit``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from pydantic import Field

from orchestrator.chains.techniques.answer import AnswerStep, line_gbnf, normalize_answer
from orchestrator.chains.techniques.base import ModelCalls, Technique
from orchestrator.prompts.library import TOT_PROPOSE, TOT_RATE

#: The rating scales: the prompt's wording, the grammar, and the score of each rating.
RATINGS: dict[str, tuple[str, str, Callable[[str], float]]] = {
    "sure-likely-impossible": (
        "sure, likely or impossible",
        'root ::= "sure" | "likely" | "impossible"',
        lambda r: {"sure": 20.0, "likely": 1.0, "impossible": 0.001}[r],
    ),
    "1-10": (
        "a number from 1 (impossible) to 10 (sure)",
        'root ::= "10" | [1-9]',
        float,
    ),
}


class TreeOfThought(Technique, AnswerStep):
    """Beam search over model-proposed, model-rated thoughts (see the module docstring).

    Returns ``answer``, ``reasoning`` (the best path's thoughts, numbered), ``best_path``,
    ``thoughts`` (every proposal: ``level``, ``path`` before it, ``thought``, ``rating``,
    ``score``, ``kept`` in the beam), ``stop_reason`` and ``elapsed_s``.
    """

    technique = "tot"

    breadth: int = Field(default=2, ge=1, le=8)
    """Beam width: partial solutions kept per level."""
    proposals: int = Field(default=2, ge=1, le=8)
    """Thoughts proposed for each kept partial solution."""
    depth: int = Field(default=2, ge=1, le=8)
    """Levels of thoughts (steps in a path)."""
    time_limit: float = Field(default=60.0, gt=0.0)
    """Seconds the search may take before it stops with ``stop_reason="time_limit"``."""
    rating: Literal["sure-likely-impossible", "1-10"] = "sure-likely-impossible"
    temperature: float = Field(default=0.7, gt=0.0)
    """Sampling temperature of proposals (ratings and the answer are greedy)."""
    base_seed: int = Field(default=0, ge=0)
    thought_chars: int = Field(default=120, ge=8, le=400)
    """Longest thought the proposal grammar admits (characters)."""
    clock: Callable[[], float] = Field(default=time.monotonic, exclude=True)
    """Seconds from an arbitrary start (tests pass a fake one)."""

    def run(
        self, question: str, calls: ModelCalls, config: RunnableConfig | None
    ) -> dict[str, Any]:
        search = BeamSearch(self, question, config, calls)
        best, stop_reason = search.run()
        reasoning = _numbered(best)
        answer = self.answer(calls, question, reasoning, config, temperature=0.0)
        return {
            "answer": answer,
            "reasoning": reasoning,
            "best_path": list(best),
            "thoughts": search.thoughts,
            "stop_reason": stop_reason,
            "elapsed_s": round(self.clock() - search.started, 3),
        }


class BeamSearch:
    """One breadth-first search with a beam; ``thoughts`` records every proposal."""

    def __init__(
        self,
        tot: TreeOfThought,
        question: str,
        config: RunnableConfig | None,
        calls: ModelCalls,
    ) -> None:
        self.tot, self.question, self.config, self.calls = tot, question, config, calls
        self.thoughts: list[dict[str, Any]] = []
        self.started = tot.clock()
        self.next_seed = tot.base_seed
        self.cut = False

    def out_of_time(self) -> bool:
        """Whether the time limit is reached; if so the search is cut (a call is skipped)."""
        if self.tot.clock() - self.started >= self.tot.time_limit:
            self.cut = True
        return self.cut

    def run(self) -> tuple[tuple[str, ...], str]:
        """The best path found, and why the search stopped."""
        beam: list[tuple[str, ...]] = [()]
        for level in range(1, self.tot.depth + 1):
            candidates = self.expand(beam, level)
            rated = self.rate(candidates)
            if rated:
                rated.sort(key=lambda item: -item[1]["score"])  # stable: ties keep order
                kept = rated[: self.tot.breadth]
                for _, record in kept:
                    record["kept"] = True
                beam = [path for path, _ in kept]
            if self.cut:
                return beam[0], "time_limit"
        return beam[0], "depth"

    def expand(self, beam: list[tuple[str, ...]], level: int) -> list[tuple[str, ...]]:
        """Proposals for each path of the beam, all made together (seeds in path, then
        proposal order, as one by one); a thought repeating a sibling is dropped."""
        pairs = [(b, path) for b, path in enumerate(beam) for _ in range(self.tot.proposals)]
        jobs = [(b, path, self.next_seed + i) for i, (b, path) in enumerate(pairs)]
        thoughts = self.calls.together(self.propose, jobs, self.config, until=self.out_of_time)
        self.next_seed += len(thoughts)
        candidates: list[tuple[str, ...]] = []
        seen: dict[int, set[str]] = {}
        # ``thoughts`` is a prefix of ``jobs`` when time ran out
        for (b, path, _), thought in zip(jobs, thoughts, strict=False):
            key = normalize_answer(thought)
            if key in seen.setdefault(b, set()):
                continue
            seen[b].add(key)
            candidates.append((*path, thought))
            self.thoughts.append(
                {
                    "level": level,
                    "path": list(path),
                    "thought": thought,
                    "rating": None,
                    "score": None,
                    "kept": False,
                }
            )
        return candidates

    def propose(self, job: tuple[int, tuple[str, ...], int]) -> str:
        """One thought extending the path of ``job`` (beam index, path, seed)."""
        _, path, seed = job
        return self.calls.ask(
            TOT_PROPOSE,
            {"question": self.question, "steps": _numbered(path) or "(none yet)"},
            self.config,
            gbnf=f"root ::= {line_gbnf(self.tot.thought_chars)}",
            max_tokens=self.tot.thought_chars + 4,
            seed=seed,
            temperature=self.tot.temperature,
        )

    def rate_one(self, path: tuple[str, ...]) -> str:
        """The model's rating of ``path`` (greedy, under the scale's grammar)."""
        scale, grammar, _ = RATINGS[self.tot.rating]
        return self.calls.ask(
            TOT_RATE,
            {"question": self.question, "steps": _numbered(path), "scale": scale},
            self.config,
            gbnf=grammar,
            max_tokens=8,
            temperature=0.0,
        )

    def rate(
        self, candidates: list[tuple[str, ...]]
    ) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
        """``(path, record)`` for each candidate rated before time ran out (all rated
        together)."""
        score = RATINGS[self.tot.rating][2]
        records = self.thoughts[len(self.thoughts) - len(candidates) :]
        stop = self.out_of_time
        replies = self.calls.together(self.rate_one, candidates, self.config, until=stop)
        rated = []
        # ``replies`` is a prefix of ``candidates`` when time ran out
        for path, record, reply in zip(candidates, records, replies, strict=False):
            rating = reply.strip().lower()
            try:
                record["rating"], record["score"] = rating, score(rating)
            except (KeyError, ValueError):  # a served model that ignored the grammar
                record["rating"], record["score"] = rating, 0.0
            rated.append((path, record))
        return rated


def _numbered(path: tuple[str, ...] | list[str]) -> str:
    return "\n".join(f"{i}. {step}" for i, step in enumerate(path, 1))
