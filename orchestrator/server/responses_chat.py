"""A Responses request as the chat completions request it means, and back.

``POST /v1/responses`` runs on the chat path: its request becomes a
:class:`~orchestrator.server.schemas.ChatCompletionRequest` (instructions as the system
message, items as messages, function tools and ``text.format`` as ``tools`` and
``response_format``), planned by :func:`orchestrator.server.plans.plan_chat` like any chat
request. An error found there names the chat field; :func:`renamed` gives it the Responses
name. A stored response keeps its conversation as chat messages, so ``previous_response_id``
only prepends them.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from orchestrator.server.errors import APIError, validation_error
from orchestrator.server.plans import SAMPLING, bad, check_supported
from orchestrator.server.responses import Collected
from orchestrator.server.responses_api import (
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
    ResponseRequest,
    text_of,
)
from orchestrator.server.schemas import (
    ChatCompletionRequest,
    ChatMessage,
    FunctionCall,
    ToolCall,
    decode_arguments,
)

Item = MessageItem | FunctionCallItem | FunctionCallOutputItem

#: Chat names in an error's message, fix and param, and their Responses names.
_NAMES = (
    (re.compile(r"\bmax_tokens\b"), "max_output_tokens"),
    (re.compile(r"\bresponse_format(\.json_schema)?(?=\.schema)"), "text.format"),
    (re.compile(r"\bresponse_format\b"), "text.format"),
    (re.compile(r"(tools\[\d+\])\.function\."), r"\1."),
    (re.compile(r"\bmessages(\[\d+\])?"), "input"),
)


def item_messages(items: list[Item]) -> list[ChatMessage]:
    """Input items as chat messages: a model's function calls join its message."""
    out: list[ChatMessage] = []
    for i, item in enumerate(items):
        if isinstance(item, MessageItem):
            out.append(ChatMessage(role=item.role, content=text_of(item.content)))
        elif isinstance(item, FunctionCallOutputItem):
            out.append(
                ChatMessage(role="tool", content=text_of(item.output), tool_call_id=item.call_id)
            )
        else:
            _check_arguments(item.arguments, f"input[{i}].arguments")
            call = ToolCall(
                id=item.call_id, function=FunctionCall(name=item.name, arguments=item.arguments)
            )
            if out and out[-1].role == "assistant":
                out[-1].tool_calls = [*(out[-1].tool_calls or ()), call]
            else:
                out.append(ChatMessage(role="assistant", content=None, tool_calls=[call]))
    return out


def _check_arguments(arguments: str, param: str) -> None:
    try:
        decode_arguments(arguments)  # the one decoder (nesting, lone surrogates)
    except ValueError as exc:
        raise bad(
            f"a function call's arguments must be a JSON object in a string: {exc}",
            param,
            "send the arguments as the server returned them",
        ) from None


def answer_messages(got: Collected) -> list[ChatMessage]:
    """A finished answer as the assistant message a later turn sees."""
    calls = [ToolCall.model_validate(call) for call in got.tool_calls]
    text = got.text().strip()
    content = None if calls and not text else text
    return [ChatMessage(role="assistant", content=content, tool_calls=calls or None)]


def chat_request(body: ResponseRequest, history: list[ChatMessage]) -> ChatCompletionRequest:
    """The chat completions request this Responses request means; what has no chat
    equivalent here is refused first, naming the Responses field."""
    check_supported(body)
    system = [ChatMessage(role="system", content=body.instructions)] if body.instructions else []
    messages = [*system, *history, *item_messages(body.items())]
    if not messages:
        raise bad("input is empty", "input", "send input: a string or a list of items")
    fields: dict[str, Any] = {
        "model": body.model,
        "messages": messages,
        "stream": body.stream,
        "max_completion_tokens": body.max_output_tokens,
        "parallel_tool_calls": body.parallel_tool_calls,
        **body.model_dump(include=set(SAMPLING), exclude_none=True),
    }
    if body.tools:
        fields["tools"] = [_chat_tool(t.model_dump(exclude_none=True)) for t in body.tools]
    if body.tool_choice is not None:
        choice = body.tool_choice
        fields["tool_choice"] = (
            choice
            if isinstance(choice, str)
            else {"type": "function", "function": {"name": choice.name}}
        )
    fmt = body.text_format()
    if fmt is not None and fmt.type != "text":
        fields["response_format"] = _chat_format(fmt.model_dump(by_alias=True, exclude_none=True))
    try:
        return ChatCompletionRequest.model_validate(fields)
    except ValidationError as exc:  # the Responses schema should have caught it first
        raise renamed(validation_error(exc.errors())) from None


def _chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    spec = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
    return {"type": "function", "function": spec}


def _chat_format(fmt: dict[str, Any]) -> dict[str, Any]:
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    spec = {k: fmt[k] for k in ("name", "description", "schema", "strict") if k in fmt}
    return {"type": "json_schema", "json_schema": spec}


def renamed(error: APIError) -> APIError:
    """A chat error with the Responses names of the fields it mentions."""

    def rename(text: str | None) -> str | None:
        if text is None:
            return None
        for pattern, name in _NAMES:
            text = pattern.sub(name, text)
        return text

    error.message = rename(error.message) or error.message
    error.param, error.fix = rename(error.param), rename(error.fix)
    return error
