"""What the fakes in orchestrator.testing do that langchain-core's fakes do not."""

from __future__ import annotations

import math

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from orchestrator.testing import (
    HashEmbeddings,
    ScriptedChatModel,
    ScriptedLLM,
    ScriptExhaustedError,
)


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_scripted_llm_cuts_at_stop_records_and_fails_when_dry() -> None:
    ours = ScriptedLLM(replies=["4\nObservation: made up"])
    assert ours.invoke("2+2=", stop=["\nObservation:"]) == "4"
    assert (ours.prompts, ours.stops) == (["2+2="], [["\nObservation:"]])
    with pytest.raises(ScriptExhaustedError, match="after 1 call"):
        ours.invoke("again")
    # langchain-core's list fake ignores stop and starts the list again when it runs out
    theirs = FakeListLLM(responses=["4\nObservation: made up"])
    assert theirs.invoke("2+2=", stop=["\nObservation:"]) == "4\nObservation: made up"
    assert theirs.invoke("again") == "4\nObservation: made up"


def test_scripted_chat_model_streams_tool_calls_and_records_kwargs() -> None:
    call = {"name": "add", "args": {"a": 2, "b": 3}, "id": "c1", "type": "tool_call"}
    model = ScriptedChatModel(replies=[AIMessage("", tool_calls=[call])])
    reply = model.bind_tools([add]).invoke("2+3?")
    assert reply.tool_calls == [call]
    assert [t.name for t in model.calls[0]["kwargs"]["tools"]] == ["add"]
    with pytest.raises(NotImplementedError):
        GenericFakeChatModel(messages=iter([])).bind_tools([add])


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def test_hash_embeddings_rank_by_shared_words() -> None:
    ours = HashEmbeddings(dim=256)
    query = ours.embed_query("river length")
    related, unrelated = ours.embed_documents(["The river length is 842 km.", "Capital city."])
    assert _cosine(query, related) > 0.3 > _cosine(query, unrelated) == 0.0
    # langchain-core's deterministic fake: same text, same vector; shared words mean nothing
    theirs = DeterministicFakeEmbedding(size=256)
    assert theirs.embed_query("river length") == theirs.embed_query("river length")
    assert abs(_cosine(theirs.embed_query("river length"), theirs.embed_query("river"))) < 0.3
