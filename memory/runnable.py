"""``RunnableWithMemory``: any Runnable, made to read and write a conversation memory.

This is the modern route the book's ``LLMChain(memory=...)`` maps to (LangChain's
``RunnableWithMessageHistory``), with one difference: it goes through a *memory*, so a window,
token or summary memory decides what the runnable sees, not just the raw history.

    chain = ChatPromptTemplate.from_messages(
        [MessagesPlaceholder("history"), ("human", "{input}")]
    ) | llm
    talk = RunnableWithMemory(
        chain, get_memory=lambda sid: ConversationBufferWindowMemory(
            k=3, return_messages=True, chat_memory=store.history(sid)))
    talk.invoke("Hi, I am Ada", config={"configurable": {"session_id": "ada"}})

An exchange is stored only when the answer is complete: a stream the caller abandons
(Ctrl-C, ``break``) leaves the memory as it was. ``stream`` and ``astream`` (``invoke`` and
``ainvoke``) share one core, so sync and async callers see the same chunks and store the same
history.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, model_validator

from orchestrator.errors import OptionError
from orchestrator.memory.base import ConversationMemory
from orchestrator.prompts.templates import model_in, safe_values

_ANSWER_KEYS = ("output", "text", "answer")
_STREAMED: Any = object()


class RunnableWithMemory(RunnableSerializable[Any, Any]):
    """Wrap ``runnable`` so every call loads history from a memory and saves the exchange.

    Give either ``memory`` (one conversation) or ``get_memory`` (a memory per session id, read
    from ``config["configurable"]["session_id"]``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    runnable: Runnable[Any, Any]
    memory: ConversationMemory | None = None
    get_memory: Callable[[str], ConversationMemory] | None = None
    input_key: str = "input"
    """The input holding the user's message (a plain string input is put under it)."""
    output_key: str | None = None
    """For runnables returning a dict: the key holding the answer."""

    @model_validator(mode="after")
    def _one_source(self) -> RunnableWithMemory:
        if (self.memory is None) == (self.get_memory is None):
            raise OptionError(
                "RunnableWithMemory needs exactly one of memory= or get_memory=",
                fix="pass memory=ConversationBufferMemory(...) or get_memory=lambda sid: ...",
            )
        return self

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        turn = self._begin(input, config)
        output = self.runnable.invoke(turn.values, config, **kwargs)
        turn.finish(output)
        return output

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        turn = await asyncio.to_thread(self._begin, input, config)
        output = await self.runnable.ainvoke(turn.values, config, **kwargs)
        await asyncio.to_thread(turn.finish, output)
        return output

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        """Stream the runnable's chunks; the exchange is saved once the stream is complete."""
        turn = self._begin(input, config)
        chunks = self.runnable.stream(turn.values, config, **kwargs)
        try:
            for chunk in chunks:
                yield turn.add(chunk)
        finally:
            close = getattr(chunks, "close", None)
            if callable(close):
                close()
        turn.finish()

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """:meth:`stream` for async callers: the same turn (load, merge chunks, save when
        complete, nothing saved when abandoned), around the runnable's own ``astream``. The
        memory's blocking work (SQLite, a summary's LLM call) runs in a worker thread."""
        turn = await asyncio.to_thread(self._begin, input, config)
        chunks = self.runnable.astream(turn.values, config, **kwargs)
        try:
            async for chunk in chunks:
                yield turn.add(chunk)
        finally:
            aclose = getattr(chunks, "aclose", None)
            if callable(aclose):
                await aclose()
        await asyncio.to_thread(turn.finish)

    def _begin(self, input: Any, config: RunnableConfig | None) -> _Turn:
        """The one core of every call: which memory, the inputs with its history loaded."""
        memory = self._memory(config)
        return _Turn(self, memory, self._inputs(input, memory))

    def _memory(self, config: RunnableConfig | None) -> ConversationMemory:
        if self.memory is not None:
            return self.memory
        session = ((config or {}).get("configurable") or {}).get("session_id")
        if not session:
            raise OptionError(
                "RunnableWithMemory(get_memory=...) needs a session id",
                fix="call with config={'configurable': {'session_id': 'NAME'}}",
            )
        assert self.get_memory is not None
        return self.get_memory(str(session))

    def _inputs(self, input: Any, memory: ConversationMemory) -> dict[str, Any]:
        inputs = dict(input) if isinstance(input, Mapping) else {self.input_key: input}
        if self.input_key not in inputs:
            raise OptionError(
                f"RunnableWithMemory expects the user's message under {self.input_key!r}; "
                f"got {sorted(inputs)}",
                fix="pass input_key= naming the input that holds the message",
            )
        inputs.update(memory.load_memory_variables(inputs))
        return inputs

    def _save(self, memory: ConversationMemory, inputs: dict[str, Any], output: Any) -> None:
        memory.save_context(
            {memory.input_key or self.input_key: inputs[self.input_key]},
            {memory.output_key or "output": self._answer(output)},
        )

    def _answer(self, output: Any) -> Any:
        if isinstance(output, str | BaseMessage):
            return output
        if isinstance(output, Mapping):
            keys = (
                [self.output_key] if self.output_key else [k for k in _ANSWER_KEYS if k in output]
            )
            if keys and keys[0] in output:
                return output[keys[0]]
            raise OptionError(
                f"cannot tell which output holds the answer among {sorted(output)}",
                fix="pass output_key= naming it",
            )
        if output is None:
            return ""
        return str(output)


class _Turn:
    """One exchange through the memory: what streaming merges, and what is saved at the end
    (shared by the sync and async paths, so both store exactly the same history)."""

    def __init__(
        self, owner: RunnableWithMemory, memory: ConversationMemory, inputs: dict[str, Any]
    ) -> None:
        self.owner, self.memory, self.inputs = owner, memory, inputs
        #: what the runnable gets: the message and the history defused for its model (a
        #: remembered ``<|im_start|>`` stays text); ``inputs`` as given is what is stored
        self.values = safe_values(model_in(owner.runnable), inputs)
        self.final: Any = None

    def add(self, chunk: Any) -> Any:
        """Merge a streamed chunk into the answer so far; return the chunk."""
        self.final = chunk if self.final is None else _add(self.final, chunk)
        return chunk

    def finish(self, output: Any = _STREAMED) -> None:
        """Save the exchange (``output``: a whole answer; default: the merged chunks)."""
        self.owner._save(self.memory, self.inputs, self.final if output is _STREAMED else output)


def _add(left: Any, right: Any) -> Any:
    """Merge two streamed chunks (strings, message chunks, or dicts of them)."""
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        merged = dict(left)
        for key, value in right.items():
            merged[key] = _add(merged[key], value) if key in merged else value
        return merged
    try:
        return left + right
    except TypeError:
        return right
