"""Everything through a REAL llama.cpp server (``python -m llama_cpp.server`` on the embedded
GGUF, one per session): chains, structured output, agents (grammar and JSON-schema steps),
RAG, memory with a SQLite session, the Ragas judge, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from pydantic import BaseModel, Field
from remote_support import LlamaServer, cli_env, llama_server  # noqa: F401  (fixture)

from orchestrator.remote import remote_chat_model
from orchestrator.remote_model import RemoteChatModel

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCS = [
    {"doc_id": "tower", "text": "The Eiffel Tower is 330 metres tall and stands in Paris."},
    {"doc_id": "bridge", "text": "The Golden Gate Bridge spans the strait in San Francisco."},
    {"doc_id": "wall", "text": "The Great Wall of China is thousands of kilometres long."},
]


@pytest.fixture(scope="module")
def remote(llama_server: LlamaServer) -> RemoteChatModel:  # noqa: F811
    return remote_chat_model(
        llama_server.base_url, llama_server.model, temperature=0.0, seed=0, max_tokens=48
    )


@pytest.fixture(scope="module")
def bm25_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orchestrator.retrieval import build_index

    path = tmp_path_factory.mktemp("remote-rag") / "index"
    build_index(DOCS, path, modes=("bm25",))
    return path


def test_chain_as_llmchain_and_as_a_pipe(remote: RemoteChatModel) -> None:
    from orchestrator.chains import LLMChain
    from orchestrator.prompts.templates import PromptTemplate

    prompt = PromptTemplate.from_template("Give one word for a {thing}.")
    result = LLMChain(llm=remote, prompt=prompt, output_key="word").invoke({"thing": "dog"})
    assert result["thing"] == "dog" and result["word"].strip()
    reply = (prompt | remote.bind(max_tokens=4)).invoke({"thing": "cat"})
    assert isinstance(reply, AIMessage)
    # max_tokens reached the server under the name it reads (it would otherwise run on)
    assert 0 < reply.usage_metadata["output_tokens"] <= 4  # type: ignore[index]


def test_grammar_and_structured_output(remote: RemoteChatModel) -> None:
    assert remote.structured_mode() == "grammar"  # llama.cpp's server applies grammars
    answer = remote.invoke("Is Paris in France?", grammar='root ::= "yes" | "no"').content
    assert answer in ("yes", "no")

    class City(BaseModel):
        name: str = Field(max_length=30)
        country: str = Field(max_length=30)

    city = remote.with_structured_output(City).invoke("Paris is a city in France.")
    assert isinstance(city, City) and city.name


def _calculator_run(remote: RemoteChatModel, step_mode: str) -> tuple[dict, object]:
    from orchestrator.agents import AgentExecutor, create_react_agent, load_tools

    tools = load_tools(["calculator"])
    agent = create_react_agent(remote, tools, step_mode=step_mode)  # type: ignore[arg-type]
    executor = AgentExecutor(agent=agent, tools=tools, max_iterations=2, handle_parsing_errors=True)
    return executor.invoke({"input": "What is 1234 * 5678?"}), executor.last_trace


def test_agent_steps_under_the_servers_grammar(
    remote: RemoteChatModel,
    llama_server: LlamaServer,  # noqa: F811
) -> None:
    result, trace = _calculator_run(remote, "auto")
    assert result["step_mode"] == "grammar" and trace.step_mode == "grammar"  # type: ignore[attr-defined]
    assert trace.model == f"smollm2 at {llama_server.base_url}"  # type: ignore[attr-defined]
    assert result["steps"], result
    for step in result["steps"]:  # the grammar admits only well-formed steps and known tools
        assert step["parse_error"] is False and step["action"] == "calculator"
    assert result["output"]


def test_agent_steps_under_a_json_schema(remote: RemoteChatModel) -> None:
    result, trace = _calculator_run(remote, "json_schema")
    assert result["step_mode"] == "json_schema" == trace.step_mode  # type: ignore[attr-defined]
    raws = [s.raw for s in trace.steps]  # type: ignore[attr-defined]
    assert all(raw.startswith("Thought: ") for raw in raws), raws  # JSON turned into ReAct
    assert all(not s["parse_error"] for s in result["steps"]), result["steps"]
    assert result["output"]


def test_rag_over_a_bm25_index(remote: RemoteChatModel, bm25_index: Path) -> None:
    from orchestrator.chains import rag_chain
    from orchestrator.retrieval import open_retriever

    chain = rag_chain(remote, open_retriever(bm25_index, mode="bm25", k=2))
    result = chain.invoke({"question": "How tall is the Eiffel Tower?"})
    assert result["sources"][0]["doc_id"] == "tower"
    assert result["answer"].strip()


def test_memory_over_two_turns_in_a_sqlite_session(remote: RemoteChatModel, tmp_path: Path) -> None:
    from orchestrator.memory import Conversation, SQLiteStore, create_memory

    store_path = tmp_path / "sessions.db"
    with SQLiteStore(store_path) as store:
        memory = create_memory("buffer", chat_memory=store.history("remote"), return_messages=True)
        conversation = Conversation(remote, memory)
        first = conversation.ask("Hi! My name is Maarten.")
        sent = conversation.next_messages("What is my name?")
        assert [m.content for m in sent[:2]] == ["Hi! My name is Maarten.", first]
        conversation.ask("What is my name?")
    with SQLiteStore(store_path) as store:
        messages = store.history("remote").messages
    assert [m.type for m in messages] == ["human", "ai", "human", "ai"]
    assert messages[2].content == "What is my name?" and all(m.content for m in messages)


def test_tokens_memory_counts_approximately(llama_server: LlamaServer) -> None:  # noqa: F811
    from orchestrator.memory import create_memory

    fresh = remote_chat_model(llama_server.base_url)  # warns on its first count
    memory = create_memory("tokens", llm=fresh, max_token_limit=12, return_messages=True)
    memory.save_context({"input": "a" * 40}, {"output": "b" * 40})  # ~13 tokens each
    memory.save_context({"input": "hi"}, {"output": "hello"})
    with pytest.warns(UserWarning, match="approximate"):
        kept = memory.context_messages()
    assert [m.content for m in kept] == ["hi", "hello"]


# -- the command line -------------------------------------------------------------------------


def _cli(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "orchestrator.cli.app", *args]
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, env=cli_env(**env), timeout=600
    )


def test_cli_ask_with_base_url_and_model(llama_server: LlamaServer) -> None:  # noqa: F811
    url = llama_server.base_url.removesuffix("/v1")  # a bare host:port gets /v1
    done = _cli("ask", "What is the capital of France?", "--base-url", url, "--model", "smollm2",
                "--json", "--max-tokens", "16", "--temperature", "0")  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["model"] == f"smollm2 at {llama_server.base_url}" and data["answer"]


def test_cli_chat_piped_from_the_environment(
    llama_server: LlamaServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    from orchestrator.memory import SQLiteStore

    store = tmp_path / "chat.db"
    done = _cli("chat", "--session", "s1", "--store", str(store), "--max-tokens", "24",
                "--temperature", "0", stdin="Hi, I am Ana.\nWhat is my name?\n",
                ORCHESTRATOR_BASE_URL=llama_server.base_url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 2  # one answer line per input line
    with SQLiteStore(store) as opened:
        assert len(opened.history("s1").messages) == 4


def test_cli_agent_and_rag(llama_server: LlamaServer, bm25_index: Path) -> None:  # noqa: F811
    url = llama_server.base_url
    done = _cli("agent", "What is 2**10?", "--base-url", url, "--json", "--max-steps", "2")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["step_mode"] == "grammar"
    done = _cli("rag", "How tall is the Eiffel Tower?", "--index", str(bm25_index),
                "--mode", "bm25", "--base-url", url, "--json", "--max-tokens", "32")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sources"][0]["doc_id"] == "tower"


def test_cli_eval_rag_answers_and_judges_on_the_server(
    llama_server: LlamaServer,  # noqa: F811
    bm25_index: Path,
    tmp_path: Path,
) -> None:
    """No response in the question set: the served model answers (RAG over the index) and,
    as Ragas' judge, scores it under the server's grammar, so the verdicts parse."""
    dataset = tmp_path / "qa.jsonl"
    question = {
        "id": "eiffel",
        "user_input": "How tall is the Eiffel Tower?",
        "reference": "The Eiffel Tower is 330 metres tall.",
    }
    dataset.write_text(json.dumps(question) + "\n", encoding="utf-8")
    done = _cli("eval", "rag", "--dataset", str(dataset), "--index", str(bm25_index),
                "--mode", "bm25", "--metrics", "faithfulness", "--max-tokens", "32",
                "--judge-max-tokens", "160", "--base-url", llama_server.base_url,
                "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["judge"] == f"smollm2 at {llama_server.base_url}"
    assert not data["failed"], data["failed"]
    assert 0.0 <= data["samples"][0]["scores"]["faithfulness"] <= 1.0
