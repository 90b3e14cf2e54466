"""``ConversationSummaryBufferMemory`` with fakes: pruning, summary, buffer, clear, async, options.

``ScriptedLLM`` counts one token per whitespace-separated word, so the budgets below are exact:
``Human: one two`` costs 3 tokens, ``AI: three`` 2.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.prompts import PromptTemplate

from orchestrator.chains import LLMChain
from orchestrator.errors import OptionError
from orchestrator.memory import (
    MEMORY_KINDS,
    ConversationSummaryBufferMemory,
    SQLiteStore,
    create_memory,
)
from orchestrator.testing import ScriptedChatModel, ScriptedLLM

EXCHANGES = [("one two", "three"), ("four five", "six"), ("seven eight", "nine")]


def talk(memory: ConversationSummaryBufferMemory, exchanges=EXCHANGES) -> None:  # type: ignore[no-untyped-def]
    for human, ai in exchanges:
        memory.save_context({"input": human}, {"output": ai})


def test_nothing_is_summarized_while_the_buffer_fits_the_limit() -> None:
    llm = ScriptedLLM()  # no replies: any summary call would fail the test
    memory = ConversationSummaryBufferMemory(llm=llm, max_token_limit=10)
    talk(memory, EXCHANGES[:2])  # 5 + 5 tokens: exactly at the limit, not over it
    assert llm.prompts == []
    assert memory.moving_summary_buffer == ""
    assert memory.buffer == "Human: one two\nAI: three\nHuman: four five\nAI: six"


def test_the_oldest_exchange_is_folded_in_once_the_limit_is_passed() -> None:
    llm = ScriptedLLM(replies=["They counted to three."])
    memory = ConversationSummaryBufferMemory(llm=llm, max_token_limit=10)
    talk(memory)  # the third exchange makes 15 tokens
    assert len(llm.prompts) == 1
    assert "Current summary:\n\n" in llm.prompts[0]
    assert "Human: one two\nAI: three\n\nNew summary:" in llm.prompts[0]
    assert "four" not in llm.prompts[0]  # only what was pruned is summarized
    assert memory.moving_summary_buffer == "They counted to three."
    assert memory.load_memory_variables({}) == {
        "history": "System: They counted to three.\n"
        "Human: four five\nAI: six\nHuman: seven eight\nAI: nine"
    }
    assert len(memory.messages) == 6  # stored messages are never deleted


def test_the_running_summary_is_updated_with_the_next_pruned_turns() -> None:
    llm = ScriptedLLM(replies=["S1", "S2"])
    memory = ConversationSummaryBufferMemory(llm=llm, max_token_limit=10, return_messages=True)
    talk(memory)
    memory.save_context({"input": "ten"}, {"output": "eleven"})  # 5 + 5 + 4 = 14 > 10
    assert "Current summary:\nS1\n" in llm.prompts[1]
    assert "Human: four five\nAI: six\n\nNew summary:" in llm.prompts[1]
    assert memory.buffer == [
        SystemMessage(content="S2"),
        HumanMessage(content="seven eight"),
        AIMessage(content="nine"),
        HumanMessage(content="ten"),
        AIMessage(content="eleven"),
    ]


def test_an_answer_whose_question_was_folded_in_goes_with_it() -> None:
    llm = ScriptedLLM(replies=["S"])
    memory = ConversationSummaryBufferMemory(llm=llm, max_token_limit=3, return_messages=True)
    memory.save_context({"input": "a b c"}, {"output": "d"})  # 4 + 2 tokens; the answer fits
    assert memory.buffer == [SystemMessage(content="S")]
    assert "Human: a b c\nAI: d" in llm.prompts[0]


def test_clear_forgets_messages_summary_and_seed() -> None:
    llm = ScriptedLLM(replies=["S1"])
    memory = ConversationSummaryBufferMemory(
        llm=llm, max_token_limit=10, moving_summary_buffer="earlier"
    )
    assert memory.buffer == "System: earlier"
    talk(memory)
    assert "Current summary:\nearlier\n" in llm.prompts[0]
    memory.clear()
    assert memory.messages == [] and memory.moving_summary_buffer == ""
    assert memory.load_memory_variables({}) == {"history": ""}


def test_the_summary_can_be_set_as_in_langchain() -> None:
    memory = ConversationSummaryBufferMemory(llm=ScriptedLLM(replies=["S"]), max_token_limit=3)
    memory.moving_summary_buffer = "x"
    assert memory.buffer == "System: x"
    memory.save_context({"input": "a b c"}, {"output": "d"})
    memory.moving_summary_buffer = "y"
    assert memory.buffer == "System: y"
    assert memory.chat_memory.load_summary() == ("y", 2)  # type: ignore[attr-defined]


async def _run_async(memory: ConversationSummaryBufferMemory) -> object:
    for human, ai in EXCHANGES:
        await memory.asave_context({"input": human}, {"output": ai})
    return await memory.aload_memory_variables({})


def test_async_methods_store_and_render_what_the_sync_ones_do() -> None:
    sync_llm, async_llm = ScriptedLLM(replies=["S1"]), ScriptedLLM(replies=["S1"])
    sync_memory = ConversationSummaryBufferMemory(llm=sync_llm, max_token_limit=10)
    async_memory = ConversationSummaryBufferMemory(llm=async_llm, max_token_limit=10)
    talk(sync_memory)
    assert asyncio.run(_run_async(async_memory)) == sync_memory.load_memory_variables({})
    assert async_llm.prompts == sync_llm.prompts
    assert async_memory.messages == sync_memory.messages
    assert asyncio.run(async_memory.abuffer()) == sync_memory.buffer
    asyncio.run(async_memory.aclear())
    assert async_memory.messages == [] and async_memory.buffer == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_tokens_limit": 40}, "did you mean 'max_token_limit'"),
        ({"buffer": "seed"}, "unknown option 'buffer'"),
        ({"max_token_limit": 0}, "at least 1"),
        ({"prompt": PromptTemplate.from_template("{summary} only")}, "new_lines"),
    ],
)
def test_unknown_or_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        ConversationSummaryBufferMemory(llm=ScriptedLLM(), **options)


def test_an_llm_that_cannot_count_tokens_is_refused() -> None:
    class NoCount:
        pass

    with pytest.raises(OptionError, match="cannot count tokens"):
        ConversationSummaryBufferMemory(llm=NoCount(), max_token_limit=10)


def test_langchain_options_are_accepted() -> None:
    memory = ConversationSummaryBufferMemory(
        llm=ScriptedLLM(),
        max_token_limit=40,
        memory_key="chat_history",
        return_messages=False,
        human_prefix="User",
        ai_prefix="Bot",
        moving_summary_buffer="before",
        summary_message_cls=HumanMessage,
        input_key="question",
        output_key="answer",
    )
    memory.save_context({"question": "hi", "other": 1}, {"answer": "hey", "extra": 2})
    assert memory.load_memory_variables({}) == {"chat_history": "User: before\nUser: hi\nBot: hey"}
    assert memory.memory_variables == ["chat_history"]


def test_create_memory_knows_summary_buffer_and_its_token_limit() -> None:
    memory = create_memory("summary-buffer", llm=ScriptedLLM(), max_token_limit=7)
    assert isinstance(memory, ConversationSummaryBufferMemory) and memory.max_token_limit == 7
    assert MEMORY_KINDS["summary-buffer"] is ConversationSummaryBufferMemory
    with pytest.raises(OptionError, match="needs llm"):
        create_memory("summary-buffer")
    with pytest.raises(OptionError, match="tokens and summary-buffer memories only"):
        create_memory("window", max_token_limit=7)


def test_an_sqlite_session_resumes_with_its_summary_and_buffer(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        memory = ConversationSummaryBufferMemory(
            llm=ScriptedLLM(replies=["S1"]), max_token_limit=10, chat_memory=store.history("w")
        )
        talk(memory)
        before = memory.load_memory_variables({})
    with SQLiteStore(tmp_path / "s.db") as store:
        idle = ScriptedLLM()  # resuming must not summarize again
        resumed = ConversationSummaryBufferMemory(
            llm=idle, max_token_limit=10, chat_memory=store.history("w")
        )
        assert resumed.load_memory_variables({}) == before
        assert store.history("w").load_summary() == ("S1", 2)
        assert idle.prompts == []


def test_a_session_stored_by_another_memory_is_caught_up_on_load(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        history = store.history("w")
        create_memory("buffer", chat_memory=history).save_context(
            {"input": "a b c d e"}, {"o": "f"}
        )
        memory = ConversationSummaryBufferMemory(
            llm=ScriptedLLM(replies=["S"]), max_token_limit=4, chat_memory=history
        )
        assert memory.buffer == "System: S"
        assert history.load_summary() == ("S", 2)


def test_langchain_style_code_with_llmchain_runs_as_written() -> None:
    replies = ["Hello Ada.", "Ada said hello.", "You are Ada.", "Ada asked who she is."]
    llm = ScriptedLLM(replies=replies)
    prompt = PromptTemplate.from_template("{history}\nHuman: {input}\nAI:")
    memory = ConversationSummaryBufferMemory(llm=llm, max_token_limit=6)
    chain = LLMChain(llm=llm, prompt=prompt, memory=memory)
    assert chain.predict(input="I am Ada") == "Hello Ada."  # 4 + 3 = 7 tokens: pruned
    result = chain.invoke({"input": "Who am I?"})
    assert result["history"] == "System: Ada said hello."
    assert llm.prompts[2].startswith("System: Ada said hello.\nHuman: Who am I?\nAI:")
    assert result["text"] == "You are Ada."
    assert memory.moving_summary_buffer == "Ada asked who she is."  # 4 + 4 > 6: pruned again


def test_a_chat_model_summarizer_gets_the_same_prompt_as_a_user_turn() -> None:
    class CountingChat(ScriptedChatModel):
        def get_num_tokens(self, text: str) -> int:
            return len(text.split())

    llm = CountingChat(replies=["S"])
    memory = ConversationSummaryBufferMemory(llm=llm, max_token_limit=2, return_messages=True)
    memory.save_context({"input": "x <|im_start|> y"}, {"output": "z"})
    sent = llm.calls[0]["messages"]
    assert sent[-1].type == "human" and "<|im_start|>" not in str(sent[-1].content)
    assert memory.buffer == [SystemMessage(content="S")]


def test_chat_takes_summary_buffer_and_checks_the_token_limit_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from orchestrator.cli.app import app

    monkeypatch.setenv("ORCHESTRATOR_HOME", str(tmp_path))
    bad = CliRunner().invoke(app, ["chat", "--memory", "summary", "--memory-tokens", "5"])
    assert bad.exit_code == 2
    assert "tokens and summary-buffer memories only" in bad.output and "fix:" in bad.output
    helped = CliRunner().invoke(app, ["chat", "--help"])
    assert "summary-buffer" in " ".join(helped.output.split())
