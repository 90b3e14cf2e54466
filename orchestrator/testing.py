"""Fakes for unit tests, shipped for users' own tests too (as langchain-core ships fake models).

Prefer langchain-core's own fakes where they fit: ``GenericFakeChatModel`` (scripted chat
replies, streamed), ``FakeListChatModel`` / ``FakeListLLM`` (a list of answers, cycled),
``DeterministicFakeEmbedding`` (a fixed random vector per text) and ``InMemoryVectorStore``
(a retriever over a few texts). The fakes here exist for what those do not do:

- :class:`ScriptedChatModel` / :class:`ScriptedLLM`: record every call (messages or prompt,
  ``stop``, and keyword arguments such as ``response_format`` or ``tools``), honour ``stop``
  sequences as a real model does, stream scripted tool calls (``bind_tools`` works), and fail
  loudly when the script runs dry; langchain-core's list fakes cycle back to the first answer
  and ignore ``stop``, which hides a test calling the model more often than it meant to.
- :class:`HashEmbeddings`: texts that share words get similar vectors, so retrieval ranks
  the right document first; ``DeterministicFakeEmbedding``'s vectors are unrelated to the
  words in the text, which only suits tests that never look at the ranking.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel, generate_from_stream
from langchain_core.language_models.llms import BaseLLM
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult, Generation, LLMResult
from pydantic import ConfigDict, Field

from orchestrator.models.capabilities import Capabilities, Constraint, Way


class ScriptExhaustedError(AssertionError):
    """A scripted model was called more times than it had replies."""


def _next_reply(queue: list[Any], calls: int, owner: str) -> Any:
    if not queue:
        raise ScriptExhaustedError(
            f"{owner} ran out of scripted replies after {calls} call(s); add more replies"
        )
    return queue.pop(0)


class ScriptedChatModel(BaseChatModel):
    """A chat model that returns scripted replies in order and records what it was sent.

    A reply may be a string or an ``AIMessage`` (e.g. one carrying ``tool_calls``, streamed as
    tool-call chunks). ``stop`` sequences are honoured like a real model: the reply is cut at
    the first one. ``calls`` holds each call's messages, stop and keyword arguments. Over
    langchain-core's ``GenericFakeChatModel``: the call record, ``stop``, ``bind_tools`` and
    :class:`ScriptExhaustedError` instead of a bare ``StopIteration``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: list[str | AIMessage] = Field(default_factory=list)
    calls: list[dict[str, Any]] = Field(default_factory=list)
    constraint: Constraint = "none"
    """The constraint the fake declares it honours (see :func:`scripted_capabilities`)."""

    @property
    def _llm_type(self) -> str:
        return "scripted-chat"

    def model_capabilities(self) -> Capabilities:
        return scripted_capabilities(self, chat=True, native_tools=True)

    def get_num_tokens(self, text: str) -> int:
        return len(text.split())

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        self.calls.append({"messages": list(messages), "stop": stop, "kwargs": kwargs})
        reply = _next_reply(self.replies, len(self.calls) - 1, "ScriptedChatModel")
        if isinstance(reply, AIMessage):
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=reply.content,
                    tool_call_chunks=[
                        {"name": c["name"], "args": _json(c["args"]), "id": c["id"], "index": i}
                        for i, c in enumerate(reply.tool_calls)
                    ],
                )
            )
            return
        for word in re.findall(r"\S+\s*|\s+", cut_at_stop(reply, stop)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word))
            if run_manager:
                run_manager.on_llm_new_token(word, chunk=chunk)
            yield chunk

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self.bind(tools=list(tools), **kwargs)


class ScriptedLLM(BaseLLM):
    """A completion model returning scripted replies in order; records every prompt and stop.

    Over langchain-core's ``FakeListLLM``: ``prompts`` / ``stops`` record each call, replies
    are cut at ``stop`` sequences, and running out is :class:`ScriptExhaustedError` rather
    than silently starting the list again.
    """

    replies: list[str] = Field(default_factory=list)
    prompts: list[str] = Field(default_factory=list)
    stops: list[list[str] | None] = Field(default_factory=list)
    constraint: Constraint = "none"
    """The constraint the fake declares it honours (see :func:`scripted_capabilities`)."""

    @property
    def _llm_type(self) -> str:
        return "scripted-llm"

    def model_capabilities(self) -> Capabilities:
        return scripted_capabilities(self, chat=False, native_tools=False)

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        generations = []
        for prompt in prompts:
            self.prompts.append(prompt)
            self.stops.append(stop)
            reply = _next_reply(self.replies, len(self.prompts) - 1, "ScriptedLLM")
            generations.append([Generation(text=cut_at_stop(reply, stop))])
        return LLMResult(generations=generations)

    def get_num_tokens(self, text: str) -> int:
        return len(text.split())


def scripted_capabilities(model: Any, *, chat: bool, native_tools: bool) -> Capabilities:
    """What a scripted fake declares: by default no constraint (its replies are scripted, so
    it honours none, and an agent parses them as text). A test that checks the constraint
    arguments a component sends sets ``constraint="grammar"`` or ``"json_schema"``; the calls
    then carry ``grammar=`` / ``response_format=`` as they would to a real model of that kind
    (a chat model that honours grammars takes schemas too, as ``ChatLlamaCpp`` does)."""
    ways: tuple[Way, ...] = ()
    if model.constraint == "grammar":
        ways = ("grammar", "json_schema") if chat else ("grammar",)
    elif model.constraint == "json_schema":
        ways = ("json_schema",)
    return Capabilities(
        model=model,
        chat=chat,
        local=False,
        label=type(model).__name__,
        native_tools=native_tools,
        find_ways=lambda: ways,
        counter=model.get_num_tokens,
    )


def cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """``text`` up to the first stop sequence, as a real model would stop generating."""
    cut = len(text)
    for s in stop or []:
        i = text.find(s)
        if i >= 0:
            cut = min(cut, i)
    return text[:cut]


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


class HashEmbeddings(Embeddings):
    """Deterministic embeddings: hashed lower-cased word counts, L2-normalised.

    Texts sharing words get similar vectors, which is enough to test retrieval ranking
    (langchain-core's ``DeterministicFakeEmbedding`` gives every text an unrelated vector).
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    def _embed(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            vec[int.from_bytes(digest, "little") % self.dim] += 1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)
