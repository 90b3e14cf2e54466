"""The answer step: the final answer, written under a grammar, and how answers are compared.

The final answer of chain-of-thought, self-consistency and tree-of-thought is written under a
grammar (``Answer: `` and one bounded line, or a caller's regular expression), so it is short
and parseable even from a 135M model; :func:`normalize_answer` is what votes and scores compare.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.chains.techniques.base import ModelCalls
from orchestrator.errors import OptionError
from orchestrator.llama.gbnf import gbnf_literal
from orchestrator.llama.regex_gbnf import PatternError, pattern_to_gbnf
from orchestrator.prompts.library import COT_ANSWER

#: What the answer step's grammar makes the model write before the answer.
ANSWER_PREFIX = "Answer: "
_ANSWER_LABEL = re.compile(r"^\s*(?:final\s+)?answer\s*[:\-]\s*", re.IGNORECASE)
_ANSWER_IS = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is\b|:)\s*")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
#: Punctuation, except a decimal point between digits and a minus sign before a number.
_PUNCT = re.compile(r"[^\w\s.\-]|_|(?<!\d)\.|\.(?!\d)|-(?!\d)|(?<=\w)-")


def line_gbnf(max_chars: int) -> str:
    """A GBNF expression for one line: a non-blank first character, at most ``max_chars``."""
    return f"[^\\n \\t] [^\\n]{{0,{max_chars - 1}}}"


def answer_grammar(pattern: str | None, max_chars: int) -> str:
    """The grammar of the answer step: ``Answer: `` then one line of at most ``max_chars``
    characters, or (``pattern``) text the regular expression matches as a whole."""
    body = line_gbnf(max_chars)
    if pattern is not None:
        try:
            body = pattern_to_gbnf(pattern)
        except PatternError as exc:
            raise OptionError(
                f"answer_pattern {pattern!r} cannot be a grammar: {exc.construct}", fix=exc.fix
            ) from None
    return f"root ::= {gbnf_literal(ANSWER_PREFIX)} answer\nanswer ::= {body}"


def extract_answer(text: str) -> str:
    """The answer in a reply of the answer step: its first non-empty line without the
    ``Answer:`` label (a served model that ignored the grammar may add more lines)."""
    for line in text.strip().splitlines():
        if line.strip():
            return _ANSWER_LABEL.sub("", line.strip(), count=1).strip()
    return ""


def normalize_answer(text: str) -> str:
    """The form answers are compared in (votes, benchmark scores).

    SQuAD's normalisation (lower case, no punctuation, no articles, single spaces), without a
    leading ``the answer is`` / ``answer:``, plus what arithmetic answers need: only what
    follows the last ``=`` (``2 + 2 = 4`` -> ``4``), thousands separators dropped (``1,000``
    -> ``1000``), numbers in their shortest form (``4.0`` -> ``4``, ``3.50`` -> ``3.5``); the
    sign and decimal point of a number are kept.
    """
    value = unicodedata.normalize("NFKC", text).lower().strip()
    value = _ANSWER_IS.sub("", value, count=1)
    if "=" in value:
        value = value.rsplit("=", 1)[1]
    value = _THOUSANDS.sub("", value)
    value = _PUNCT.sub(" ", value)
    value = _NUMBER.sub(lambda m: format(Decimal(m.group(0)).normalize(), "f"), value)
    value = _ARTICLES.sub(" ", value)
    return " ".join(value.split())


class AnswerStep(BaseModel):
    """The grammar-constrained answer step, as the options of the techniques that end with it
    (chain-of-thought, self-consistency, tree-of-thought compose it as a mixin)."""

    model_config = ConfigDict(extra="forbid")

    answer_chars: int = Field(default=60, ge=1, le=400)
    """Longest answer the grammar admits (characters)."""
    answer_pattern: str | None = None
    """A regular expression the whole answer must match (e.g. ``-?[0-9]+``), as a grammar."""

    @model_validator(mode="after")
    def _check_pattern(self) -> AnswerStep:
        answer_grammar(self.answer_pattern, self.answer_chars)  # fails early, with the fix
        return self

    def answer(
        self,
        calls: ModelCalls,
        question: str,
        reasoning: str,
        config: RunnableConfig | None,
        **options: Any,
    ) -> str:
        """The final answer given ``reasoning``, under the answer grammar (where the model
        honours grammars; otherwise its first line is taken as written). Its token limit
        exceeds what the grammar admits (each token writes at least one character), so a
        local model is never cut off inside it."""
        reply = calls.ask(
            COT_ANSWER,
            {"question": question, "reasoning": reasoning or "(none)"},
            config,
            gbnf=answer_grammar(self.answer_pattern, self.answer_chars),
            max_tokens=self.answer_tokens(),
            **options,
        )
        return extract_answer(reply)

    def answer_tokens(self) -> int:
        """The answer step's token limit (see :meth:`answer`)."""
        if self.answer_pattern is not None:
            return 256
        return self.answer_chars + len(ANSWER_PREFIX) + 4
