"""``POST /v1/responses`` (OpenAI's Responses API) through the official openai client and the
OpenAI Agents SDK's default model: the answers are the chat completions answers (same
generation path), streamed as the events the client folds into a response."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel
from server_harness import Server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GREEDY: dict[str, Any] = {"temperature": 0.0, "extra_body": {"seed": 0}}
CHAT_GREEDY: dict[str, Any] = {"temperature": 0.0, "seed": 0}
QUESTION = "What is the capital of France?"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def chat_text(client: Any, model: str, messages: list[dict[str, Any]], max_tokens: int) -> Any:
    reply = client.chat.completions.create(
        model=model, messages=messages, max_tokens=max_tokens, **CHAT_GREEDY
    )
    return reply.choices[0]


def test_string_input_answers_as_chat_does_with_usage(server: Server, model_id: str) -> None:
    client: Any = server.client()
    response = client.responses.create(
        model=model_id, input=QUESTION, max_output_tokens=16, metadata={"case": "1"}, **GREEDY
    )
    chat = chat_text(client, model_id, [{"role": "user", "content": QUESTION}], 16)
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.output_text == chat.message.content and response.output_text
    assert response.status == ("incomplete" if chat.finish_reason == "length" else "completed")
    (message,) = response.output
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "output_text"
    usage = response.usage
    assert 0 < usage.output_tokens <= 16 and usage.input_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens >= 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    assert response.metadata == {"case": "1"} and response.max_output_tokens == 16
    assert server.metric("orchestrator_requests_total", endpoint="/v1/responses", status="200")


def test_items_and_instructions_are_the_chat_messages(server: Server, model_id: str) -> None:
    client: Any = server.client()
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "Hi, I am Ada."}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello Ada!", "annotations": []}],
        },
        {"type": "message", "role": "user", "content": "What is my name?"},
    ]
    response = client.responses.create(
        model=model_id, instructions="Be brief.", input=items, max_output_tokens=12, **GREEDY
    )
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi, I am Ada."},
        {"role": "assistant", "content": "Hello Ada!"},
        {"role": "user", "content": "What is my name?"},
    ]
    assert response.output_text == chat_text(client, model_id, messages, 12).message.content
    assert response.instructions == "Be brief."


def test_previous_response_id_continues_the_stored_conversation(
    server: Server, model_id: str
) -> None:
    client: Any = server.client()
    first = client.responses.create(
        model=model_id, input="Hi, I am Ada.", max_output_tokens=12, **GREEDY
    )
    second = client.responses.create(
        model=model_id,
        input="What is my name?",
        previous_response_id=first.id,
        max_output_tokens=12,
        **GREEDY,
    )
    history = [
        {"role": "user", "content": "Hi, I am Ada."},
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "What is my name?"},
    ]
    assert second.output_text == chat_text(client, model_id, history, 12).message.content
    assert second.previous_response_id == first.id
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    assert client.responses.retrieve(first.id).output_text == first.output_text
    unstored = client.responses.create(
        model=model_id, input="Hi.", max_output_tokens=2, store=False, **GREEDY
    )
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.create(
            model=model_id, input="Hi.", previous_response_id=first.id, max_output_tokens=2
        )
    assert gone.value.body["code"] == "previous_response_not_found"  # type: ignore[index]
    assert gone.value.body["param"] == "previous_response_id"  # type: ignore[index]


class City(BaseModel):
    name: str
    population: int


def test_json_schema_text_format_parses_and_json_object_is_an_object(
    server: Server, model_id: str
) -> None:
    client: Any = server.client()
    parsed = client.responses.parse(
        model=model_id,
        input="Name a large city.",
        text_format=City,
        max_output_tokens=64,
        **GREEDY,
    )
    assert isinstance(parsed.output_parsed, City)
    assert City.model_validate_json(parsed.output_text) == parsed.output_parsed
    as_object = client.responses.create(
        model=model_id,
        input="Describe a dog as JSON.",
        text={"format": {"type": "json_object"}},
        max_output_tokens=64,
        **GREEDY,
    )
    assert isinstance(json.loads(as_object.output_text), dict)
    assert as_object.text.format.type == "json_object"


def test_forced_function_call_then_its_output_continue_the_answer(
    server: Server, model_id: str
) -> None:
    client: Any = server.client()
    question = "What is the weather in Paris?"
    response = client.responses.create(
        model=model_id,
        input=question,
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=48,
        **GREEDY,
    )
    (call,) = response.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.call_id.startswith("call_") and call.id.startswith("fc_")
    arguments = json.loads(call.arguments)
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str)
    assert response.status == "completed" and response.usage.output_tokens > 0
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 22 C"}
    items = client.responses.create(
        model=model_id,
        input=[{"role": "user", "content": question}, call.model_dump(exclude_none=True), result],
        tools=[WEATHER],
        max_output_tokens=16,
        **GREEDY,
    )
    chained = client.responses.create(
        model=model_id,
        input=[result],
        previous_response_id=response.id,
        tools=[WEATHER],
        max_output_tokens=16,
        **GREEDY,
    )
    assert items.output_text and chained.output_text == items.output_text
    assert items.usage.input_tokens == chained.usage.input_tokens


def test_stream_events_fold_into_the_final_response(server: Server, model_id: str) -> None:
    client: Any = server.client()
    with client.responses.stream(
        model=model_id, input="Name a city.", text_format=City, max_output_tokens=64, **GREEDY
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text and isinstance(final.output_parsed, City)
    assert final.usage.output_tokens > 0 and final.status == "completed"
    whole = client.responses.parse(
        model=model_id, input="Name a city.", text_format=City, max_output_tokens=64, **GREEDY
    )
    assert whole.output_text == final.output_text


def test_streamed_function_call_and_a_cut_answer(server: Server, model_id: str) -> None:
    client: Any = server.client()
    with client.responses.stream(
        model=model_id,
        input="What is the weather in Paris?",
        tools=[WEATHER],
        tool_choice="required",
        max_output_tokens=48,
        **GREEDY,
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    (call,) = final.output
    assert call.type == "function_call" and done.arguments == call.arguments
    assert json.loads(call.arguments)["city"]
    cut = list(
        client.responses.create(
            model=model_id,
            input="Write a long story about a dragon.",
            max_output_tokens=4,
            stream=True,
            **GREEDY,
        )
    )
    body = {"model": model_id, "input": "Hi", "max_output_tokens": 2, "stream": True}
    with httpx.stream("POST", f"{server.v1}/responses", json=body, timeout=120) as raw:
        lines = [line for line in raw.iter_lines() if line]
    typed = [
        (a, json.loads(b.removeprefix("data: "))["type"])
        for a, b in itertools.pairwise(lines)
        if a.startswith("event: ")
    ]
    assert typed[0] == ("event: response.created", "response.created")
    assert all(a == f"event: {kind}" for a, kind in typed) and len(typed) > 5
    assert cut[-1].type == "response.incomplete"
    assert cut[-1].response.incomplete_details.reason == "max_output_tokens"
    assert cut[-1].response.usage.output_tokens == 4


def test_agents_sdk_default_model_runs_and_calls_a_tool(server: Server, model_id: str) -> None:
    script = Path(__file__).with_name("agents_sdk_client.py")
    done = subprocess.run(
        [sys.executable, str(script), server.v1, model_id],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=script.parent,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    client: Any = server.client()
    instructions = "You are a helpful assistant. Answer in one short sentence."
    messages = [
        {"role": "system", "content": instructions},
        {"role": "user", "content": QUESTION},
    ]
    expected = chat_text(client, model_id, messages, 48).message.content
    assert got["run_sync"] == got["run"] == got["streamed"]["final_output"] == expected
    assert got["streamed"]["raw_events"] > 4
    (city,) = got["tool_calls"]
    assert got["tool_output"] == f"Sunny in {city}"


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        ({"input": "Hi", "max_tokens": 5}, 400, "max_tokens", "unknown_parameter"),
        ({"input": "Hi", "max_output_tokens": "five"}, 400, "max_output_tokens", None),
        ({"input": "Hi", "max_output_tokens": 10**6}, 400, "max_output_tokens", None),
        ({"input": 5}, 400, "input", None),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, 400, "input[0]", None),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, 400, "input[0]", None),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
            400,
            "input[0].message.content",
            None,
        ),
        ({"input": "Hi", "tools": [{"type": "web_search"}]}, 400, "tools[0]", None),
        ({"input": "Hi", "background": True}, 400, "background", "unsupported_parameter"),
        ({"input": "Hi", "tool_choice": "required"}, 400, "tool_choice", None),
        (
            {"input": "Hi", "previous_response_id": "resp_unknown"},
            404,
            "previous_response_id",
            "previous_response_not_found",
        ),
        ({"input": []}, 400, "input", None),
    ],
)
def test_bad_requests_are_4xx_error_objects_naming_the_field(
    server: Server, model_id: str, body: dict[str, Any], status: int, param: str, code: str | None
) -> None:
    reply = httpx.post(f"{server.v1}/responses", json={"model": model_id, **body}, timeout=60)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["param"] == param and error["message"] and error["fix"]
    if code is not None:
        assert error["code"] == code
    if "previous_response_id" in body:
        assert "resp_unknown" in error["message"]
    missing = httpx.get(f"{server.v1}/responses/resp_unknown", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
