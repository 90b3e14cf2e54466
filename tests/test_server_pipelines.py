"""The project's pipelines as models of ``orchestrator serve`` (rag, agent, story), and
sessions kept in the SQLite store: each answers what the same chain answers in process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_harness import Server, running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCS = {
    "zorblat.md": "Zorblat is a small frozen moon of Neptune. Its surface is covered in blue ice.",
    "bridge.md": "The Golden Gate Bridge is a suspension bridge in San Francisco.",
    "bread.md": "Sourdough bread is leavened with a culture of wild yeast and bacteria.",
}
GREEDY = {"temperature": 0.0, "seed": 0}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orchestrator.retrieval import build_index

    root = tmp_path_factory.mktemp("rag")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    build_index([docs], root / "index", progress=False)
    return root / "index"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, index_dir: Path) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("serve")
    with running_server(
        tmp, "--index", str(index_dir), "--tools", "calculator,knowledge_base",
        "--store", str(tmp / "sessions.db"),
    ) as running:
        yield running


def ask(server: Server, model: str, text: str, **options: Any) -> Any:
    client: Any = server.client()
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], **options
    )


def test_models_list_rag_when_the_server_has_an_index(server: Server, model_id: str) -> None:
    client: Any = server.client()
    assert [m.id for m in client.models.list().data] == [
        model_id, "agent", "story", "rag", "all-MiniLM-L6-v2"
    ]


def test_rag_answers_like_the_rag_chain_with_sources_and_citations(
    server: Server, index_dir: Path, chat_llm: Any
) -> None:
    from orchestrator.agents.pipelines import build, spec_from_options
    from orchestrator.chains.rag import NO_ANSWER, cited_numbers

    question = "What is Zorblat covered in?"
    reply = ask(server, "rag", question, max_tokens=24, **GREEDY)
    spec = spec_from_options("rag", index=index_dir)
    local = build(spec, llm=chat_llm.bind(max_tokens=24, **GREEDY)).invoke({"question": question})
    extra = reply.model_extra
    assert reply.choices[0].message.content == local["answer"]
    assert [s["doc_id"] for s in extra["sources"]] == [s["doc_id"] for s in local["sources"]]
    assert extra["sources"][0]["doc_id"].endswith("zorblat.md")
    assert extra["sources"][0]["n"] == 1 and "blue ice" in extra["sources"][0]["text"]
    assert extra["citations"] == cited_numbers(local["answer"], len(local["sources"]))
    assert reply.usage.completion_tokens > 0 and reply.usage.prompt_tokens > 0
    off_topic = ask(server, "rag", "How do jet engines produce thrust?", max_tokens=24)
    assert off_topic.choices[0].message.content == NO_ANSWER
    assert off_topic.model_extra["sources"] == [] and off_topic.usage.total_tokens == 0


def test_rag_stream_sends_sources_first(server: Server) -> None:
    client: Any = server.client()
    chunks = list(
        client.chat.completions.create(
            model="rag",
            messages=[{"role": "user", "content": "Where is the Golden Gate Bridge?"}],
            max_tokens=16,
            stream=True,
            **GREEDY,
        )
    )
    with_sources = [i for i, c in enumerate(chunks) if "sources" in (c.model_extra or {})]
    first_text = next(i for i, c in enumerate(chunks) if c.choices and c.choices[0].delta.content)
    assert with_sources and with_sources[0] < first_text
    assert chunks[with_sources[0]].model_extra["sources"][0]["doc_id"].endswith("bridge.md")


def test_agent_returns_the_steps_of_the_in_process_agent(server: Server, index_dir: Path) -> None:
    from orchestrator import LlamaCpp
    from orchestrator.agents import AgentExecutor, create_react_agent, load_tools

    question = "What is 12 * 7?"
    reply = ask(server, "agent", question)
    llm = LlamaCpp(max_tokens=256, temperature=0.0, seed=0)
    tools = load_tools(["calculator", "knowledge_base"], llm=llm, index_dir=index_dir)
    local = AgentExecutor(
        agent=create_react_agent(llm, tools), tools=tools, handle_parsing_errors=True,
        max_iterations=5,
    ).invoke({"input": question})
    extra = reply.model_extra
    assert reply.choices[0].message.content == local["output"]
    assert extra["steps"] == local["steps"]
    assert extra["stopped_because"] == local["stopped_because"]
    assert reply.usage.completion_tokens > 0
    client: Any = server.client()
    chunks = list(client.chat.completions.create(
        model="agent", messages=[{"role": "user", "content": question}], stream=True
    ))
    streamed = [c.model_extra["step"] for c in chunks if "step" in (c.model_extra or {})]
    assert streamed, "the agent took no step: the comparison below would be empty"
    keys = ("thought", "action", "action_input", "observation")
    assert [{k: s[k] for k in keys} for s in streamed] == [
        {k: s[k] for k in keys} for s in local["steps"] if not s["parse_error"]
    ]
    assert chunks[-1].model_extra["steps"] == local["steps"]


def test_story_returns_the_story_chain_fields(server: Server, chat_llm: Any) -> None:
    from orchestrator.chains import story_chain

    summary = "a robot that learns to paint"
    reply = ask(server, "story", summary, max_tokens=12, **GREEDY)
    local = story_chain(chat_llm.bind(max_tokens=12)).invoke({"summary": summary})
    story = reply.model_extra["story"]
    assert story == {k: local[k] for k in ("summary", "title", "character", "story")}
    assert reply.choices[0].message.content == local["story"]
    assert 0 < reply.usage.completion_tokens <= 3 * 12


def test_session_keeps_the_conversation_in_the_store(
    server: Server, model_id: str, chat_llm: Any
) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    from orchestrator.memory import SQLiteStore
    from orchestrator.memory.conversation import prompt_token_count

    session = {"extra_body": {"session_id": "work-1"}}
    first = ask(server, model_id, "My name is Zorblat.", max_tokens=8, **session, **GREEDY)
    second = ask(server, model_id, "What is my name?", max_tokens=8, **session, **GREEDY)
    args = server.process.args
    assert isinstance(args, list)
    with SQLiteStore(args[args.index("--store") + 1]) as store:
        stored = store.history("work-1").messages
    answers = [first.choices[0].message.content, second.choices[0].message.content]
    assert [(type(m), m.content) for m in stored] == [
        (HumanMessage, "My name is Zorblat."),
        (AIMessage, answers[0]),
        (HumanMessage, "What is my name?"),
        (AIMessage, answers[1]),
    ]
    history = [*stored[:2], HumanMessage("What is my name?")]
    assert second.usage.prompt_tokens == prompt_token_count(chat_llm, history)


def test_session_requests_must_send_only_the_new_message(server: Server, model_id: str) -> None:
    from openai import BadRequestError

    client: Any = server.client()
    whole = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Again"},
    ]
    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(
            model=model_id, messages=whole, extra_body={"session_id": "s2"}
        )
    assert caught.value.body["param"] == "messages"
    with pytest.raises(BadRequestError) as bad_name:
        ask(server, model_id, "Hi", extra_body={"session_id": "../etc/passwd"})
    assert bad_name.value.body["param"] == "session_id"
    with pytest.raises(BadRequestError) as pipeline:
        ask(server, "story", "Hi", extra_body={"session_id": "s3"})
    assert pipeline.value.body["param"] == "session_id"


def test_rag_pieces_carry_the_strategy_trace(index_dir: Path, chat_llm: Any) -> None:
    """A strategy's trace (here multi-query's queries) reaches the response's fields, before
    the answer, as `orchestrator rag --json` prints it (in process: the server's own code)."""
    from orchestrator.agents.pipelines import spec_from_options
    from orchestrator.server.backends import RagPipeline
    from orchestrator.server.generation import Tally
    from orchestrator.server.metrics import Metrics
    from orchestrator.server.pipelines import rag_pieces

    spec = spec_from_options(
        "rag", index=index_dir, strategy="multi-query", strategy_options={"n_queries": 1}
    )
    question = "What is Zorblat covered in?"
    tally = Tally(Metrics.create(), "rag")
    pieces = list(
        rag_pieces(chat_llm, RagPipeline(spec), question, {"max_tokens": 12, **GREEDY}, tally)
    )
    fields: dict[str, Any] = {}
    for piece in pieces:
        fields.update(piece.fields or {})
    assert fields["strategy"] == "multi_query"
    assert fields["queries"][0] == question and len(fields["queries"]) == 2
    first_trace = next(i for i, p in enumerate(pieces) if "queries" in (p.fields or {}))
    first_text = next(i for i, p in enumerate(pieces) if p.text)
    assert first_trace < first_text and fields["sources"]


@pytest.mark.parametrize("kind", ["story", "rag"])
def test_a_pipeline_answer_cut_at_max_tokens_finishes_with_length(
    kind: str, index_dir: Path, chat_llm: Any
) -> None:
    """As OpenAI does: ``length`` when the answer hit max_tokens, ``stop`` when it ended
    (in process: the server's own code)."""
    from orchestrator.agents.pipelines import spec_from_options
    from orchestrator.server.backends import RagPipeline
    from orchestrator.server.generation import Tally
    from orchestrator.server.metrics import Metrics
    from orchestrator.server.pipelines import rag_pieces, story_pieces

    def finish(max_tokens: int) -> str | None:
        tally = Tally(Metrics.create(), kind)
        options = {"max_tokens": max_tokens, **GREEDY}
        if kind == "story":
            pieces = story_pieces(chat_llm, "a robot that paints", options, tally)
        else:
            rag = RagPipeline(spec_from_options("rag", index=index_dir))
            pieces = rag_pieces(chat_llm, rag, "What is Zorblat covered in?", options, tally)
        return list(pieces)[-1].finish_reason

    assert finish(2) == "length"
    if kind == "rag":  # a short answer ends by itself
        assert finish(64) == "stop"
