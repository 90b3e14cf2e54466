"""OpenAI-style error objects, and the handlers that turn every failure into one.

Every error a client can get is ``{"error": {"message", "type", "param", "code"}}`` (plus
``fix``: what to do about it; the message ends with the same advice, for clients that only
show the message). Bad input is a 4xx: validation errors name the field as ``param``, an
:class:`~orchestrator.errors.OrchestratorError` (a prompt over the context window, a bad
grammar...) is a 400 carrying its ``fix``. Anything unexpected is a 500 whose message says
to look at the server log: the traceback goes to the log, never to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.errors import ContextOverflowError, OrchestratorError

log = logging.getLogger("orchestrator.server")


class APIError(Exception):
    """An error answered to the client as an OpenAI error object with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code, self.fix = param, code, fix

    def body(self) -> dict[str, Any]:
        message = f"{self.message}. Fix: {self.fix}" if self.fix else self.message
        return {
            "error": {
                "message": message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
                "fix": self.fix,
            }
        }

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def from_orchestrator(exc: OrchestratorError) -> APIError:
    """A deliberate error of the library (bad option, prompt too long...) as a 400."""
    if isinstance(exc, ContextOverflowError):
        return APIError(
            400, exc.message, param="messages", code="context_length_exceeded", fix=exc.fix
        )
    return APIError(400, exc.message, code=type(exc).__name__, fix=exc.fix)


def internal_error() -> APIError:
    return APIError(
        500,
        "the server failed while answering; the details are in the server log",
        type="server_error",
        code="internal_error",
        fix="retry; if it persists, report it with the server log",
    )


def as_api_error(exc: BaseException) -> APIError:
    """Any exception as the error object the client gets (logged when unexpected)."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, OrchestratorError):
        return from_orchestrator(exc)
    log.error("unexpected error while answering", exc_info=exc)
    return internal_error()


def param_path(loc: Sequence[Any]) -> str:
    """pydantic's location as OpenAI writes a param: ``messages[0].role``."""
    out = ""
    for part in loc:
        if part in ("body", "query", "path"):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _is_type_tag(str(part)):
            out += f".{part}" if out else str(part)
    return out


def _is_type_tag(part: str) -> bool:
    """pydantic adds union member names (``str``, ``list[...]``) to locations: not fields."""
    return part in ("str", "int", "float", "bool", "dict", "function-after[...]") or "[" in part


def validation_error(errors: Sequence[Any]) -> APIError:
    """The first validation problem, named the way OpenAI names it."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    param = param_path(first.get("loc", ())) or None
    if first.get("type") == "extra_forbidden":
        return APIError(
            400,
            f"Unrecognized request argument supplied: {param}",
            param=param,
            code="unknown_parameter",
            fix="remove it; Orchestrator's own fields are session_id, top_k, min_p and "
            "repeat_penalty",
        )
    if first.get("type") == "json_invalid":
        return APIError(
            400,
            f"the request body is not valid JSON: {first.get('msg')}",
            code="invalid_json",
            fix="send a JSON object with Content-Type: application/json",
        )
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    where = f"{param}: " if param else ""
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return APIError(
        400,
        f"invalid request: {where}{message}{more}",
        param=param,
        code="invalid_value",
        fix="see the OpenAI API reference for this field, or docs/architecture.md (serve)",
    )


def install_handlers(app: FastAPI, on_error: Any) -> None:
    """Register the handlers; ``on_error(request, api_error)`` records each one."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        error = as_api_error(exc)
        on_error(request, error)
        return error.response()

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        error = validation_error(exc.errors())
        on_error(request, error)
        return error.response()

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        message = {
            404: f"no such endpoint: {request.method} {request.url.path}",
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(status, str(exc.detail))
        error = APIError(
            status,
            message,
            code="not_found" if status == 404 else None,
            fix="see GET /v1/models and the endpoints in docs/architecture.md (serve)",
        )
        on_error(request, error)
        return error.response()

    app.add_exception_handler(APIError, api_error)
    app.add_exception_handler(OrchestratorError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, api_error)
