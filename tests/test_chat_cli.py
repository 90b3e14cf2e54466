"""``orchestrator chat`` in-process: scripted (piped) mode, bad input, context overflow."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.errors import ContextOverflowError
from orchestrator.memory import Conversation, ConversationBufferMemory, SQLiteStore
from orchestrator.testing import ScriptedChatModel

FAST = ["--temperature", "0", "--seed", "0", "--max-tokens", "12"]


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ORCHESTRATOR_HOME", str(tmp_path))
    return tmp_path


def chat(args: list[str], stdin: str = ""):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["chat", *args], input=stdin)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory", "windw"], "did you mean 'window'"),
        (["--memory", "window", "--k", "0"], "at least 1"),
        (["--memory", "buffer", "--k", "3"], "window memory only"),
        (["--session", "../../etc/passwd"], "path characters"),
        (["--session", "a/b"], "path characters"),
    ],
)
def test_bad_options_get_a_clear_message_and_exit_2(
    home: Path, args: list[str], message: str
) -> None:
    result = chat(args, "hello\n")
    assert result.exit_code == 2
    assert message in result.output and "fix:" in result.output
    assert "Traceback" not in result.output
    assert not (home / "sessions.db").exists()


def test_a_corrupted_session_file_is_refused_and_kept(home: Path) -> None:
    store = home / "sessions.db"
    store.write_bytes(b"\x00garbage that is not sqlite" * 50)
    before = store.read_bytes()
    result = chat(["--session", "work"], "hello\n")
    assert result.exit_code == 2
    output = " ".join(result.output.split())  # rich wraps long paths at the terminal width
    assert "not a session store" in output and "mv " in output
    assert store.read_bytes() == before


@pytest.mark.integration
def test_piped_chat_prints_one_answer_per_line_and_stores_the_session(home: Path) -> None:
    lines = ["My name is {name} and {{braces}} stay text.", "", "What is 2 + 2?", "/bogus"]
    result = chat(
        [*FAST, "--session", "piped", "--memory", "window", "--k", "1"], "\n".join(lines) + "\n"
    )
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert len(out) == 2 and all(line.strip() for line in out)
    assert "unknown command /bogus" in result.stderr
    with SQLiteStore(home / "sessions.db") as store:
        messages = store.history("piped").messages
    assert [m.content for m in messages[::2]] == [lines[0], lines[2]]
    assert [m.content for m in messages[1::2]] == [line.strip() for line in out]


@pytest.mark.integration
def test_session_resumes_and_slash_commands_work_when_piped(home: Path) -> None:
    chat([*FAST, "--session", "s1"], "Remember the word pineapple.\n")
    commands = ["/history", "/memory", "/save {p}", "/save {p}", "/session", "/reset"]
    commands += ["/history", "/session a/b", "/session s2", "/exit", "not sent"]
    script = "\n".join(commands) + "\n"
    saved = home / "t.json"
    result = chat([*FAST, "--session", "s1", "--memory", "summary"], script.format(p=saved))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "you: Remember the word pineapple." in out
    assert "[summary memory, session 's1'] the model will see:" in out
    assert "system: " in out.split("the model will see:")[1]  # a summary, not the transcript
    assert "saved 2 messages" in out and "already exists" in result.stderr
    assert "s1: 2 messages" in out and "session 's1' cleared (2 messages forgotten)" in out
    assert "(session 's1' is empty)" in out
    assert "session name 'a/b' contains path characters" in result.stderr
    assert out.rstrip().endswith(f"session 's2' (0 messages) in {home / 'sessions.db'}")
    assert '"content": "Remember the word pineapple."' in saved.read_text()


def fake_conversation(replies: list[str], **kwargs) -> Conversation:  # type: ignore[no-untyped-def]
    llm = ScriptedChatModel(replies=replies)
    return Conversation(llm, ConversationBufferMemory(return_messages=True), **kwargs)


def test_conversation_stores_only_complete_answers() -> None:
    conv = fake_conversation(["Hello there friend.", "never finished answer"], system="Be brief.")
    assert conv.ask("hi") == "Hello there friend."
    stream = conv.stream("tell me more")
    next(stream)
    stream.close()  # what Ctrl-C does
    assert [m.content for m in conv.memory.messages] == ["hi", "Hello there friend."]
    sent = conv.llm.calls[1]["messages"]
    assert isinstance(sent[0], SystemMessage) and sent[-1].content == "tell me more"


def test_a_message_builder_can_be_plugged_in() -> None:
    def with_sources(text: str, history: list[BaseMessage]) -> list[BaseMessage]:
        return [SystemMessage("Sources: [1] the sky is blue"), *history, HumanMessage(text)]

    conv = fake_conversation(["Blue [1]."], build=with_sources)
    conv.ask("What colour is the sky?")
    assert conv.llm.calls[0]["messages"][0].content == "Sources: [1] the sky is blue"


@pytest.mark.integration
def test_a_history_longer_than_the_context_is_trimmed_not_a_crash() -> None:
    from orchestrator import ChatLlamaCpp

    llm = ChatLlamaCpp(n_ctx=256, temperature=0.0, seed=0, max_tokens=16)
    memory = ConversationBufferMemory(return_messages=True)
    for i in range(12):
        memory.save_context({"input": f"Fact {i}: " + "the river is long " * 4}, {"output": "ok"})
    everything = [*memory.messages, HumanMessage("Say hi.")]
    with pytest.raises(ContextOverflowError, match="context window is 256"):
        llm.invoke(everything)
    conv = Conversation(llm, memory)
    sent = conv.next_messages("Say hi.")
    assert conv.last_dropped > 0 and isinstance(sent[0], HumanMessage)
    assert conv.ask("Say hi.")
    assert len(memory.messages) == 26  # nothing stored was dropped
    assert isinstance(memory.messages[-1], AIMessage)
    cut = conv.last_dropped
    conv.ask("Say bye.")  # the same cut is kept, so the prompt prefix is reused from the cache
    assert conv.newly_dropped == 0 and conv.last_dropped == cut
    usage = conv.last_usage
    assert usage["input_token_details"]["cache_read"] > usage["input_tokens"] // 2


@pytest.mark.integration
def test_history_as_messages_is_not_prefilled_again_next_turn() -> None:
    from orchestrator import ChatLlamaCpp

    llm = ChatLlamaCpp(temperature=0.0, seed=0, max_tokens=8)
    conv = Conversation(
        llm,
        ConversationBufferMemory(return_messages=True),
        system="Answer briefly. You are a friendly assistant who knows the names of colours.",
    )
    conv.ask("Name a colour.")
    first_prompt = conv.last_usage["input_tokens"]
    conv.ask("Name another one.")
    # the first prompt is reused from the KV cache in whole prefill chunks (the rest and the
    # answer are evaluated again, so the answer does not depend on the cache)
    chunk = llm.engine.prefill_chunk
    cached = conv.last_usage["input_token_details"]["cache_read"]
    assert cached >= first_prompt - first_prompt % chunk > 0


def test_piped_answers_with_newlines_stay_on_one_line() -> None:
    import io

    from orchestrator.cli.chat import ChatOptions, ChatState, run_pipe
    from orchestrator.memory import history_messages

    llm = ScriptedChatModel(replies=["First line.\nSecond line.\r\n\nThird.", "ok"])
    out = io.StringIO()
    state = ChatState(llm=llm, options=ChatOptions(), build_factory=history_messages, out=out)
    state.open(None)
    run_pipe(state, io.StringIO("tell me\n\nmore\n/exit\nnot read\n"))
    assert out.getvalue().splitlines() == ["First line. Second line.  Third.", "ok"]
    assert len(llm.calls) == 2
