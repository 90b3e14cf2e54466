"""The /v1/responses objects and stream events hold to the openai package's own types.

The openai client builds stream events without validating them, so the live tests in
tests/test_server_responses.py would pass with a missing required field; these check every
event and the final response with the SDK's pydantic models (no model, no server).
"""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from orchestrator.server.generation import Piece, Tokens
from orchestrator.server.responses_api import ResponseRequest
from orchestrator.server.responses_events import ResponseShape
from orchestrator.server.responses_routes import ResponseStore, echo

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
CALL = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a":1}'}}
OBJECT = {"type": "object"}
TOOLS = [{"type": "function", "name": "add", "parameters": {"type": "object"}}]


def _shape(**request: Any) -> tuple[ResponseShape, list[dict[str, Any]]]:
    body = ResponseRequest.model_validate({"model": "m", "input": "hi", **request})
    recorded: list[dict[str, Any]] = []
    return ResponseShape("m", echo(body), lambda response, got: recorded.append(response)), recorded


def _stream(shape: ResponseShape, pieces: list[Piece]) -> list[dict[str, Any]]:
    events = list(shape.opening())
    for piece in pieces:
        events += shape.chunks(piece)
    return events


@pytest.mark.parametrize(
    ("request_fields", "pieces"),
    [
        ({}, [Piece(text="Hel"), Piece(text="lo"), Piece(finish_reason="stop", usage=Tokens(3))]),
        ({"max_output_tokens": 16}, [Piece(text="cut"), Piece(finish_reason="length")]),
        (
            {"tools": TOOLS, "tool_choice": "required"},
            [Piece(tool_calls=[CALL]), Piece(finish_reason="tool_calls", usage=Tokens(5, 4))],
        ),
        (
            {"text": {"format": {"type": "json_schema", "name": "r", "schema": OBJECT}}},
            [Piece(text="{}"), Piece(finish_reason="stop")],
        ),
    ],
    ids=["text", "cut", "function_call", "json_schema"],
)
def test_every_stream_event_and_the_final_response_validate(
    request_fields: dict[str, Any], pieces: list[Piece]
) -> None:
    shape, recorded = _shape(**request_fields)
    events = _stream(shape, pieces)
    assert events, "no events"
    for event in events:
        EVENTS.validate_python(event)
    numbers = [event["sequence_number"] for event in events]
    assert numbers == sorted(set(numbers))
    assert events[-1]["type"] in {"response.completed", "response.incomplete"}
    Response.model_validate(events[-1]["response"])
    assert recorded and Response.model_validate(recorded[-1])


def test_a_json_schema_format_needs_a_name_as_openai_requires() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="needs name"):
        fmt = {"type": "json_schema", "schema": OBJECT}
        ResponseRequest.model_validate({"model": "m", "input": "hi", "text": {"format": fmt}})


def test_the_store_drops_the_oldest_past_its_count_and_its_size() -> None:
    store = ResponseStore(max_items=2, max_chars=10_000)
    for n in range(3):
        store.put({"id": f"resp_{n}", "text": "x"}, [])
    assert store.get("resp_0") is None and store.get("resp_1") and store.get("resp_2")
    small = ResponseStore(max_items=100, max_chars=200)
    for n in range(5):
        small.put({"id": f"resp_{n}", "text": "y" * 60}, [])
    assert small.get("resp_0") is None and small.get("resp_4") is not None
