"""Summary memory: an LLM folds each new exchange into a running summary.

The summary is stored with the number of messages it covers, next to the messages themselves
(:meth:`memory.history.SessionHistory.save_summary`). Reopening a session therefore costs no
LLM call; if the process died between storing an exchange and summarizing it, only the
messages the summary does not yet cover are folded in.
"""

from __future__ import annotations

from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, SystemMessage, get_buffer_string
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable
from pydantic import PrivateAttr, model_validator

from orchestrator.errors import OptionError
from orchestrator.memory.base import ConversationMemory
from orchestrator.memory.history import SessionHistory, SummaryState
from orchestrator.prompts.library import SUMMARY
from orchestrator.prompts.templates import PromptTemplate, instruction_prompt, safe_values

_PROMPT_VARIABLES = {"summary", "new_lines"}


def default_summary_prompt(llm: Any) -> PromptTemplate:
    """The book's summary prompt for ``llm`` (a user turn for completion models; see
    :func:`~orchestrator.prompts.templates.instruction_prompt`)."""
    return instruction_prompt(llm, SUMMARY)


class ConversationSummaryMemory(ConversationMemory):
    """The model sees one running summary, rewritten by ``llm`` after every exchange.

    ``prompt`` takes ``{summary}`` (the current one) and ``{new_lines}`` (the new exchange).
    ``buffer`` may seed an initial summary.
    """

    extra_option_names = ("buffer",)

    llm: Any
    prompt: BasePromptTemplate | None = None
    buffer_seed: str = ""

    _state: SummaryState | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _accept_buffer(cls, data: Any) -> Any:
        if isinstance(data, dict) and "buffer" in data:  # LangChain's name for the seed
            data = {**data, "buffer_seed": data.pop("buffer")}
        return data

    @model_validator(mode="after")
    def _check_prompt(self) -> ConversationSummaryMemory:
        if self.prompt is None:
            self.prompt = default_summary_prompt(self.llm)
        found = set(self.prompt.input_variables)
        if found != _PROMPT_VARIABLES:
            raise OptionError(
                f"the summary prompt takes {sorted(found)}, not ['new_lines', 'summary']",
                fix="write a prompt with exactly {summary} and {new_lines}",
            )
        return self

    @classmethod
    def from_messages(
        cls, llm: Any, chat_memory: BaseChatMessageHistory, **kwargs: Any
    ) -> ConversationSummaryMemory:
        """A summary memory over an existing history, summarized now (LangChain's API)."""
        memory = cls(llm=llm, chat_memory=chat_memory, **kwargs)
        memory._catch_up()
        return memory

    @property
    def summary(self) -> str:
        """The running summary, brought up to date with every stored message."""
        return self._catch_up().text

    @property
    def buffer(self) -> str | list[BaseMessage]:
        return self.summary if not self.return_messages else self.context_messages()

    def context_messages(self) -> list[BaseMessage]:
        text = self.summary
        return [SystemMessage(content=text)] if text else []

    def load_memory_variables(self, inputs: Any = None) -> dict[str, Any]:
        if self.return_messages:
            return {self.memory_key: self.context_messages()}
        return {self.memory_key: self.summary}

    def save_context(self, inputs: Any, outputs: Any) -> None:
        super().save_context(inputs, outputs)
        self._catch_up()

    def clear(self) -> None:
        super().clear()
        self._state = None

    def predict_new_summary(self, messages: list[BaseMessage], existing_summary: str) -> str:
        """Fold ``messages`` into ``existing_summary`` with one LLM call.

        The conversation is user text: its values are defused whatever the prompt's class, so
        a message quoting ``<|im_start|>`` cannot open a turn in the summarizer's prompt."""
        chain, values = self._summary_call(messages, existing_summary)
        return str(chain.invoke(values)).strip()

    async def apredict_new_summary(self, messages: list[BaseMessage], existing_summary: str) -> str:
        """:meth:`predict_new_summary` through the model's async path (same prompt and values)."""
        chain, values = self._summary_call(messages, existing_summary)
        return str(await chain.ainvoke(values)).strip()

    def _summary_call(
        self, messages: list[BaseMessage], existing_summary: str
    ) -> tuple[Runnable[dict[str, Any], str], dict[str, Any]]:
        """The summarizer chain and its defused values (one place for sync and async)."""
        new_lines = get_buffer_string(messages, self.human_prefix, self.ai_prefix)
        assert self.prompt is not None
        chain = self.prompt | self.llm | StrOutputParser()
        return chain, safe_values(self.llm, {"summary": existing_summary, "new_lines": new_lines})

    def _catch_up(self) -> SummaryState:
        """Summarize stored messages the summary does not cover yet (after a crash, a restart
        or another process's turn); stores the result with the count it covers."""
        state = self._load_state()
        messages = self.chat_memory.messages
        if state.covered > len(messages):  # the history was cleared behind our back
            state = SummaryState(self.buffer_seed, 0)
        if state.covered < len(messages):
            text = self.predict_new_summary(messages[state.covered :], state.text)
            state = SummaryState(text, len(messages))
            self._store_state(state)
        self._state = state
        return state

    def _load_state(self) -> SummaryState:
        store: BaseChatMessageHistory = self.chat_memory
        stored = store.load_summary() if isinstance(store, SessionHistory) else self._state
        return stored if stored is not None else SummaryState(self.buffer_seed, 0)

    def _store_state(self, state: SummaryState) -> None:
        if isinstance(self.chat_memory, SessionHistory):
            self.chat_memory.save_summary(state.text, state.covered)
