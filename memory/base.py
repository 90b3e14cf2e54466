"""The shared machinery of the conversation memories: options, storage, rendering.

A memory reads a conversation from a message history (``chat_memory``) and renders what the
model should see next: a string (``Human: ...\\nAI: ...``) for string prompts, or messages
(``return_messages=True``) for chat prompts. Storage and view are separate on purpose: a window
or token memory shows the model only recent turns but never deletes stored ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, get_buffer_string
from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.errors import OptionError, reject_unknown_options
from orchestrator.memory.history import InProcessHistory, SessionHistory
from orchestrator.messages import as_text


class ConversationMemory(BaseModel):
    """Base class: stores every exchange, shows the model :meth:`context_messages`.

    Options have LangChain's names and defaults; unknown ones are errors with a suggestion.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, validate_assignment=False)

    chat_memory: BaseChatMessageHistory = Field(default_factory=InProcessHistory)
    """Where messages are stored (in-process by default; see :class:`memory.SQLiteStore`)."""
    memory_key: str = "history"
    """The prompt variable the history is rendered into."""
    input_key: str | None = None
    """Which input is the user's message; ``None``: the only input the memory does not fill."""
    output_key: str | None = None
    """Which output is the answer; ``None``: the only output (or ``output``)."""
    human_prefix: str = "Human"
    ai_prefix: str = "AI"
    return_messages: bool = False
    """Render as a list of messages (for chat prompts) instead of one string."""

    #: Accepted keyword names that are not fields (LangChain spellings mapped by a subclass).
    extra_option_names: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown(cls, data: Any) -> Any:
        reject_unknown_options(data, cls, extra=cls.extra_option_names)
        return data

    @property
    def memory_variables(self) -> list[str]:
        """The prompt variables this memory fills."""
        return [self.memory_key]

    @property
    def messages(self) -> list[BaseMessage]:
        """Every stored message of the conversation."""
        return list(self.chat_memory.messages)

    def context_messages(self) -> list[BaseMessage]:
        """What the model sees of the conversation next turn (the whole of it, here)."""
        return self.messages

    def render(self, messages: list[BaseMessage]) -> str | list[BaseMessage]:
        """Messages as ``return_messages`` asks: the list, or ``Human: ...\\nAI: ...`` text."""
        if self.return_messages:
            return list(messages)
        return get_buffer_string(messages, human_prefix=self.human_prefix, ai_prefix=self.ai_prefix)

    @property
    def buffer(self) -> str | list[BaseMessage]:
        """The rendered history, as LangChain's ``memory.buffer``."""
        return self.render(self.context_messages())

    @property
    def buffer_as_str(self) -> str:
        return get_buffer_string(
            self.context_messages(), human_prefix=self.human_prefix, ai_prefix=self.ai_prefix
        )

    @property
    def buffer_as_messages(self) -> list[BaseMessage]:
        return self.context_messages()

    def load_memory_variables(self, inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``{memory_key: history}`` for the next prompt."""
        return {self.memory_key: self.render(self.context_messages())}

    def save_context(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        """Store the user's message and the answer as one exchange."""
        human = HumanMessage(content=as_text(inputs[self._input_key(inputs)]))
        ai = AIMessage(content=as_text(outputs[self._output_key(outputs)]))
        store = self.chat_memory
        if isinstance(store, SessionHistory):
            store.add_exchange(human, ai)
        else:
            store.add_messages([human, ai])

    def clear(self) -> None:
        """Forget the conversation (and delete it from the store)."""
        self.chat_memory.clear()

    def _input_key(self, inputs: Mapping[str, Any]) -> str:
        if self.input_key is not None:
            if self.input_key not in inputs:
                raise OptionError(
                    f"input_key {self.input_key!r} is not among the inputs {sorted(inputs)}",
                    fix="pass that input or set input_key to the user's message",
                )
            return self.input_key
        candidates = [k for k in inputs if k not in self.memory_variables and k != "stop"]
        if len(candidates) != 1:
            raise OptionError(
                f"{type(self).__name__} cannot tell which input is the user's message "
                f"among {candidates}",
                fix="pass input_key=... when creating the memory",
            )
        return candidates[0]

    def _output_key(self, outputs: Mapping[str, Any]) -> str:
        if self.output_key is not None:
            if self.output_key not in outputs:
                raise OptionError(
                    f"output_key {self.output_key!r} is not among the outputs {sorted(outputs)}",
                    fix="set output_key to the chain's output key",
                )
            return self.output_key
        if len(outputs) == 1:
            return next(iter(outputs))
        if "output" in outputs:
            return "output"
        raise OptionError(
            f"{type(self).__name__} cannot tell which output is the answer among {sorted(outputs)}",
            fix="pass output_key=... when creating the memory",
        )
