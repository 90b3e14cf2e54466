"""LLMChain and the story chain: unit tests with the scripted fake, one real-model run."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.prompts import PromptTemplate

from orchestrator import OptionError
from orchestrator.chains import LLMChain, story_chain
from orchestrator.prompts import PROMPTS, get_prompt
from orchestrator.testing import ScriptedChatModel, ScriptedLLM, ScriptExhaustedError


def test_llmchain_returns_inputs_plus_output_key() -> None:
    llm = ScriptedLLM(replies=["  Paris  "])
    chain = LLMChain(llm=llm, prompt=get_prompt("title"), output_key="title")
    assert chain.invoke("a city") == {"summary": "a city", "title": "Paris"}
    assert llm.prompts == ["Create a title for a story about a city. Only return the title."]


def test_book_composition_title_character_story() -> None:
    llm = ScriptedLLM(replies=["T", "C", "S"])
    title = LLMChain(llm=llm, prompt=get_prompt("title"), output_key="title")
    character = LLMChain(llm=llm, prompt=get_prompt("character"), output_key="character")
    story = LLMChain(llm=llm, prompt=get_prompt("story"), output_key="story")
    out = (title | character | story).invoke("a girl that lost her mother")
    assert out == {
        "summary": "a girl that lost her mother",
        "title": "T",
        "character": "C",
        "story": "S",
    }
    assert "with the title T" in llm.prompts[1] and "The main character is: C" in llm.prompts[2]


def test_story_chain_wraps_prompts_for_chat_models() -> None:
    llm = ScriptedChatModel(replies=["Title", "Character", "Story"])
    out = story_chain(llm).invoke({"summary": "a robot"})
    assert [out[k] for k in ("title", "character", "story")] == ["Title", "Character", "Story"]
    assert len(llm.calls) == 3


def test_missing_input_names_the_keys() -> None:
    chain = LLMChain(llm=ScriptedLLM(replies=[]), prompt=get_prompt("story"))
    with pytest.raises(OptionError, match="character"):
        chain.invoke({"summary": "x", "title": "y"})


def test_script_runs_dry_loudly() -> None:
    chain = LLMChain(llm=ScriptedLLM(replies=[]), prompt=get_prompt("title"))
    with pytest.raises(ScriptExhaustedError, match="ran out"):
        chain.invoke("x")


class ListMemory:
    """The smallest thing that satisfies chains.ChainMemory."""

    def __init__(self) -> None:
        self.saved: list[tuple[dict[str, Any], dict[str, str]]] = []

    @property
    def memory_variables(self) -> list[str]:
        return ["chat_history"]

    def load_memory_variables(self, inputs: dict[str, Any]) -> dict[str, Any]:
        lines = [f"Human: {i['input_prompt']}\nAI: {o['text']}" for i, o in self.saved]
        return {"chat_history": "\n".join(lines)}

    def save_context(self, inputs: dict[str, Any], outputs: dict[str, str]) -> None:
        self.saved.append((inputs, outputs))


def test_llmchain_reads_and_writes_memory_and_keeps_braces_as_text() -> None:
    memory = ListMemory()
    llm = ScriptedLLM(replies=["Hi {name}!", "You said {name}."])
    chain = LLMChain(llm=llm, prompt=get_prompt("conversation"), memory=memory)
    first = chain.invoke({"input_prompt": "Hello {name}"})
    assert first == {"input_prompt": "Hello {name}", "chat_history": "", "text": "Hi {name}!"}
    chain.invoke({"input_prompt": "What did I say?"})
    assert "Human: Hello {name}\nAI: Hi {name}!" in llm.prompts[1]


def test_llmchain_rejects_a_non_memory() -> None:
    with pytest.raises(OptionError, match="memory"):
        LLMChain(llm=ScriptedLLM(), prompt=PromptTemplate.from_template("{x}"), memory=object())


def test_prompt_library_names() -> None:
    assert set(PROMPTS) >= {
        "title",
        "character",
        "story",
        "conversation",
        "summary",
        "rag",
        "react",
    }
    with pytest.raises(KeyError, match="choose one of"):
        get_prompt("titel")


@pytest.mark.integration
def test_story_chain_on_the_embedded_model(chat_llm: Any) -> None:
    out = story_chain(chat_llm.bind(max_tokens=40)).invoke("a girl that lost her mother")
    assert set(out) == {"summary", "title", "character", "story"}
    assert all(isinstance(out[k], str) and out[k] for k in ("title", "character", "story"))


def test_call_options_are_rejected_not_dropped() -> None:
    chain = LLMChain(llm=ScriptedLLM(replies=["x"]), prompt=get_prompt("title"))
    with pytest.raises(OptionError, match="max_tokens"):
        chain.invoke("a city", max_tokens=3)


def test_rag_astream_yields_the_same_parts_as_stream() -> None:
    import asyncio

    from langchain_core.documents import Document
    from langchain_core.runnables import RunnableLambda

    from orchestrator.chains import rag_chain

    docs = [Document("Zorblat is the capital.", metadata={"doc_id": "a", "score": 1.0})]
    retriever = RunnableLambda(lambda q: docs)
    sync = list(rag_chain(ScriptedChatModel(replies=["Zorblat [1]."]), retriever).stream("q"))

    async def collect() -> list[dict[str, Any]]:
        chain = rag_chain(ScriptedChatModel(replies=["Zorblat [1]."]), retriever)
        return [part async for part in chain.astream("q")]

    assert asyncio.run(collect()) == sync
    assert sync[0]["sources"][0]["doc_id"] == "a" and "answer" in sync[-1]
    with pytest.raises(OptionError):
        list(rag_chain(ScriptedChatModel(replies=[]), retriever).stream("q", bogus=1))
