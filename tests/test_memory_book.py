"""The book's memory scenario (Hands-On LLMs, ch. 7) with the real embedded model.

Tell the model a name and an age, ask two unrelated questions, then ask for the name and the
age. The assertions are on what each memory renders into the prompt, not on the wording of a
135M model's answers.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import get_buffer_string
from langchain_core.prompts import PromptTemplate

from orchestrator.chains import LLMChain
from orchestrator.memory import (
    ConversationBufferMemory,
    ConversationBufferWindowMemory,
    ConversationSummaryMemory,
    ConversationTokenBufferMemory,
)
from orchestrator.prompts import get_prompt
from orchestrator.prompts.library import SUMMARY

pytestmark = pytest.mark.integration

INTRO = "Hi! My name is Maarten and I am 33 years old. What is 1 + 1?"
TURNS = [INTRO, "What is 3 + 3?", "What is the capital of France?", "What is my name?"]
LAST = "What is my age?"


@pytest.fixture(scope="module")
def llm():  # type: ignore[no-untyped-def]
    from orchestrator import ChatLlamaCpp

    return ChatLlamaCpp(temperature=0.0, seed=0, max_tokens=16)


def run_scenario(llm, memory) -> dict:  # type: ignore[no-untyped-def]
    chain = LLMChain(prompt=get_prompt("conversation"), llm=llm, memory=memory)
    for text in TURNS:
        chain.predict(input_prompt=text)
    return chain.invoke({"input_prompt": LAST})


def test_window_memory_k2_has_dropped_the_turn_with_the_age(llm) -> None:  # type: ignore[no-untyped-def]
    memory = ConversationBufferWindowMemory(k=2, memory_key="chat_history")
    result = run_scenario(llm, memory)
    assert set(result) == {"input_prompt", "chat_history", "text"}
    history = result["chat_history"]
    assert "33" not in history and "Maarten and I am" not in history
    assert history.startswith("Human: What is the capital of France?\nAI: ")
    assert "Human: What is my name?\nAI: " in history
    assert result["text"]
    assert len(memory.messages) == 10  # stored, just not shown


def test_buffer_memory_keeps_the_age(llm) -> None:  # type: ignore[no-untyped-def]
    memory = ConversationBufferMemory(memory_key="chat_history")
    history = run_scenario(llm, memory)["chat_history"]
    assert history.startswith(f"Human: {INTRO}\nAI: ")
    assert history.count("Human: ") == 4
    assert "33 years old" in history


def test_token_memory_counts_with_the_models_tokenizer(llm) -> None:  # type: ignore[no-untyped-def]
    memory = ConversationTokenBufferMemory(llm=llm, max_token_limit=60, memory_key="chat_history")
    history = run_scenario(llm, memory)["chat_history"]
    shown = memory.context_messages()
    assert 0 < len(shown) < 8 and history.startswith("Human: ")
    assert llm.get_num_tokens(INTRO) == len(llm.engine.tokenize(INTRO, special=False))
    assert sum(memory.count(m) for m in shown) <= 60
    assert "33" not in history


def test_summary_memory_holds_an_llm_written_summary(llm) -> None:  # type: ignore[no-untyped-def]
    from orchestrator import ChatLlamaCpp

    summarizer = ChatLlamaCpp(temperature=0.0, seed=0, max_tokens=48)
    summary_prompt = PromptTemplate(input_variables=["new_lines", "summary"], template=SUMMARY)
    memory = ConversationSummaryMemory(
        llm=summarizer, memory_key="chat_history", prompt=summary_prompt
    )
    result = run_scenario(llm, memory)
    summary = memory.load_memory_variables({})["chat_history"]
    transcript = get_buffer_string(memory.messages)
    assert summary and summary == memory.buffer
    assert summary not in {transcript, *(m.content for m in memory.messages)}
    assert "Human: " not in summary or len(summary) < len(transcript) / 2
    assert result["chat_history"]  # the last turn saw the summary written after turn four
    assert result["chat_history"] != get_buffer_string(memory.messages[:8])
