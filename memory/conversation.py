"""``Conversation``: one chat with a memory, turn by turn, fitted to the context window.

This is what the ``orchestrator chat`` REPL (and the memory benchmark) runs on. Each turn:

1. the memory says which history the model sees (buffer, window, summary, token budget);
2. a *message builder* turns the user's text and that history into the turn's messages
   (system, history, user). The default one is :func:`history_messages`; a retrieval chat
   plugs in its own builder that adds sources;
3. if the prompt would not fit the model's context window (with room for the answer), the
   oldest history messages are left out, so a long chat never crashes on overflow;
4. the answer streams; the exchange is stored only when it is complete (an interrupted answer
   is not remembered).

History goes to a chat model as messages, so with llama.cpp the unchanged prefix of the prompt
stays in the KV cache between turns (no re-prefill of the whole conversation). A stored
session's KV state can also outlive the process: given a ``kv_cache``
(:class:`orchestrator.memory.kv_sessions.SessionKV`), the first turn loads what the last one
saved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from orchestrator.errors import ContextOverflowError
from orchestrator.memory.base import ConversationMemory, as_text

if TYPE_CHECKING:
    from orchestrator.memory.kv_sessions import Resumed, SessionKV

#: Builds one turn's messages from the user's text and the history the memory shows.
MessageBuilder = Callable[[str, list[BaseMessage]], list[BaseMessage]]


def history_messages(system: str | None = None) -> MessageBuilder:
    """The plain chat turn: optional system message, the history, the user's message."""

    def build(text: str, history: list[BaseMessage]) -> list[BaseMessage]:
        head: list[BaseMessage] = [SystemMessage(content=system)] if system else []
        return [*head, *history, HumanMessage(content=text)]

    return build


def context_window(llm: Any) -> int | None:
    """The model's context size in tokens, when it is a llama.cpp model (else unknown)."""
    engine = getattr(llm, "engine", None)
    return int(engine.n_ctx) if engine is not None else None


def prompt_tokens(llm: Any, messages: Sequence[BaseMessage]) -> list[int]:
    """The rendered chat prompt's tokens, exactly as ``ChatLlamaCpp`` will send them."""
    from orchestrator.llama.chat import render_messages
    from orchestrator.llama.structured import to_role_dicts

    return list(llm.prompt_tokens(render_messages(llm, to_role_dicts(messages))))


def prompt_token_count(llm: Any, messages: Sequence[BaseMessage]) -> int:
    """Tokens the rendered chat prompt costs, exactly as ``ChatLlamaCpp`` will send it."""
    return len(prompt_tokens(llm, messages))


