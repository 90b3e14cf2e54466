"""What the endpoints stream: every answer, from the model or a pipeline, is an iterator
of :class:`Piece` s run in one worker thread (``orchestrator.llama.aio.iterate_in_thread``).

The iterators here are plain synchronous generators over the library's models
(``ChatLlamaCpp`` and ``LlamaCpp`` in process, or a served chat model) and chains, so the
server answers exactly what the library answers. They hold
the engine's lock only while they generate. They run inside the request's cancellation scope
(:mod:`orchestrator.cancellation`): when the client goes away the model stops at its next
token and a chain at its next step, raising ``GenerationCancelled`` up through the generator.
Each records its own token counts and outcome in :class:`Tally` when it ends, however it ends:
``completed`` once the work is done (the pieces after it are only delivery), ``cancelled``
only when it really stopped early.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage, get_buffer_string
from langchain_core.outputs import LLMResult

from orchestrator.cancellation import GenerationCancelled
from orchestrator.llama.engine import Usage
from orchestrator.server.metrics import Metrics

#: llama.cpp's finish reasons as OpenAI names them (a timeout stops like a length limit).
FINISH_REASONS = {"stop": "stop", "length": "length", "timeout": "length"}


@dataclass
class Tokens:
    prompt: int = 0
    completion: int = 0
    cached: int = 0

    @classmethod
    def counted(cls, counts: Mapping[str, Any]) -> Tokens:
        """From OpenAI's names: a completion's ``usage``, ``vars()`` of the engine's ``Usage``."""
        names = ("prompt_tokens", "completion_tokens", "cached_tokens")
        return cls(*(int(counts.get(name, 0)) for name in names))

    @classmethod
    def of_message(cls, usage: Mapping[str, Any]) -> Tokens:
        """From a LangChain message's ``usage_metadata``."""
        cached = int(usage.get("input_token_details", {}).get("cache_read", 0))
        return cls(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)), cached)

    def add(self, more: Tokens | None) -> None:
        if more is not None:
            self.prompt += more.prompt
            self.completion += more.completion
            self.cached += more.cached

    def set(self, other: Tokens) -> None:
        self.prompt, self.completion, self.cached = other.prompt, other.completion, other.cached

    def openai(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
            "prompt_tokens_details": {"cached_tokens": self.cached},
        }


@dataclass
class Piece:
    """One step of an answer: text, tool calls, extra response fields, or the end."""

    text: str = ""
    tool_calls: list[dict[str, Any]] | None = None
    fields: dict[str, Any] | None = None
    """Top-level fields beside the OpenAI ones (``sources``, ``steps``, ``step``, ``story``)."""
    finish_reason: str | None = None
    usage: Tokens | None = None
    index: int = 0
    """Which choice it belongs to (a completion request may send several prompts)."""

    @property
    def visible(self) -> bool:
        """Whether the client sees generated output in it (for time to first token)."""
        return bool(self.text or self.tool_calls)


@dataclass
class Tally:
    """Records one generation's tokens and outcome in the metrics when it ends."""

    metrics: Metrics
    model: str
    count_tokens: Callable[[str], int] | None = None
    text: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def generation(self, calls: UsageTally | None = None) -> Iterator[Tokens]:
        """Wraps the work of a generation; the yielded :class:`Tokens` is filled in by the
        generator, or, with ``calls``, taken from the model calls it added up (stopped ones
        included). Work stopped early is ``cancelled``: the tokens of the model call it
        stopped are the engine's count, else they are counted from the text produced."""
        tokens = Tokens()
        outcome = "cancelled"
        try:
            yield tokens
            outcome = "completed"
        except GenerationCancelled as exc:
            stopped = exc.usage
            if calls is None and stopped is not None:
                tokens.set(Tokens.counted(vars(stopped)))
            raise
        except GeneratorExit:
            raise
        except BaseException:
            outcome = "error"
            raise
        finally:
            if calls is not None:
                tokens.set(calls.tokens)
            if outcome != "completed" and not tokens.completion and self.count_tokens:
                tokens.completion = self.count_tokens("".join(self.text))
            self.metrics.tokens(self.model, tokens.prompt, tokens.completion)
            self.metrics.generations.labels(self.model, outcome).inc()


