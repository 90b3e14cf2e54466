"""``RunnableWithMemory``: async callers stream too, through the same turn as sync callers.

``stream`` and ``astream`` (``invoke`` and ``ainvoke``) share one core (load the memory, merge
chunks, save once complete), so both give the same chunks and store the same history, and an
abandoned async stream stores nothing, like an abandoned sync one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

from orchestrator.memory import (
    ConversationBufferMemory,
    ConversationBufferWindowMemory,
    RunnableWithMemory,
    SQLiteStore,
)
from orchestrator.testing import ScriptedChatModel

PROMPT = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{input}")])
QUESTIONS = ["My name is Ada.", "What is my name?", "Say it again."]
REPLIES = ["Hello Ada, nice to meet you.", "Your name is Ada.", "Ada."]


def _talk(llm: Any, memory: Any) -> RunnableWithMemory:
    return RunnableWithMemory(runnable=PROMPT | llm, memory=memory)


def _history(memory: Any) -> list[tuple[str, str]]:
    return [(m.type, str(m.content)) for m in memory.messages]


def _sync_run(llm: Any, memory: Any) -> list[list[str]]:
    talk = _talk(llm, memory)
    return [[str(c.content) for c in talk.stream(q)] for q in QUESTIONS]


def _async_run(llm: Any, memory: Any) -> list[list[str]]:
    talk = _talk(llm, memory)

    async def run() -> list[list[str]]:
        return [[str(c.content) async for c in talk.astream(q)] for q in QUESTIONS]

    return asyncio.run(run())


def test_stream_and_astream_give_the_same_chunks_and_store_the_same_history() -> None:
    sync_memory = ConversationBufferWindowMemory(k=1, return_messages=True)
    async_memory = ConversationBufferWindowMemory(k=1, return_messages=True)
    sync_llm, async_llm = ScriptedChatModel(replies=REPLIES), ScriptedChatModel(replies=REPLIES)
    sync_chunks = _sync_run(sync_llm, sync_memory)
    async_chunks = _async_run(async_llm, async_memory)
    assert async_chunks == sync_chunks and len(sync_chunks[0]) > 1  # really streamed
    assert ["".join(c) for c in async_chunks] == REPLIES
    assert _history(async_memory) == _history(sync_memory)
    assert _history(async_memory)[-2:] == [("human", "Say it again."), ("ai", "Ada.")]
    # the window memory decided what the model saw, identically on both paths
    seen = [[m.content for m in call["messages"]] for call in async_llm.calls]
    assert seen == [[m.content for m in call["messages"]] for call in sync_llm.calls]
    assert seen[2] == ["What is my name?", "Your name is Ada.", "Say it again."]


def test_ainvoke_stores_like_invoke() -> None:
    memory = ConversationBufferMemory(return_messages=True)
    talk = _talk(ScriptedChatModel(replies=["Hi."]), memory)
    reply = asyncio.run(talk.ainvoke({"input": "hello"}))
    assert isinstance(reply, BaseMessage) and reply.content == "Hi."
    assert _history(memory) == [("human", "hello"), ("ai", "Hi.")]


def test_an_abandoned_async_stream_stores_nothing() -> None:
    memory = ConversationBufferMemory(return_messages=True)
    talk = _talk(ScriptedChatModel(replies=["one two three four"]), memory)

    async def first_chunk_only() -> str:
        stream = talk.astream("tell me")
        async for chunk in stream:
            await stream.aclose()  # type: ignore[attr-defined]
            return str(chunk.content)
        return ""

    assert asyncio.run(first_chunk_only()) == "one "
    assert memory.messages == []


@pytest.mark.integration
def test_real_model_stream_and_astream_parity_in_a_real_session_file(
    chat_llm: Any, tmp_path: Path
) -> None:
    with SQLiteStore(tmp_path / "sessions.db") as store:
        sync_memory = ConversationBufferMemory(
            return_messages=True, chat_memory=store.history("sync")
        )
        async_memory = ConversationBufferMemory(
            return_messages=True, chat_memory=store.history("async")
        )
        llm = chat_llm.bind(max_tokens=16)
        sync_chunks = _sync_run(llm, sync_memory)
        async_chunks = _async_run(llm, async_memory)
    assert async_chunks == sync_chunks and all(len(c) > 1 for c in sync_chunks)
    with SQLiteStore(tmp_path / "sessions.db") as reopened:
        stored_sync = [(m.type, m.content) for m in reopened.history("sync").messages]
        stored_async = [(m.type, m.content) for m in reopened.history("async").messages]
    assert stored_async == stored_sync and len(stored_sync) == 2 * len(QUESTIONS)
    assert [content for kind, content in stored_sync if kind == "human"] == QUESTIONS
