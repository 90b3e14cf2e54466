"""Buffer memories: the whole conversation, the last k exchanges, or what fits a token budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, get_buffer_string
from pydantic import PrivateAttr, model_validator

from orchestrator.errors import OptionError
from orchestrator.memory.base import ConversationMemory


class ConversationBufferMemory(ConversationMemory):
    """The whole conversation, every turn (grows until the context window is full)."""


class ConversationBufferWindowMemory(ConversationMemory):
    """Only the last ``k`` exchanges; older ones stay stored but the model no longer sees them."""

    k: int = 5

    @model_validator(mode="after")
    def _check_k(self) -> ConversationBufferWindowMemory:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise OptionError(
                f"k must be a whole number of exchanges, at least 1; got {self.k!r}",
                fix="pass k=1 or more (for no history at all, use no memory)",
            )
        return self

    def context_messages(self) -> list[BaseMessage]:
        return self.messages[-2 * self.k :]


class ConversationTokenBufferMemory(ConversationMemory):
    """As many recent messages as fit ``max_token_limit`` tokens of the model's own tokenizer.

    ``llm`` only counts tokens (``llm.get_num_tokens``); for llama.cpp models that is the GGUF's
    tokenizer, so the budget is what the model really spends.
    """

    llm: Any
    max_token_limit: int = 2000

    _counts: dict[tuple[str, str], int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> ConversationTokenBufferMemory:
        if not callable(getattr(self.llm, "get_num_tokens", None)):
            raise OptionError(
                f"llm={type(self.llm).__name__} cannot count tokens (no get_num_tokens)",
                fix="pass the model you chat with, e.g. ChatLlamaCpp() or LlamaCpp()",
            )
        if isinstance(self.max_token_limit, bool) or self.max_token_limit < 1:
            raise OptionError(
                f"max_token_limit must be at least 1; got {self.max_token_limit!r}",
                fix="pass the number of tokens the history may take, e.g. 1000",
            )
        return self

    def count(self, message: BaseMessage) -> int:
        """Tokens one message costs, rendered as in the string history (memoised)."""
        key = (message.type, str(message.content))
        if key not in self._counts:
            line = get_buffer_string([message], self.human_prefix, self.ai_prefix)
            self._counts[key] = int(self.llm.get_num_tokens(line))
        return self._counts[key]

    def context_messages(self) -> list[BaseMessage]:
        return keep_recent(self.messages, self.max_token_limit, self.count)


def keep_recent(
    messages: Sequence[BaseMessage], budget: int, count: Callable[[BaseMessage], int]
) -> list[BaseMessage]:
    """The longest run of most recent messages whose counts sum to at most ``budget``.

    A kept run never starts with an answer whose question was dropped.
    """
    kept: list[BaseMessage] = []
    used = 0
    for message in reversed(messages):
        cost = count(message)
        if used + cost > budget:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    while kept and isinstance(kept[0], AIMessage):
        kept.pop(0)
    return kept
