"""Prompting techniques as runnables (*Hands-On Large Language Models*, chapter 6).

- :class:`PlainAnswer`: the question as it is, one call (the baseline).
- :class:`FewShotAnswer`: the prompt library's examples before the question
  (:mod:`orchestrator.prompts.few_shot`; LangChain's few-shot templates).
- :class:`ChainOfThought`: "Let's think step by step" (Kojima et al. 2022), then the answer
  alone under a grammar; returns ``reasoning`` and ``answer``.
- :class:`SelfConsistency`: N sampled chains of thought, majority vote on their normalised
  answers (Wang et al. 2023, "Self-Consistency Improves Chain of Thought Reasoning").
- :class:`~orchestrator.chains.techniques_tot.TreeOfThought`: proposed and rated thoughts,
  beam search (Yao et al. 2023).

:func:`prompt_technique` builds one by name (:data:`PROMPT_TECHNIQUES`). None of them is a
default anywhere: docs/benchmarks.md has what each one does with the embedded 135M model.
"""

from __future__ import annotations

import difflib
from collections import Counter
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import Field, model_validator

from orchestrator.chains.techniques_base import (
    AnswerStep,
    Technique,
    _Calls,
    normalize_answer,
    text_of,
)
from orchestrator.chains.techniques_tot import TreeOfThought
from orchestrator.errors import OptionError
from orchestrator.prompts.few_shot import EXAMPLES, few_shot_chat_prompt, few_shot_prompt
from orchestrator.prompts.library import COT, PLAIN
from orchestrator.prompts.templates import safe_values

#: How :class:`SelfConsistency` breaks a tie between equally voted answers.
TIE_BREAK = "earliest sample: the tied answer whose first sample has the lowest seed wins"


class PlainAnswer(Technique):
    """The question alone, one call with the model's own settings: the baseline the other
    techniques are measured against."""

    technique = "plain"

    def _run(self, question: str, config: RunnableConfig | None, calls: _Calls) -> dict[str, Any]:
        return {"answer": self.call(calls, PLAIN, {"question": question}, config)}


class FewShotAnswer(Technique):
    """Examples from the prompt library, then the question, one call.

    ``style="chat"`` gives each example as a user turn and an assistant turn (LangChain's
    ``FewShotChatMessagePromptTemplate``), ``"text"`` as ``Question: / Answer:`` lines in one
    prompt (``FewShotPromptTemplate``, stopped before the model writes another question);
    ``"auto"``: chat for chat models, text for completion models.
    """

    technique = "few-shot"

    examples: str = "qa"
    """Name of an example set in :data:`orchestrator.prompts.few_shot.EXAMPLES`."""
    k: int | None = Field(default=None, ge=1)
    """Use only the first ``k`` examples (``None``: all)."""
    style: Literal["auto", "chat", "text"] = "auto"

    @model_validator(mode="after")
    def _known_set(self) -> FewShotAnswer:
        if self.examples not in EXAMPLES:
            close = difflib.get_close_matches(self.examples, list(EXAMPLES), n=1)
            raise OptionError(
                f"FewShotAnswer got an unknown example set {self.examples!r}",
                fix=f"did you mean {close[0]!r}?" if close else f"choose one of {sorted(EXAMPLES)}",
            )
        return self

    def _run(self, question: str, config: RunnableConfig | None, calls: _Calls) -> dict[str, Any]:
        calls.count += 1
        if self._chat_style():
            chat = few_shot_chat_prompt(self.examples, k=self.k)
            messages = chat.format_messages(**safe_values(self.llm, {"question": question}))
            reply = text_of(self.llm.invoke(messages, config))
        else:
            text = few_shot_prompt(self.examples, llm=self.llm, k=self.k).format(question=question)
            wrap = getattr(self.llm, "wrap_user_prompt", None)
            prompt = wrap(text) if callable(wrap) else text
            reply = text_of(self.llm.invoke(prompt, config, stop=["\nQuestion:"]))
        return {"answer": reply.strip(), "style": "chat" if self._chat_style() else "text"}

    def _chat_style(self) -> bool:
        if self.style != "auto":
            return self.style == "chat"
        inner: Any = self.llm
        while hasattr(inner, "bound"):
            inner = inner.bound
        return isinstance(inner, BaseChatModel)


