"""Unit tests of the server's parts that need no model: bind policy, request schemas, error
objects, response shapes, usage accounting, the auth / size middleware. (The import boundary
is test_import_contract.py's.)"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult
from pydantic import ValidationError

from orchestrator.errors import OptionError
from orchestrator.server.config import ServerConfig, check_bind, is_loopback
from orchestrator.server.errors import APIError, install_handlers, param_path, validation_error
from orchestrator.server.generation import Piece, Tally, Tokens, UsageTally
from orchestrator.server.metrics import Metrics
from orchestrator.server.middleware import GateMiddleware
from orchestrator.server.responses import ChatShape, Collected, CompletionShape, embedding_list
from orchestrator.server.schemas import ChatCompletionRequest, CompletionRequest


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.0.1", True), ("localhost", True), ("::1", True),
     ("[::1]", True), ("0.0.0.0", False), ("::", False), ("10.0.0.2", False),
     ("my-host.lan", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_check_bind_needs_a_key_beyond_loopback() -> None:
    check_bind(ServerConfig(host="127.0.0.1"))
    check_bind(ServerConfig(host="0.0.0.0", api_key="k"))
    with pytest.raises(OptionError, match=r"refusing to listen on 0\.0\.0\.0") as caught:
        check_bind(ServerConfig(host="0.0.0.0"))
    assert caught.value.fix and "--api-key" in caught.value.fix


def test_server_config_rejects_inconsistent_options() -> None:
    from orchestrator.agents.pipelines import spec_from_options

    with pytest.raises(OptionError, match="unknown tool 'calc'"):
        spec_from_options("agent", tools="calc")
    with pytest.raises(OptionError, match="knowledge_base tool needs an index"):
        spec_from_options("agent", tools=["knowledge_base"])
    with pytest.raises(OptionError, match="over --max-tokens-limit"):
        ServerConfig(default_max_tokens=100, max_tokens_limit=50)


def chat_body(**fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


def test_optional_openai_fields_are_accepted_and_unsupported_values_named() -> None:
    body = chat_body(user="u", metadata={"a": "b"}, store=True, n=1, logprobs=False,
                     parallel_tool_calls=False, service_tier="auto")
    assert body.unsupported() is None
    assert chat_body(n=2).unsupported() == ("n", 2)
    assert chat_body(frequency_penalty=0.3).unsupported() == ("frequency_penalty", 0.3)
    assert CompletionRequest(model="m", prompt="x", best_of=3).unsupported() == ("best_of", 3)
    with pytest.raises(ValidationError):
        chat_body(temprature=1)


def test_response_format_and_tool_choice_become_library_options() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}
    assert chat_body(response_format=fmt).response_format_value() == {
        "type": "json_schema", "schema": schema
    }
    assert chat_body(response_format={"type": "text"}).response_format_value() is None
    choice = {"type": "function", "function": {"name": "f"}}
    assert chat_body(tool_choice=choice).tool_choice_value() == choice
    with pytest.raises(ValidationError, match=r"needs json_schema\.schema"):
        chat_body(response_format={"type": "json_schema"})


def test_param_path_and_validation_errors_read_like_openai() -> None:
    assert param_path(("body", "messages", 0, "role")) == "messages[0].role"
    assert param_path(("body", "prompt", "list[str]", 1)) == "prompt[1]"
    extra = validation_error([{"loc": ("body", "foo"), "msg": "x", "type": "extra_forbidden"}])
    assert (extra.status, extra.param, extra.code) == (400, "foo", "unknown_parameter")
    assert extra.message == "Unrecognized request argument supplied: foo"
    body = APIError(401, "no key", code="invalid_api_key", fix="send it").body()
    assert body["error"] == {"message": "no key. Fix: send it", "type": "invalid_request_error",
                             "param": None, "code": "invalid_api_key", "fix": "send it"}


def test_collected_pieces_make_a_chat_completion_with_tool_calls() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    got = Collected()
    for piece in [
        Piece(fields={"step": {"step": 1}}),
        Piece(tool_calls=[call]),
        Piece(finish_reason="tool_calls", usage=Tokens(5, 3, 2), fields={"stopped_because": "x"}),
    ]:
        got.add(piece)
    whole = ChatShape("m").whole(got)
    assert whole["choices"][0]["message"] == {
        "role": "assistant", "content": None, "refusal": None, "tool_calls": [call]
    }
    assert whole["choices"][0]["finish_reason"] == "tool_calls"
    assert whole["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8,
                              "prompt_tokens_details": {"cached_tokens": 2}}
    assert whole["steps"] == [{"step": 1}] and whole["stopped_because"] == "x"
    chunk = ChatShape("m").chunks(Piece(tool_calls=[call]))[0]
    assert chunk["choices"][0]["delta"] == {"tool_calls": [{"index": 0, **call}]}
    assert ChatShape("m").chunks(Piece()) == []


def test_completion_shape_keeps_one_choice_per_prompt() -> None:
    got = Collected()
    for piece in [Piece(text="a", index=0), Piece(text="b", index=1),
                  Piece(finish_reason="length", index=1, usage=Tokens(1, 1))]:
        got.add(piece)
    choices = CompletionShape("m").whole(got, 2)["choices"]
    assert [(c["text"], c["finish_reason"]) for c in choices] == [("a", "stop"), ("b", "length")]


def test_base64_embeddings_are_little_endian_float32() -> None:
    vectors = np.array([[0.5, -1.25, 3.0]], dtype=np.float32)
    data = embedding_list("e", vectors, "base64", 4)
    decoded = np.frombuffer(base64.b64decode(data["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_array_equal(decoded, vectors[0])
    assert embedding_list("e", vectors, "float", 4)["data"][0]["embedding"] == [0.5, -1.25, 3.0]


def test_usage_tally_adds_chat_completion_and_llm_output_usage() -> None:
    tally = UsageTally()
    message = AIMessage("x", usage_metadata={"input_tokens": 10, "output_tokens": 4,
                                             "total_tokens": 14,
                                             "input_token_details": {"cache_read": 6}})
    tally.on_llm_end(LLMResult(generations=[[ChatGeneration(message=message)]]))
    info = {"usage": {"prompt_tokens": 3, "completion_tokens": 2, "cached_tokens": 1}}
    tally.on_llm_end(LLMResult(generations=[[Generation(text="y", generation_info=info)]]))
    tally.on_llm_end(LLMResult(generations=[[Generation(text="z")]],
                               llm_output={"token_usage": {"prompt_tokens": 7,
                                                           "completion_tokens": 1}}))
    assert tally.tokens == Tokens(prompt=20, completion=7, cached=7)


def test_usage_tally_keeps_the_last_calls_finish_reason_in_openai_terms() -> None:
    """A pipeline's finish_reason is that of its last model call (the answer's): ``length``
    when it hit max_tokens, whether a chat model or a completion model reports it."""
    tally = UsageTally()
    assert tally.finish_reason == "stop"  # no model call (RAG with nothing retrieved)
    cut = AIMessage("x", response_metadata={"finish_reason": "length"})
    tally.on_llm_end(LLMResult(generations=[[ChatGeneration(message=cut)]]))
    assert tally.finish_reason == "length"
    info = {"finish_reason": "stop"}
    tally.on_llm_end(LLMResult(generations=[[Generation(text="y", generation_info=info)]]))
    assert tally.finish_reason == "stop"
    timed_out = {"finish_reason": "timeout"}
    tally.on_llm_end(LLMResult(generations=[[Generation(text="z", generation_info=timed_out)]]))
    assert tally.finish_reason == "length"


def test_a_generation_closed_early_is_counted_as_cancelled_from_its_text() -> None:
    metrics = Metrics.create()
    tally = Tally(metrics, "m", count_tokens=lambda text: len(text.split()))

    def pieces() -> Iterator[str]:
        with tally.generation():
            for word in ["one ", "two ", "three "]:
                tally.text.append(word)
                yield word

    stream = pieces()
    next(stream), next(stream)
    stream.close()
    assert metrics.generations.labels("m", "cancelled")._value.get() == 1
    assert metrics.completion_tokens.labels("m")._value.get() == 2


def gate_app(**options: object) -> TestClient:
    app = FastAPI()
    metrics = Metrics.create()
    install_handlers(app, lambda request, error: None)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/echo")
    async def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    app.add_middleware(GateMiddleware, metrics=metrics, **options)  # type: ignore[arg-type]
    return TestClient(app)


def test_gate_checks_the_key_everywhere_but_health() -> None:
    client = gate_app(api_key="k", max_body_bytes=100)
    assert client.get("/health").status_code == 200
    refused = client.post("/echo", json={"a": "b"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    wrong = client.post("/echo", json={"a": "b"}, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401
    ok = client.post("/echo", json={"a": "b"}, headers={"Authorization": "Bearer k"})
    assert ok.json() == {"a": "b"}


def test_gate_refuses_large_bodies_declared_or_chunked() -> None:
    client = gate_app(api_key=None, max_body_bytes=100)
    assert client.post("/echo", json={"a": "b" * 200}).status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b'{"a": "'
        for _ in range(20):
            yield b"x" * 10
        yield b'"}'

    response = client.post("/echo", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "100 bytes" in response.json()["error"]["message"]
