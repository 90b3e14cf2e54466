"""Bad requests to a real ``orchestrator serve``: every one is a 4xx with an OpenAI-style error
object naming the problem (never a 500, never a traceback); limits on size and max_tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from server_harness import Server, running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    args = ("--max-tokens-limit", "64", "--default-max-tokens", "8", "--max-body-bytes", "60000")
    with running_server(tmp_path_factory.mktemp("serve"), *args) as running:
        yield running


def post(server: Server, path: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{server.v1}{path}",
        content=content,
        headers={"Content-Type": "application/json"},
        timeout=120,
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert "Traceback" not in response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return error


def test_unknown_model_is_404_naming_the_models(server: Server, model_id: str) -> None:
    client: Any = server.client()
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=HI)
    body = caught.value.body
    assert body["code"] == "model_not_found" and body["param"] == "model"
    assert "'gpt-4o'" in body["message"] and model_id in body["message"]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


@pytest.mark.parametrize(
    ("change", "param", "code"),
    [
        ({"tempreature": 0.5}, "tempreature", "unknown_parameter"),
        ({"temperature": "hot"}, "temperature", "invalid_value"),
        ({"temperature": 3}, "temperature", "invalid_value"),
        ({"max_tokens": 0}, "max_tokens", "invalid_value"),
        ({"messages": []}, "messages", "invalid_value"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
        ({"messages": [{"role": "user", "content": "x", "extra": 1}]}, "messages[0].extra",
         "unknown_parameter"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
         "messages[0]", "invalid_value"),
        ({"n": 2}, "n", "unsupported_parameter"),
        ({"logprobs": True}, "logprobs", "unsupported_parameter"),
        ({"presence_penalty": 0.5}, "presence_penalty", "unsupported_parameter"),
        ({"max_tokens": 65}, "max_tokens", "invalid_value"),
        ({"tool_choice": "required"}, "tool_choice", "invalid_value"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
            "type": "object", "properties": {"a": {"type": "frobnicate"}}}}}},
         "response_format.json_schema.schema", "invalid_value"),
        ({"response_format": {"type": "xml"}}, "response_format.type", "invalid_value"),
        ({"messages": [{"role": "assistant", "content": None, "tool_calls": [{
            "id": "c1", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]},
          {"role": "user", "content": "x"}]},
         "messages[0].tool_calls[0].function.arguments", "invalid_value"),
    ],
)
def test_bad_chat_fields_are_400_naming_the_field(
    server: Server, model_id: str, change: dict[str, Any], param: str, code: str
) -> None:
    response = post(server, "/chat/completions", {"model": model_id, "messages": HI, **change})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["param"], error["code"]) == (param, code)
    assert error["type"] == "invalid_request_error" and error["fix"]


def test_max_tokens_limit_names_the_limit(server: Server, model_id: str) -> None:
    client: Any = server.client()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model_id, messages=HI, max_tokens=1000)
    assert "limit of 64" in caught.value.body["message"]
    reply = client.chat.completions.create(model=model_id, messages=HI)
    assert reply.usage.completion_tokens <= 8  # --default-max-tokens when absent


def test_standard_optional_fields_are_accepted(server: Server, model_id: str) -> None:
    body = {
        "model": model_id, "messages": HI, "max_completion_tokens": 2, "user": "u1",
        "metadata": {"k": "v"}, "store": False, "n": 1, "logprobs": False,
        "presence_penalty": 0, "frequency_penalty": 0, "parallel_tool_calls": True,
        "stream_options": None, "service_tier": "auto", "top_k": 20, "min_p": 0.1,
        "repeat_penalty": 1.0,
    }
    response = post(server, "/chat/completions", body)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] <= 2


def test_broken_json_and_non_object_bodies_are_400(server: Server) -> None:
    assert error_of(post(server, "/chat/completions", b"{nope"))["code"] == "invalid_json"
    response = post(server, "/chat/completions", [1, 2])
    assert response.status_code == 400 and error_of(response)["code"] == "invalid_value"


def test_unreadable_bodies_say_why(server: Server, model_id: str) -> None:
    deep = post(server, "/chat/completions", b"[" * 5000 + b"]" * 5000)
    assert "nests too deeply" in error_of(deep)["message"]
    assert error_of(deep)["code"] == "invalid_json"
    broken = error_of(post(server, "/chat/completions", b'{"model": 1,'))
    assert broken["code"] == "invalid_json" and "at character 12" in broken["message"]
    text = httpx.post(f"{server.v1}/chat/completions", content=b"hi", timeout=30,
                      headers={"Content-Type": "text/plain"})
    assert text.status_code == 400
    assert "must be a JSON object" in error_of(text)["message"]
    assert "Content-Type: application/json" in error_of(text)["fix"]
    odd = post(server, "/chat/completions", {"model": model_id, "messages": HI, "a[0]": 1})
    assert (error_of(odd)["param"], error_of(odd)["code"]) == ("a[0]", "unknown_parameter")


def test_a_prompt_over_the_context_window_is_400_also_when_streamed(
    server: Server, model_id: str
) -> None:
    long = [{"role": "user", "content": "word " * 5000}]
    for stream in (False, True):
        response = post(
            server, "/chat/completions", {"model": model_id, "messages": long, "stream": stream}
        )
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "context_length_exceeded" and "context window" in error["message"]


def test_body_over_the_size_limit_is_413(server: Server, model_id: str) -> None:
    big = {"model": model_id, "messages": [{"role": "user", "content": "x" * 70000}]}
    response = post(server, "/chat/completions", big)
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"
    assert "60000 bytes" in error_of(response)["message"]


def test_pipelines_refuse_what_only_the_gguf_model_does(server: Server) -> None:
    body = {"model": "story", "messages": HI, "response_format": {"type": "json_object"}}
    response = post(server, "/chat/completions", body)
    assert response.status_code == 400 and error_of(response)["param"] == "response_format"
    response = post(server, "/completions", {"model": "agent", "prompt": "x"})
    assert response.status_code == 400 and error_of(response)["code"] == "model_not_supported"


def test_bad_completion_and_embedding_requests(server: Server, model_id: str) -> None:
    cases = [
        ("/completions", {"model": model_id, "prompt": [1, 2, 3]}, "prompt"),
        ("/completions", {"model": model_id, "prompt": "x", "suffix": "y"}, "suffix"),
        ("/completions", {"model": model_id, "prompt": ["a", "b"], "stream": True}, "prompt"),
        ("/embeddings", {"model": model_id, "input": "x"}, "model"),
        ("/embeddings", {"model": "all-MiniLM-L6-v2", "input": ""}, "input"),
        ("/embeddings", {"model": "all-MiniLM-L6-v2", "input": "x", "dimensions": 8},
         "dimensions"),
    ]
    for path, body, param in cases:
        response = post(server, path, body)
        assert response.status_code == 400, (path, body, response.text)
        assert error_of(response)["param"] == param, (path, body)


def test_unknown_paths_and_methods_get_error_objects(server: Server) -> None:
    missing = httpx.get(f"{server.v1}/files", timeout=30)
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    wrong = httpx.get(f"{server.v1}/chat/completions", timeout=30)
    assert wrong.status_code == 405 and "GET" in error_of(wrong)["message"]
    assert server.metric("orchestrator_errors_total", endpoint="other", code="not_found") >= 1


def test_constrained_output_cut_by_max_tokens_is_an_error_streamed_or_not(
    server: Server, model_id: str
) -> None:
    body = {
        "model": model_id,
        "messages": [{"role": "user", "content": "Describe a dog as JSON."}],
        "response_format": {"type": "json_object"},
        "max_tokens": 3,
    }
    whole = post(server, "/chat/completions", body)
    assert whole.status_code == 400
    assert error_of(whole)["code"] == "TruncatedOutputError"
    assert "max_tokens" in error_of(whole)["fix"]
    client: Any = server.client()
    stream = client.chat.completions.create(**body, stream=True)
    with pytest.raises(openai.APIError, match="cut off"):
        for _chunk in stream:
            pass