def chat_pieces(
    llm: Any, messages: Sequence[BaseMessage], call: Mapping[str, Any], tally: Tally
) -> Iterator[Piece]:
    """A chat model's stream (local or served) as pieces; tool calls come whole, in one
    piece."""
    calls: list[dict[str, Any]] = []
    finish: str | None = None
    chunks = llm.stream(list(messages), **call)
    with tally.generation() as tokens, contextlib.closing(chunks):
        for chunk in chunks:
            text = chunk.content if isinstance(chunk.content, str) else ""
            if text:
                tally.text.append(text)
                yield Piece(text=text)
            calls.extend(_tool_call(c) for c in chunk.tool_call_chunks or ())
            if chunk.usage_metadata:
                tokens.set(Tokens.of_message(chunk.usage_metadata))
            finish = chunk.response_metadata.get("finish_reason") or finish
        if not (tokens.prompt or tokens.completion):
            _count_unreported(tokens, messages, tally)
    if calls:
        yield Piece(tool_calls=calls)
    reason = "tool_calls" if calls else FINISH_REASONS.get(finish or "stop", "stop")
    yield Piece(finish_reason=reason, usage=tokens)


def _count_unreported(tokens: Tokens, messages: Sequence[BaseMessage], tally: Tally) -> None:
    """Usage a served model's stream did not report (llama.cpp's Python server sends none),
    counted by the model layer's counter: approximate for a served model, and said so once."""
    if tally.count_tokens is not None:
        tokens.prompt = tally.count_tokens(get_buffer_string(list(messages)))
        tokens.completion = tally.count_tokens("".join(tally.text))


def _tool_call(chunk: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": chunk.get("id"),
        "type": "function",
        "function": {"name": chunk.get("name"), "arguments": chunk.get("args") or "{}"},
    }


def completion_pieces(
    llm: Any, prompt: str, overrides: Mapping[str, Any], stop: Sequence[str], tally: Tally
) -> Generator[Piece, None, None]:
    """A ``LlamaCpp`` generation for ``prompt`` as written, counted token by token (so even a
    cancelled one reports exactly how many tokens it generated). Local only: the route
    refuses a served model first (``Backends.resolve``)."""
    usage = Usage()
    with tally.generation() as tokens:
        try:
            prompt_ids = llm.prompt_tokens(prompt)
            stream = llm.generate_text(prompt_ids, overrides, llm.stop_list(stop), usage)
            with contextlib.closing(stream):
                for text in stream:
                    tally.text.append(text)
                    yield Piece(text=text)
        finally:
            tokens.set(Tokens.counted(vars(usage)))
    reason = FINISH_REASONS.get(usage.finish_reason or "stop", "stop")
    yield Piece(finish_reason=reason, usage=tokens)


class SessionLocks:
    """One lock per session id: two requests to one session take turns, so each sees the
    other's exchange and none is lost."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, session_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(session_id, threading.Lock())


def session_pieces(
    conversation: Any,
    lock: threading.Lock,
    text: str,
    call: Mapping[str, Any],
    tally: Tally,
) -> Iterator[Piece]:
    """A turn of a stored conversation: its history (fitted to the context window, as
    ``orchestrator chat --session`` does) plus ``text``; the exchange (and the session's KV
    state, for a server started again) is stored once the answer is complete, never when the
    client left before the end."""
    with lock:
        messages = conversation.begin_turn(text)
        answer: list[str] = []
        for piece in chat_pieces(conversation.llm, messages, call, tally):
            answer.append(piece.text)
            yield piece
        conversation.end_turn(text, "".join(answer).strip(), messages)


class UsageTally(BaseCallbackHandler):
    """Adds up the token usage of every model call a pipeline makes (LangChain callback), a
    call the engine stopped on cancellation included (the tokens it had generated), and keeps
    the finish reason of the last call to end: the one that wrote the answer, so a pipeline
    whose answer hit ``max_tokens`` says ``length`` as a plain completion does."""

    def __init__(self) -> None:
        self.tokens = Tokens()
        self.finish_reason = "stop"
        """OpenAI's name (see :data:`FINISH_REASONS`) of the last call's finish reason."""
        self._lock = threading.Lock()

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        usage = error.usage if isinstance(error, GenerationCancelled) else None
        if usage is not None:
            self._add(Tokens.counted(vars(usage)))

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        found = Tokens()
        reason = None
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                said = getattr(message, "response_metadata", None) or {}
                given = generation.generation_info or {}
                reason = said.get("finish_reason") or given.get("finish_reason") or reason
                meta = getattr(message, "usage_metadata", None)
                if meta:
                    found.add(Tokens.of_message(meta))
                elif given.get("usage"):
                    found.add(Tokens.counted(given["usage"]))
        if not (found.prompt or found.completion):
            found = Tokens.counted((response.llm_output or {}).get("token_usage") or {})
        self._add(found)
        if reason:
            self.finish_reason = FINISH_REASONS.get(reason, "stop")

    def _add(self, more: Tokens) -> None:
        with self._lock:
            self.tokens.add(more)
