"""Few-shot prompts built from the prompt library's examples.

The examples are stored here, beside the library's prompts (:mod:`orchestrator.prompts.library`
holds the example prompt ``qa_example`` and the prefix and suffix), as plain
``{"question": ..., "answer": ...}`` dicts, so LangChain's own ``FewShotPromptTemplate`` and
``FewShotChatMessagePromptTemplate`` take them unchanged (``examples=get_examples("qa")``).

LangChain's ``FewShotPromptTemplate`` fills the user's values into its suffix as they are; a
question quoting ``<|im_start|>`` would then reach a completion model as a control token.
:class:`FewShotPromptTemplate` here is that class with every value defused first (the model's
own control tokens added when one is given), as :class:`~orchestrator.prompts.templates.
PromptTemplate` does for single prompts.
"""

from __future__ import annotations

from typing import Any

from langchain_core.prompts import ChatPromptTemplate
from langchain_core.prompts import FewShotChatMessagePromptTemplate as _FewShotChat
from langchain_core.prompts import FewShotPromptTemplate as _LangChainFewShot
from pydantic import Field

from orchestrator.prompts.library import FEW_SHOT_PREFIX, FEW_SHOT_SUFFIX, QA_EXAMPLE
from orchestrator.prompts.templates import PromptTemplate, defuse_values, special_pattern_of

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
    """langchain-core's ``FewShotPromptTemplate`` whose user values are defused.

    The prefix, the examples and the suffix are trusted text; the values filled into the suffix
    (the question) are not. ``llm`` adds that model's own control tokens to the generic shapes.
    """

    llm: Any = Field(default=None, exclude=True)

    def format(self, **kwargs: Any) -> str:
        return super().format(**self._defused(kwargs))

    async def aformat(self, **kwargs: Any) -> str:
        return await super().aformat(**self._defused(kwargs))

    def _defused(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        merged = self._merge_partial_and_user_variables(**kwargs)
        pattern = special_pattern_of(self.llm) if self.llm is not None else None
        return defuse_values(merged, pattern, stringify=True)


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
