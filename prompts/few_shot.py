"""Few-shot prompts built from the prompt library's examples.

The examples are stored here, beside the library's prompts (:mod:`orchestrator.prompts.library`
holds the example prompt ``qa_example`` and the prefix and suffix), as plain
``{"question": ..., "answer": ...}`` dicts, so LangChain's own ``FewShotPromptTemplate`` and
``FewShotChatMessagePromptTemplate`` take them unchanged (``examples=get_examples("qa")``).

LangChain's ``FewShotPromptTemplate`` fills the user's values into its suffix as they are; a
question quoting ``<|im_start|>`` would then reach a completion model as a control token. It
also joins the formatted examples into one string and parses *that* as a template, so an
example answer holding JSON (``{"a": 1}``) is a ``KeyError`` and ``{{`` loses a brace.
:class:`FewShotPromptTemplate` here is that class with every value and every example value
defused first (the model's own control tokens added when one is given), as
:class:`~orchestrator.prompts.templates.PromptTemplate` does for single prompts, and with only
the prefix and the suffix parsed as templates: the examples are joined in as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.prompts import ChatPromptTemplate
from langchain_core.prompts import FewShotChatMessagePromptTemplate as _FewShotChat
from langchain_core.prompts import FewShotPromptTemplate as _LangChainFewShot
from pydantic import Field

from orchestrator.prompts.library import FEW_SHOT_PREFIX, FEW_SHOT_SUFFIX, QA_EXAMPLE
from orchestrator.prompts.templates import (
    PromptTemplate,
    defuse_values,
    fill_template,
    special_pattern_of,
)

#: Named example sets. ``qa`` mixes arithmetic and facts with short answers; none of them is a
#: question of ``benchmarks/data/techniques.jsonl``.
EXAMPLES: dict[str, list[dict[str, str]]] = {
    "qa": [
        {"question": "What is 3 + 4?", "answer": "7"},
        {"question": "What is the capital of Spain?", "answer": "Madrid"},
        {"question": "What is 6 times 7?", "answer": "42"},
        {"question": "Which planet is closest to the Sun?", "answer": "Mercury"},
        {"question": "What is 20 minus 8?", "answer": "12"},
        {"question": "What language is mainly spoken in Brazil?", "answer": "Portuguese"},
    ],
}


def get_examples(name: str = "qa") -> list[dict[str, str]]:
    """A copy of the named example set (callers may add to it)."""
    try:
        return [dict(example) for example in EXAMPLES[name]]
    except KeyError:
        raise KeyError(f"unknown example set {name!r}; choose one of {sorted(EXAMPLES)}") from None


class FewShotPromptTemplate(_LangChainFewShot):
    """langchain-core's ``FewShotPromptTemplate`` whose values and examples stay text.

    The prefix, the suffix and the example prompt are trusted templates; the values filled into
    them (the question, each example's fields) are not: they are defused, and the formatted
    examples are never parsed again. ``llm`` adds that model's own control tokens to the
    generic shapes.
    """

    llm: Any = Field(default=None, exclude=True)

    def format(self, **kwargs: Any) -> str:
        values = self._defused(kwargs)
        examples = self._get_examples(**values)
        shown = [self.example_prompt.format(**self._example_values(e)) for e in examples]
        return self._join(shown, values)

    async def aformat(self, **kwargs: Any) -> str:
        values = self._defused(kwargs)
        examples = await self._aget_examples(**values)
        shown = [await self.example_prompt.aformat(**self._example_values(e)) for e in examples]
        return self._join(shown, values)

    def _pattern(self) -> Any:
        return special_pattern_of(self.llm) if self.llm is not None else None

    def _defused(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        merged = self._merge_partial_and_user_variables(**kwargs)
        return defuse_values(merged, self._pattern(), stringify=True)

    def _example_values(self, example: Mapping[str, Any]) -> dict[str, Any]:
        wanted = {k: example[k] for k in self.example_prompt.input_variables}
        return defuse_values(wanted, self._pattern())

    def _join(self, examples: Sequence[str], values: dict[str, Any]) -> str:
        """Prefix and suffix filled as templates; the examples between them as text."""
        fill = self.template_format
        head = [fill_template(self.prefix, fill, values)] if self.prefix else []
        tail = [fill_template(self.suffix, fill, values)] if self.suffix else []
        return self.example_separator.join([*head, *(e for e in examples if e), *tail])


def few_shot_prompt(
    name: str = "qa", *, llm: Any = None, k: int | None = None
) -> FewShotPromptTemplate:
    """The library's few-shot prompt: prefix, the first ``k`` examples of set ``name`` (all when
    ``None``) as ``Question: ... / Answer: ...``, then the question (``{question}``)."""
    examples = get_examples(name)[:k]
    return FewShotPromptTemplate(
        examples=examples,
        example_prompt=PromptTemplate.from_template(QA_EXAMPLE),
        prefix=FEW_SHOT_PREFIX,
        suffix=FEW_SHOT_SUFFIX,
        input_variables=["question"],
        llm=llm,
    )


def few_shot_chat_prompt(name: str = "qa", *, k: int | None = None) -> ChatPromptTemplate:
    """The same examples as chat turns (a user question, the assistant's answer) before the
    question: LangChain's ``FewShotChatMessagePromptTemplate`` inside a ``ChatPromptTemplate``.
    Chat models defuse message content themselves; callers that fill values for another model
    pass them through :func:`~orchestrator.prompts.templates.safe_values` first."""
    turns = ChatPromptTemplate.from_messages([("human", "{question}"), ("ai", "{answer}")])
    examples = _FewShotChat(examples=get_examples(name)[:k], example_prompt=turns)
    return ChatPromptTemplate.from_messages(
        [("system", FEW_SHOT_PREFIX), examples, ("human", "{question}")]
    )