class ChainOfThought(AnswerStep):
    """Reasoning first, then the answer under a grammar, so the answer is one short line
    that a vote or a score can compare; returns ``reasoning`` and ``answer``."""

    technique = "cot"

    reasoning_tokens: int | None = Field(default=None, ge=1)
    """Token limit of the reasoning (``None``: the model's ``max_tokens``)."""

    def _run(self, question: str, config: RunnableConfig | None, calls: _Calls) -> dict[str, Any]:
        reasoning, answer = self.sample(question, config, calls)
        return {"reasoning": reasoning, "answer": answer}

    def sample(
        self, question: str, config: RunnableConfig | None, calls: _Calls, **options: Any
    ) -> tuple[str, str]:
        """One chain of thought: (reasoning, answer); ``options`` (``seed``, ``temperature``)
        go to both calls."""
        limit = {} if self.reasoning_tokens is None else {"max_tokens": self.reasoning_tokens}
        reasoning = self.call(calls, COT, {"question": question}, config, **limit, **options)
        return reasoning, self.answer(calls, question, reasoning, config, **options)


class SelfConsistency(ChainOfThought):
    """``samples`` chains of thought at ``temperature``, sample ``i`` with seed
    ``base_seed + i`` (the same call gives the same samples), and a plurality vote on the
    normalised answers (:func:`~orchestrator.chains.techniques_base.normalize_answer`).

    Returns ``answer`` (the winner as its first sample wrote it), ``votes`` (normalised answer
    -> count, most votes first), ``samples`` (seed, reasoning, answer, normalised) and
    ``tie_break`` (:data:`TIE_BREAK`). An answer that normalises to nothing gets no vote; when
    no sample has a vote the answer is empty. The first ``k`` samples of a run are the samples
    a run with ``samples=k`` draws.
    """

    technique = "self-consistency"

    samples: int = Field(default=5, ge=1, le=64)
    base_seed: int = Field(default=0, ge=0)
    temperature: float = Field(default=0.7, gt=0.0)
    """Sampling temperature of every sample (greedy samples would all be the same)."""

    def _run(self, question: str, config: RunnableConfig | None, calls: _Calls) -> dict[str, Any]:
        drawn = []
        for i in range(self.samples):
            seed = self.base_seed + i
            reasoning, answer = self.sample(
                question, config, calls, seed=seed, temperature=self.temperature
            )
            drawn.append(
                {
                    "seed": seed,
                    "reasoning": reasoning,
                    "answer": answer,
                    "normalized": normalize_answer(answer),
                }
            )
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


#: Technique name -> runnable class (the CLI's ``--technique`` values).
PROMPT_TECHNIQUES: dict[str, type[Technique]] = {
    "plain": PlainAnswer,
    "few-shot": FewShotAnswer,
    "cot": ChainOfThought,
    "self-consistency": SelfConsistency,
    "tot": TreeOfThought,
}


def technique_class(name: str) -> type[Technique]:
    """The class of technique ``name`` (``_`` and ``-`` alike, any case); an unknown name is
    an :class:`OptionError` with a "did you mean"."""
    key = name.strip().lower().replace("_", "-")
    cls = PROMPT_TECHNIQUES.get(key)
    if cls is None:
        close = difflib.get_close_matches(key, list(PROMPT_TECHNIQUES), n=1)
        raise OptionError(
            f"unknown prompting technique {name!r}",
            fix=f"did you mean {close[0]!r}?"
            if close
            else f"choose one of {', '.join(PROMPT_TECHNIQUES)}",
        )
    return cls


def prompt_technique(name: str, llm: Runnable[Any, Any], **options: Any) -> Technique:
    """The technique ``name`` over ``llm`` with its options; an unknown name or option is an
    :class:`OptionError` with a "did you mean"."""
    return technique_class(name)(llm=llm, **options)
