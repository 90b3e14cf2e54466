"""What the prompting techniques share: the runnable base, one model call, the answer step.

Every technique is a runnable taking a question (a string or ``{"question": ...}``) and
returning a dict with at least ``question``, ``technique``, ``answer`` and ``model_calls``.
Options are closed (an unknown keyword is an :class:`~orchestrator.errors.OptionError` with a
"did you mean"), as everywhere in Orchestrator.

Prompts come from the prompt library and are filled through
:func:`~orchestrator.prompts.templates.instruction_prompt`, so the question (and any text the
model wrote that is fed back, such as reasoning) is defused for the model: it can never become
a control token, and a completion model gets it as one user turn.

The final answer of chain-of-thought, self-consistency and tree-of-thought is written under a
grammar (``Answer: `` and one bounded line, or a caller's regular expression), so it is short
and parseable even from a 135M model; :func:`normalize_answer` is what votes and scores compare.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, Field, model_validator

from orchestrator.chains.llm_chain import reject_call_options
from orchestrator.errors import OptionError, reject_unknown_options
from orchestrator.llama.regex_gbnf import PatternError, pattern_to_gbnf
from orchestrator.prompts.library import COT_ANSWER
from orchestrator.prompts.templates import instruction_prompt

#: What the answer step's grammar makes the model write before the answer.
ANSWER_PREFIX = "Answer: "
_ANSWER_LABEL = re.compile(r"^\s*(?:final\s+)?answer\s*[:\-]\s*", re.IGNORECASE)
_ANSWER_IS = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is\b|:)\s*")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
#: Punctuation, except a decimal point between digits and a minus sign before a number.
_PUNCT = re.compile(r"[^\w\s.\-]|_|(?<!\d)\.|\.(?!\d)|-(?!\d)|(?<=\w)-")


def text_of(output: Any) -> str:
    """The text of a model's output: a chat message's content or a completion string."""
    if isinstance(output, BaseMessage):
        return output.content if isinstance(output.content, str) else str(output.content)
    return str(output)


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
    return f"root ::= {_gbnf_string(ANSWER_PREFIX)} answer\nanswer ::= {body}"


def _gbnf_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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


def question_of(input: Any, where: str) -> str:
    """The question in a technique's input: the string itself or its ``question`` key."""
    if isinstance(input, str):
        question = input
    elif isinstance(input, Mapping) and isinstance(input.get("question"), str):
        question = input["question"]
    else:
        got = sorted(input) if isinstance(input, Mapping) else type(input).__name__
        raise OptionError(
            f"{where} needs a question, got {got}",
            fix='pass the question as a string or as {"question": "..."}',
        )
    if not question.strip():
        raise OptionError(f"{where} got an empty question", fix="ask something")
    return question


class Technique(RunnableSerializable[Any, dict[str, Any]]):
    """The base of the technique runnables: the model, closed options, the call helper."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    #: The technique's name in :data:`~orchestrator.chains.techniques.PROMPT_TECHNIQUES`.
    technique: ClassVar[str] = ""

    llm: Runnable[Any, Any]

    @model_validator(mode="before")
    @classmethod
    def _closed(cls, data: Any) -> Any:
        reject_unknown_options(data, cls)
        return data

    def invoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        reject_call_options(kwargs, f"{type(self).__name__}.invoke")
        question = question_of(input, type(self).__name__)
        counter = _Calls()
        result = self._run(question, config, counter)
        return {
            "question": question,
            "technique": self.technique,
            **result,
            "model_calls": counter.count,
        }

    def _run(self, question: str, config: RunnableConfig | None, calls: _Calls) -> dict[str, Any]:
        raise NotImplementedError

    def call(
        self,
        calls: _Calls,
        template: str,
        values: Mapping[str, Any],
        config: RunnableConfig | None,
        **options: Any,
    ) -> str:
        """One model call: the library ``template`` with ``values`` defused, as a user turn;
        ``options`` (``grammar``, ``seed``, ``max_tokens``, ``stop``, ...) go to the model."""
        prompt = instruction_prompt(self.llm, template).format(**values)
        calls.count += 1
        return text_of(self.llm.invoke(prompt, config, **options)).strip()


class _Calls:
    """Model calls made by one invocation (returned as ``model_calls``)."""

    def __init__(self) -> None:
        self.count = 0


class AnswerStep(Technique):
    """A technique ending with the grammar-constrained answer step."""

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
        calls: _Calls,
        question: str,
        reasoning: str,
        config: RunnableConfig | None,
        **options: Any,
    ) -> str:
        """The final answer given ``reasoning``, under the answer grammar. Its token limit
        exceeds what the grammar admits (each token writes at least one character), so a
        local model is never cut off inside it."""
        reply = self.call(
            calls,
            COT_ANSWER,
            {"question": question, "reasoning": reasoning or "(none)"},
            config,
            grammar=answer_grammar(self.answer_pattern, self.answer_chars),
            max_tokens=self.answer_tokens(),
            **options,
        )
        return extract_answer(reply)

    def answer_tokens(self) -> int:
        """The answer step's token limit (see :meth:`answer`)."""
        if self.answer_pattern is not None:
            return 256
        return self.answer_chars + len(ANSWER_PREFIX) + 4
