"""Techniques that answer in one call: the plain question, and few-shot examples first."""

from __future__ import annotations

import difflib
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from pydantic import Field, model_validator

from orchestrator.chains.techniques.base import ModelCalls, Technique
from orchestrator.errors import OptionError
from orchestrator.models import capabilities
from orchestrator.prompts.few_shot import EXAMPLES, few_shot_chat_prompt, few_shot_prompt
from orchestrator.prompts.library import PLAIN
from orchestrator.prompts.templates import safe_values


class PlainAnswer(Technique):
    """The question alone, one call with the model's own settings: the baseline the other
    techniques are measured against."""

    technique = "plain"

    def run(
        self, question: str, calls: ModelCalls, config: RunnableConfig | None
    ) -> dict[str, Any]:
        return {"answer": calls.ask(PLAIN, {"question": question}, config)}


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

    def run(
        self, question: str, calls: ModelCalls, config: RunnableConfig | None
    ) -> dict[str, Any]:
        chat = self.chat_style()
        if chat:
            template = few_shot_chat_prompt(self.examples, k=self.k)
            messages = template.format_messages(**safe_values(self.llm, {"question": question}))
            reply = calls.send(messages, config)
        else:
            text = few_shot_prompt(self.examples, llm=self.llm, k=self.k).format(question=question)
            wrap = getattr(self.llm, "wrap_user_prompt", None)
            prompt = wrap(text) if callable(wrap) else text
            reply = calls.send(prompt, config, stop=["\nQuestion:"])
        return {"answer": reply.strip(), "style": "chat" if chat else "text"}

    def chat_style(self) -> bool:
        """Whether the examples go as chat turns (``auto``: for a chat model)."""
        if self.style != "auto":
            return self.style == "chat"
        return capabilities(self.llm).chat
