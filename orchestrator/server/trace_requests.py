"""Each API request as a recorded run (``orchestrator logs --command serve``): its pipeline is
the requested model, its session the request's ``session_id``; a 4xx/5xx answer marks it
failed with the error object's message and fix. Plain ASGI, inside the gate (auth and body
limit), so only admitted requests are recorded and streams pass through untouched."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Bytes of an error response kept to read its message and fix.
ERROR_BODY_LIMIT = 1 << 16


def request_fields(body: bytes) -> dict[str, str]:
    """The requested model and session of a JSON body (nothing for anything else: the
    endpoint says what is wrong with a body, not this)."""
    try:
        payload = json.loads(body or b"null")
    except (ValueError, RecursionError):  # RecursionError: a body nested too deeply
        return {}
    if not isinstance(payload, dict):
        return {}
    found = {"pipeline": payload.get("model"), "session": payload.get("session_id")}
    return {k: str(v) for k, v in found.items() if isinstance(v, str | int) and v != ""}


def error_of(body: bytes, status: int) -> tuple[str, str | None]:
    """The message and fix of an error response (``{"error": {"message", "fix"}}``)."""
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, RecursionError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    return str(error.get("message") or f"HTTP {status}"), error.get("fix")


class TraceMiddleware:
    """Opens a run around every ``POST /v1/...`` while tracing is on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from orchestrator.tracing import is_enabled, run

        if scope["type"] != "http" or scope["method"] != "POST" or not is_enabled():
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while not messages or messages[-1].get("more_body", False):
            messages.append(await receive())
            if messages[-1]["type"] != "http.request":
                break
        body = b"".join(m.get("body", b"") for m in messages)
        status, error = [500], bytearray()

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            elif status[0] >= 400 and len(error) < ERROR_BODY_LIMIT:
                error.extend(message.get("body", b""))
            await send(message)

        name = f"POST {scope['path']}"
        fields: dict[str, Any] = request_fields(body)
        with run("serve", name=name, **fields) as handle:
            await self.app(scope, replay, watch)
            if status[0] >= 400:
                handle.fail(*error_of(bytes(error), status[0]))
