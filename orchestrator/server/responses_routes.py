"""``/v1/responses``: OpenAI's Responses API, answered on the chat completions path.

A request is translated into the chat request it means (:mod:`responses_chat`), planned by
``plans.plan_chat`` and answered by ``routes.answer``, as ``/v1/chat/completions`` is; only
the shape of the answer differs (:mod:`responses_events`). Finished responses are kept in a
bounded in-memory store (the newest :data:`MAX_STORED`, at most :data:`MAX_STORED_CHARS`
characters; gone when the server restarts), which ``previous_response_id`` and
``GET /v1/responses/{id}`` read; ``store: false`` keeps a response out of it.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from orchestrator.errors import OrchestratorError
from orchestrator.server import plans
from orchestrator.server.errors import APIError, as_api_error
from orchestrator.server.responses import Collected
from orchestrator.server.responses_api import ResponseRequest
from orchestrator.server.responses_chat import answer_messages, chat_request, renamed
from orchestrator.server.responses_events import Record, ResponseShape
from orchestrator.server.routes import answer, state_of
from orchestrator.server.schemas import ChatMessage

MAX_STORED = 256
MAX_STORED_CHARS = 16_000_000

router = APIRouter()


@dataclass
class Stored:
    response: dict[str, Any]
    messages: list[ChatMessage]
    """The conversation so far (without instructions), as a later turn continues it."""
    size: int


class ResponseStore:
    """The newest responses, by id, within a count and a size bound (oldest go first)."""

    def __init__(self, max_items: int = MAX_STORED, max_chars: int = MAX_STORED_CHARS) -> None:
        self.max_items, self.max_chars = max_items, max_chars
        self._items: OrderedDict[str, Stored] = OrderedDict()
        self._chars = 0

    def get(self, response_id: str) -> Stored | None:
        return self._items.get(response_id)

    def put(self, response: dict[str, Any], messages: list[ChatMessage]) -> None:
        size = len(json.dumps(response)) + sum(len(m.model_dump_json()) for m in messages)
        self._items[response["id"]] = Stored(response, messages, size)
        self._chars += size
        while self._items and (len(self._items) > self.max_items or self._chars > self.max_chars):
            self.delete(next(iter(self._items)))

    def delete(self, response_id: str) -> bool:
        gone = self._items.pop(response_id, None)
        if gone is not None:
            self._chars -= gone.size
        return gone is not None


def store_of(request: Request) -> ResponseStore:
    """The app's response store (made on first use; one per app, used on its event loop)."""
    store: ResponseStore | None = getattr(request.app.state, "responses", None)
    if store is None:
        store = request.app.state.responses = ResponseStore()
    return store


def _not_found(response_id: str, param: str | None = None) -> APIError:
    what = "Previous response" if param else "Response"
    return APIError(
        404,
        f"{what} with id {response_id!r} not found",
        param=param,
        code="previous_response_not_found" if param else "not_found",
        fix=f"use the id of a response this server returned with store on (it keeps the "
        f"newest {MAX_STORED} in memory until it restarts), or send the whole conversation "
        "as input",
    )


@router.post("/v1/responses")
async def create_response(body: ResponseRequest, request: Request) -> Response:
    state, store = state_of(request), store_of(request)
    history: list[ChatMessage] = []
    if body.previous_response_id is not None:
        previous = store.get(body.previous_response_id)
        if previous is None:
            raise _not_found(body.previous_response_id, "previous_response_id")
        history = previous.messages
    try:
        chat = chat_request(body, history)
        kind = state.backends.resolve(body.model, "chat")
        tally = state.tally(body.model, state.backends.chat)
        make = plans.plan_chat(chat, kind, state.backends, state.locks, tally)
        conversation = chat.messages[1:] if body.instructions else chat.messages
        record = _recorder(store, body.store is not False, conversation)
        shape = ResponseShape(body.model, echo(body), record)
        return await answer(request, state, make, shape, body.stream, include_usage=False)
    except (APIError, OrchestratorError) as exc:
        raise renamed(as_api_error(exc)) from None


def _recorder(store: ResponseStore, keep: bool, conversation: list[ChatMessage]) -> Record:
    def record(response: dict[str, Any], got: Collected) -> None:
        if keep:
            store.put(response, [*conversation, *answer_messages(got)])

    return record


def echo(body: ResponseRequest) -> dict[str, Any]:
    """The request's settings, as a response repeats them."""
    fmt = body.text_format()
    choice = body.tool_choice
    return {
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "metadata": body.metadata or {},
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": body.previous_response_id,
        "reasoning": {"effort": None, "summary": None},
        "store": body.store is not False,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "text": {"format": fmt.echo() if fmt is not None else {"type": "text"}},
        "tool_choice": choice.model_dump()
        if choice is not None and not isinstance(choice, str)
        else choice or "auto",
        "tools": [t.model_dump(by_alias=True, exclude_none=True) for t in body.tools or ()],
        "truncation": "disabled",
        "user": body.user,
        "background": False,
    }


@router.get("/v1/responses/{response_id}")
async def get_response(response_id: str, request: Request) -> dict[str, Any]:
    stored = store_of(request).get(response_id)
    if stored is None:
        raise _not_found(response_id)
    return stored.response


@router.delete("/v1/responses/{response_id}")
async def delete_response(response_id: str, request: Request) -> dict[str, Any]:
    if not store_of(request).delete(response_id):
        raise _not_found(response_id)
    return {"id": response_id, "object": "response.deleted", "deleted": True}