class Conversation:
    """A chat model plus a memory, run one turn at a time (see the module docstring)."""

    def __init__(
        self,
        llm: Any,
        memory: ConversationMemory,
        *,
        system: str | None = None,
        build: MessageBuilder | None = None,
        answer_reserve: int | None = None,
        low_water: float = 0.75,
        kv_cache: SessionKV | None = None,
    ) -> None:
        self.llm = llm
        self.kv_cache = kv_cache
        """The stored session's saved KV state (:mod:`orchestrator.memory.kv_sessions`):
        loaded on the first turn, saved after each."""
        self.resumed: Resumed | None = None
        """What this turn took from a saved KV state (None: nothing)."""
        self.memory = memory
        self.system = system
        self.build = build or history_messages(system)
        self.answer_reserve = answer_reserve
        self.low_water = low_water
        self.last_dropped = 0
        self.newly_dropped = 0
        self.last_usage: dict[str, Any] = {}
        self._skip = 0
        self._head: BaseMessage | None = None

    def next_messages(self, text: str) -> list[BaseMessage]:
        """The messages the model gets for ``text`` now, fitted to the context window.

        When the prompt would not fit (with room for the answer), the oldest history messages
        are left out down to ``low_water`` of the room, and the same cut is kept on later turns
        while they fit: the prompt prefix then stays unchanged and llama.cpp reuses its KV
        cache, instead of re-reading the whole context every turn once it is full.
        ``last_dropped`` says how many history messages are left out, ``newly_dropped`` how
        many of them were cut this turn.
        """
        history = list(self.memory.context_messages())
        messages, skip, newly = self._fit(text, self.build, history)
        self.last_dropped, self.newly_dropped = skip, newly
        self._skip, self._head = skip, (history[skip] if skip < len(history) else None)
        return messages

    def preview(self) -> tuple[list[BaseMessage], int]:
        """The history the next turn will show the model, and how many older messages it
        leaves out, without calling the turn's message builder and without changing state.

        The builder is not called because it may do work a preview must not (a chat over
        documents retrieves sources for the message, and would replace the last sources). The
        history is fitted as a plain turn with an empty message would be; sources the real
        turn adds may leave out a few more.
        """
        history = list(self.memory.context_messages())
        messages, skip, _ = self._fit("", history_messages(None), history)
        return messages[:-1], skip

    def _fit(
        self, text: str, build: MessageBuilder, history: list[BaseMessage]
    ) -> tuple[list[BaseMessage], int, int]:
        """``(messages, left out, newly left out)`` for ``text`` (see :meth:`next_messages`)."""
        n_ctx = context_window(self.llm)
        if n_ctx is None:
            return build(text, history), 0, 0
        room = n_ctx - self._reserve(n_ctx)
        keep = 0 < self._skip < len(history) and history[self._skip] == self._head
        skip = first = self._skip if keep else 0
        messages = build(text, history[skip:])
        n_prompt = prompt_token_count(self.llm, messages)
        if n_prompt > room:
            target = int(room * self.low_water)
            while n_prompt > target and skip < len(history):
                skip = _next_start(history, skip)
                messages = build(text, history[skip:])
                n_prompt = prompt_token_count(self.llm, messages)
        if n_prompt >= n_ctx:
            raise ContextOverflowError(n_prompt, n_ctx)
        return messages, skip, skip - first

    def stream(self, text: str, **kwargs: Any) -> Iterator[str]:
        """Stream the answer to ``text``; store the exchange once the answer is complete.

        Closing the generator early (Ctrl-C) stops generation and stores nothing.
        """
        messages = self.begin_turn(text)
        parts: list[str] = []
        final: Any = None
        chunks = self.llm.stream(messages, **kwargs)
        try:
            for chunk in chunks:
                final = chunk if final is None else final + chunk
                piece = as_text(chunk) if isinstance(chunk, BaseMessage) else str(chunk)
                if piece:
                    parts.append(piece)
                    yield piece
        finally:
            chunks.close()
        self.last_usage = dict(getattr(final, "usage_metadata", None) or {})
        self.end_turn(text, "".join(parts).strip(), messages)

    def begin_turn(self, text: str) -> list[BaseMessage]:
        """The turn's messages (:meth:`next_messages`). On the first turn of a stored session
        its saved KV state is loaded first, so the model evaluates only what is new
        (``resumed`` says how much came from it)."""
        messages = self.next_messages(text)
        kv = self.kv_cache
        self.resumed = kv.resume(self.llm, messages) if kv is not None else None
        return messages

    def end_turn(self, text: str, answer: str, messages: Sequence[BaseMessage]) -> None:
        """After a complete answer: save the session's KV state for the next process (first,
        while the turn's slot still holds it: a summary memory's call may take the slot), then
        store the exchange."""
        if self.kv_cache is not None:
            self.kv_cache.save(self.llm, messages)
        memory = self.memory
        memory.save_context(
            {memory.input_key or "input": text}, {memory.output_key or "output": answer}
        )

    def ask(self, text: str, **kwargs: Any) -> str:
        """The whole answer at once (stored like a streamed one)."""
        return "".join(self.stream(text, **kwargs)).strip()

    def _reserve(self, n_ctx: int) -> int:
        wanted = self.answer_reserve
        if wanted is None:
            wanted = int(getattr(self.llm, "max_tokens", 0) or 0)
        return max(0, min(wanted, n_ctx // 2))


def _next_start(history: Sequence[BaseMessage], start: int) -> int:
    """The next place the kept history may start: never on an answer whose question is cut."""
    start += 1
    while start < len(history) and isinstance(history[start], AIMessage):
        start += 1
    return start
