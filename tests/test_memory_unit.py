"""Memories with the scripted fakes: rendering, LLMChain integration, options, the wrapper."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder, PromptTemplate

from orchestrator.chains import LLMChain
from orchestrator.errors import OptionError
from orchestrator.memory import (
    ConversationBufferMemory,
    ConversationBufferWindowMemory,
    ConversationSummaryMemory,
    ConversationTokenBufferMemory,
    InProcessStore,
    RunnableWithMemory,
    create_memory,
    keep_recent,
)
from orchestrator.testing import ScriptedChatModel, ScriptedLLM

BOOK_TEMPLATE = (
    "<|user|>Current conversation:{chat_history}\n\n{input_prompt}<|end|>\n<|assistant|>"
)


def book_prompt() -> PromptTemplate:
    return PromptTemplate(template=BOOK_TEMPLATE, input_variables=["input_prompt", "chat_history"])


def fill(memory, exchanges) -> None:  # type: ignore[no-untyped-def]
    for human, ai in exchanges:
        memory.save_context({"input": human}, {"output": ai})


def test_buffer_renders_transcript_and_llmchain_returns_memory_variable() -> None:
    llm = ScriptedLLM(replies=["Hello Maarten! 1 + 1 = 2.", "Your name is Maarten."])
    memory = ConversationBufferMemory(memory_key="chat_history")
    chain = LLMChain(prompt=book_prompt(), llm=llm, memory=memory)
    first = chain.invoke({"input_prompt": "Hi! My name is Maarten. What is 1 + 1?"})
    assert first == {
        "input_prompt": "Hi! My name is Maarten. What is 1 + 1?",
        "chat_history": "",
        "text": "Hello Maarten! 1 + 1 = 2.",
    }
    second = chain.invoke({"input_prompt": "What is my name?"})
    expected = "Human: Hi! My name is Maarten. What is 1 + 1?\nAI: Hello Maarten! 1 + 1 = 2."
    assert second["chat_history"] == expected
    assert expected in llm.prompts[1]
    assert len(memory.messages) == 4


def test_window_keeps_last_k_exchanges_but_stores_all() -> None:
    memory = ConversationBufferWindowMemory(k=2, memory_key="chat_history")
    fill(memory, [("I am 33", "ok"), ("3 + 3?", "6"), ("name?", "Maarten")])
    shown = memory.load_memory_variables({})["chat_history"]
    assert "33" not in shown
    assert shown == "Human: 3 + 3?\nAI: 6\nHuman: name?\nAI: Maarten"
    assert len(memory.messages) == 6  # the store keeps what the window hides


def test_return_messages_gives_message_objects() -> None:
    memory = ConversationBufferWindowMemory(k=1, return_messages=True)
    fill(memory, [("a", "b"), ("c", "d")])
    assert memory.load_memory_variables({})["history"] == [HumanMessage("c"), AIMessage("d")]


def test_token_memory_keeps_what_fits_and_never_starts_with_an_answer() -> None:
    llm = ScriptedLLM()  # counts words
    memory = ConversationTokenBufferMemory(llm=llm, max_token_limit=8)
    fill(memory, [("one two three", "four five"), ("six seven", "eight")])
    shown = memory.context_messages()
    # "Human: six seven" (3) + "AI: eight" (2) fit; "AI: four five" (3) would too, but an
    # answer without its question is dropped.
    assert shown == [HumanMessage("six seven"), AIMessage("eight")]
    assert keep_recent(memory.messages, 0, memory.count) == []


def test_summary_memory_folds_each_exchange_with_the_book_prompt() -> None:
    llm = ScriptedLLM(replies=["Maarten asked 1+1.", "Maarten asked 1+1 and his name."])
    memory = ConversationSummaryMemory(llm=llm, memory_key="chat_history")
    fill(memory, [("Hi, I am Maarten. 1+1?", "2"), ("What is my name?", "Maarten")])
    assert memory.load_memory_variables({}) == {"chat_history": "Maarten asked 1+1 and his name."}
    assert "Current summary:\nMaarten asked 1+1." in llm.prompts[1]
    assert "Human: What is my name?\nAI: Maarten" in llm.prompts[1]
    assert "Hi, I am Maarten" not in llm.prompts[1]  # only new lines are sent, not the transcript
    as_messages = ConversationSummaryMemory(llm=llm, return_messages=True, buffer="seed")
    assert as_messages.load_memory_variables({}) == {"history": [SystemMessage("seed")]}


def test_summary_prompt_must_take_summary_and_new_lines() -> None:
    with pytest.raises(OptionError, match="summary"):
        ConversationSummaryMemory(llm=ScriptedLLM(), prompt=PromptTemplate.from_template("{x}"))


def test_braces_and_template_syntax_in_history_are_passed_as_text() -> None:
    tricky = "use {input_prompt} and {{double}} and {% if x %}jinja{% endif %} and {0}"
    llm = ScriptedLLM(replies=[f"echo {tricky}", "fine"])
    memory = ConversationBufferMemory(memory_key="chat_history")
    chain = LLMChain(prompt=book_prompt(), llm=llm, memory=memory)
    chain.invoke({"input_prompt": tricky})
    chain.invoke({"input_prompt": "next"})
    assert f"Human: {tricky}\nAI: echo {tricky}" in llm.prompts[1]
    summary = ConversationSummaryMemory(llm=ScriptedLLM(replies=["s {x}"]))
    summary.save_context({"input": tricky}, {"output": "ok"})
    assert summary.buffer == "s {x}"


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("bufer", {}, "did you mean 'buffer'"),
        ("window", {"k": 0}, "at least 1"),
        ("window", {"k": -3}, "at least 1"),
        ("buffer", {"k": 2}, "window memory only"),
        ("tokens", {}, "needs llm"),
    ],
)
def test_bad_memory_options_are_clear_errors(kind: str, options: dict, message: str) -> None:
    with pytest.raises(OptionError) as info:
        create_memory(kind, **options)
    assert message in str(info.value)


def test_unknown_option_suggests_the_right_name() -> None:
    with pytest.raises(OptionError, match="did you mean 'memory_key'"):
        ConversationBufferMemory(memory_kye="chat_history")


def test_runnable_with_memory_per_session_and_streaming() -> None:
    store = InProcessStore()
    llm = ScriptedChatModel(replies=["Hi Ada.", "You are Ada.", "Hi Bob."])
    prompt = ChatPromptTemplate.from_messages(
        [MessagesPlaceholder("history"), ("human", "{input}")]
    )
    talk = RunnableWithMemory(
        runnable=prompt | llm,
        get_memory=lambda sid: ConversationBufferMemory(
            return_messages=True, chat_memory=store.history(sid)
        ),
    )
    ada = {"configurable": {"session_id": "ada"}}
    assert talk.invoke("I am Ada", config=ada).content == "Hi Ada."
    streamed = "".join(c.content for c in talk.stream("Who am I?", config=ada))
    assert streamed == "You are Ada."
    assert [m.content for m in llm.calls[1]["messages"]] == ["I am Ada", "Hi Ada.", "Who am I?"]
    talk.invoke({"input": "I am Bob"}, config={"configurable": {"session_id": "bob"}})
    assert [m.content for m in store.history("ada").messages][-1] == "You are Ada."
    assert len(store.history("bob").messages) == 2
    with pytest.raises(OptionError, match="session id"):
        talk.invoke("hi")


def test_abandoned_stream_stores_nothing() -> None:
    memory = ConversationBufferMemory(return_messages=True)
    llm = ScriptedChatModel(replies=["one two three four"])
    chain = RunnableWithMemory(
        runnable=ChatPromptTemplate.from_messages([("human", "{input}")]) | llm, memory=memory
    )
    stream = chain.stream("tell me")
    next(stream)
    stream.close()
    assert memory.messages == []


def test_runnable_with_memory_needs_exactly_one_memory_source() -> None:
    with pytest.raises(OptionError, match="exactly one"):
        RunnableWithMemory(runnable=ScriptedChatModel())


@pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")
def test_stores_plug_into_langchains_runnable_with_message_history() -> None:
    from langchain_core.runnables.history import RunnableWithMessageHistory

    store = InProcessStore()
    llm = ScriptedChatModel(replies=["Hi Ada.", "Ada."])
    prompt = ChatPromptTemplate.from_messages(
        [MessagesPlaceholder("history"), ("human", "{input}")]
    )
    talk = RunnableWithMessageHistory(
        prompt | llm, store, input_messages_key="input", history_messages_key="history"
    )
    config = {"configurable": {"session_id": "ada"}}
    talk.invoke({"input": "I am Ada"}, config=config)
    talk.invoke({"input": "Who am I?"}, config=config)
    assert [m.content for m in llm.calls[1]["messages"]] == ["I am Ada", "Hi Ada.", "Who am I?"]
    assert len(store.history("ada").messages) == 4


def test_summary_from_messages_and_custom_keys() -> None:
    from orchestrator.memory import InProcessHistory

    history = InProcessHistory("s", [HumanMessage("I am Ada"), AIMessage("Hi Ada")])
    llm = ScriptedLLM(replies=["Ada said hi."])
    memory = ConversationSummaryMemory.from_messages(llm, history, output_key="text")
    assert memory.buffer == "Ada said hi." and "Human: I am Ada\nAI: Hi Ada" in llm.prompts[0]
    keyed = ConversationBufferMemory(input_key="question", output_key="text")
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    talk = RunnableWithMemory(
        runnable=prompt | ScriptedChatModel(replies=["42"]), memory=keyed, input_key="question"
    )
    talk.invoke({"question": "answer?"})
    assert [m.content for m in keyed.messages] == ["answer?", "42"]


def test_default_summary_prompt_is_wrapped_for_completion_models() -> None:
    from orchestrator import LlamaCpp
    from orchestrator.memory import default_summary_prompt
    from orchestrator.prompts.library import SUMMARY

    llm = LlamaCpp()  # reads the GGUF header only, no weights
    wrapped = default_summary_prompt(llm)
    assert sorted(wrapped.input_variables) == ["new_lines", "summary"]
    # only SUMMARY is parsed; the user turn is wrapped around the filled text when formatting
    assert wrapped.template == SUMMARY and wrapped.user_turn and wrapped.llm is llm
    plain = default_summary_prompt(ScriptedChatModel()).format(summary="s", new_lines="n")
    assert plain.startswith("Summarize")  # a chat model wraps its input itself
