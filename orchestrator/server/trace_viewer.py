"""``create_viewer_app``: the trace viewer's HTTP app (``orchestrator traces``).

``/`` and ``/static/*`` are the page (no recorded data in them); the data is JSON under
``/api/``: ``GET /api/runs`` (the filters of ``orchestrator logs``, ``q`` to search),
``GET /api/runs/{run_id}`` (a run and its spans) and ``GET /api/summary`` (per pipeline).
``/api/`` sits behind the server's own gate (:class:`GateMiddleware`): with an API key it
needs ``Authorization: Bearer KEY``, which the page asks for and sends. Errors are the
server's error objects. Every answer forbids scripts and styles from anywhere but this app
and inline, so recorded text (prompts, documents: untrusted) can never run as code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.errors import DataError, OrchestratorError
from orchestrator.server.errors import APIError, as_api_error, validation_error
from orchestrator.server.metrics import Metrics
from orchestrator.server.middleware import GateMiddleware

#: Sent with every answer: no script, style, image or connection but this app's own.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
#: The viewer only answers GETs: a small body limit for the gate.
MAX_BODY_BYTES = 4096
ENDPOINTS = "GET /api/runs, GET /api/runs/{run_id}, GET /api/summary"

Text = Annotated[str | None, Query(max_length=500)]


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP answer (plain ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def _error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, RequestValidationError):
        found = validation_error(exc.errors())
        fix = f"the viewer's API: {ENDPOINTS}, with the filters of `orchestrator logs`"
        error = APIError(400, found.message, param=found.param, code=found.code, fix=fix)
    elif isinstance(exc, StarletteHTTPException):
        where = f"{request.method} {request.url.path}"
        fix = f"the viewer's API: {ENDPOINTS}"
        error = APIError(exc.status_code, f"no such endpoint: {where}", code="not_found", fix=fix)
    else:
        error = as_api_error(exc)
    return error.response()


def _given(
    command: Text = None,
    pipeline: Text = None,
    model: Text = None,
    session: Text = None,
    status: Text = None,
    since: Text = None,
    until: Text = None,
) -> dict[str, str | None]:
    """The filters of ``orchestrator logs``, as query parameters."""
    return {"command": command, "pipeline": pipeline, "model": model, "session": session,
            "status": status, "since": since, "until": until}  # fmt: skip


Given = Annotated[dict[str, str | None], Depends(_given)]


def _api(store: Path | None) -> FastAPI:
    """The JSON endpoints; each request opens the store (so one made later is found)."""
    from orchestrator.tracing.store import TraceStore
    from orchestrator.tracing.viewer import list_runs, pipeline_summary, run_detail, run_filter
    from orchestrator.tracing.viewer.summary import SUMMARY_RUNS

    api = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    handled = (APIError, OrchestratorError, RequestValidationError, StarletteHTTPException)
    for failure in (*handled, Exception):
        api.add_exception_handler(failure, _error)

    @api.get("/runs")
    def runs(
        given: Given, q: Text = None, limit: Annotated[int, Query(ge=1, le=1000)] = 50
    ) -> dict[str, Any]:
        where = run_filter(**given, limit=limit)
        with TraceStore(store) as traces:
            return {"store": str(traces.path), "runs": list_runs(traces, where, q)}

    @api.get("/runs/{run_id}")
    def run(run_id: Annotated[str, PathParam(max_length=64)]) -> dict[str, Any]:
        with TraceStore(store) as traces:
            try:
                return run_detail(traces, run_id)
            except DataError as exc:
                raise APIError(404, exc.message, code="run_not_found", fix=exc.fix) from None

    @api.get("/summary")
    def summary(
        given: Given, limit: Annotated[int, Query(ge=1, le=100_000)] = SUMMARY_RUNS
    ) -> dict[str, Any]:
        where = run_filter(**given, limit=limit)
        with TraceStore(store) as traces:
            return {"store": str(traces.path), "pipelines": pipeline_summary(traces, where)}

    return api


def create_viewer_app(
    store: str | os.PathLike[str] | None = None, *, api_key: str | None = None
) -> ASGIApp:
    """The viewer of the trace store at ``store`` (default ``$ORCHESTRATOR_HOME/traces.sqlite``);
    with ``api_key``, ``/api/`` needs it as a bearer token. Its URLs are relative, so it also
    works mounted under a prefix (``app.mount("/traces", create_viewer_app())``)."""
    from orchestrator.tracing.viewer import ASSETS, asset

    page = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    api = _api(None if store is None else Path(store))
    metrics = Metrics.create()  # the gate counts refusals; the viewer does not serve them
    page.mount("/api", GateMiddleware(api, api_key=api_key, max_body_bytes=MAX_BODY_BYTES,
                                      metrics=metrics))  # fmt: skip
    for failure in (APIError, StarletteHTTPException, Exception):
        page.add_exception_handler(failure, _error)

    @page.get("/")
    def index() -> Response:
        return Response(asset("index.html"), media_type=ASSETS["index.html"])

    @page.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in ASSETS:
            raise APIError(404, f"no such file: {name}", code="not_found", fix="see /")
        return Response(asset(name), media_type=ASSETS[name])

    return SecurityHeaders(page)
