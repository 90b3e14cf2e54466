"""ASGI middleware: request metrics, API-key auth, request size limit.

Written as plain ASGI (not Starlette's ``BaseHTTPMiddleware``), so streamed answers pass
through untouched and a client's disconnect still reaches the endpoint.
"""

from __future__ import annotations

import hmac
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.server.errors import APIError
from orchestrator.server.metrics import Metrics, endpoint_of

#: Paths that answer without an API key (liveness probes).
OPEN_PATHS = ("/health",)


class MetricsMiddleware:
    """Counts every HTTP request by endpoint and status, and times it to its last byte."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = endpoint_of(scope["path"])
        started = time.perf_counter()
        status = [500]

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.in_progress.dec()
            self.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)


class GateMiddleware:
    """Bearer-token auth on every path but :data:`OPEN_PATHS`, and a body size limit.

    The body is read here, up to ``max_body_bytes``; a larger one (by its Content-Length, or
    as it arrives when chunked) is answered 413 before the endpoint sees anything.
    """

    def __init__(
        self, app: ASGIApp, *, api_key: str | None, max_body_bytes: int, metrics: Metrics
    ) -> None:
        self.app, self.api_key, self.max_body_bytes = app, api_key, max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._auth_error(scope["path"], headers.get("authorization"))
        if refusal is None:
            refusal = self._declared_size_error(headers.get("content-length"))
        if refusal is None:
            body, more = await self._read_body(receive)
            if body is not None:
                await self.app(scope, _replay(body, more, receive), send)
                return
            refusal = self._too_large()
        self.metrics.errors.labels(endpoint_of(scope["path"]), str(refusal.code)).inc()
        await refusal.response()(scope, receive, send)

    def _auth_error(self, path: str, authorization: str | None) -> APIError | None:
        if self.api_key is None or path in OPEN_PATHS:
            return None
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        ):
            return None
        return APIError(
            401,
            "missing or wrong API key" if authorization else "this server needs an API key",
            code="invalid_api_key",
            fix="send the key the server was started with as 'Authorization: Bearer KEY' "
            "(openai client: api_key=KEY)",
        )

    def _declared_size_error(self, length: str | None) -> APIError | None:
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return self._too_large()
        return None

    def _too_large(self) -> APIError:
        return APIError(
            413,
            f"the request body is over this server's limit of {self.max_body_bytes} bytes",
            code="request_too_large",
            fix="send less text per request, or start the server with a larger --max-body-bytes",
        )

    async def _read_body(self, receive: Receive) -> tuple[bytes | None, bool]:
        """The whole body, or ``None`` once it passes the limit; ``more`` says the client
        disconnected while sending (the endpoint then sees the disconnect)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks), True
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None, False
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False


def _replay(body: bytes, disconnected: bool, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once, then what the client sends next
    (its disconnect, which the endpoints watch for)."""
    sent = [False]

    async def replay() -> Message:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        if disconnected:
            return {"type": "http.disconnect"}
        return await receive()

    return replay
