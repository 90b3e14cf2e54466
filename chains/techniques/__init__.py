"""Prompting techniques as runnables (*Hands-On Large Language Models*, chapter 6).

Each technique is a small runnable (:class:`~orchestrator.chains.techniques.base.Technique`)
composed, where it ends with one, around the same grammar-constrained answer step
(:class:`~orchestrator.chains.techniques.answer.AnswerStep`):

- :class:`PlainAnswer`: the question as it is, one call (the baseline).
- :class:`FewShotAnswer`: the prompt library's examples before the question
  (:mod:`orchestrator.prompts.few_shot`; LangChain's few-shot templates).
- :class:`ChainOfThought`: "Let's think step by step" (Kojima et al. 2022), then the answer
  step; returns ``reasoning`` and ``answer``.
- :class:`SelfConsistency`: N sampled chains of thought, majority vote on their normalised
  answers (Wang et al. 2023).
- :class:`TreeOfThought`: proposed and rated thoughts, beam search (Yao et al. 2023), then the
  answer step.

:func:`prompt_technique` builds one by name (:data:`PROMPT_TECHNIQUES`). None of them is a
default anywhere: docs/benchmarks.md has what each one does with the embedded 135M model.
"""

from __future__ import annotations

import difflib
from typing import Any

from langchain_core.runnables import Runnable

from orchestrator.chains.techniques.answer import (
    ANSWER_PREFIX,
    AnswerStep,
    answer_grammar,
    extract_answer,
    normalize_answer,
)
from orchestrator.chains.techniques.base import ModelCalls, Technique, question_of, text_of
from orchestrator.chains.techniques.direct import FewShotAnswer, PlainAnswer
from orchestrator.chains.techniques.reasoning import (
    TIE_BREAK,
    ChainOfThought,
    SelfConsistency,
    think,
    vote,
)
from orchestrator.chains.techniques.tree import RATINGS, TreeOfThought
from orchestrator.errors import OptionError

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


__all__ = [
    "ANSWER_PREFIX",
    "PROMPT_TECHNIQUES",
    "RATINGS",
    "TIE_BREAK",
    "AnswerStep",
    "ChainOfThought",
    "FewShotAnswer",
    "ModelCalls",
    "PlainAnswer",
    "SelfConsistency",
    "Technique",
    "TreeOfThought",
    "answer_grammar",
    "extract_answer",
    "normalize_answer",
    "prompt_technique",
    "question_of",
    "technique_class",
    "text_of",
    "think",
    "vote",
]
