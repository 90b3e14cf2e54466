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


def printable(text: str) -> str:
    """``text`` with any lone UTF-16 surrogate written as its ``\\ud800``-``\\udfff`` escape: what a
    request sent can be quoted in an answer, which must encode as UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


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
        message = printable(message)  # it may quote the request: it must encode
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param = None if param is None else printable(param)
        self.code, self.fix = code, None if fix is None else printable(fix)

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


#: pydantic's error types for a body that is no JSON object (a list, a string, other bytes).
_NOT_AN_OBJECT = ("model_type", "model_attributes_type", "dict_type", "missing")
JSON_BODY_FIX = "send a JSON object, UTF-8 encoded, with Content-Type: application/json"


def validation_error(errors: Sequence[Any]) -> APIError:
    """The first validation problem, named the way OpenAI names it."""
    first: dict[str, Any] = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    param = param_path(first.get("loc", ())) or None
    if first.get("type") == "extra_forbidden":
        param = _unknown_field(tuple(first.get("loc", ())))
        shown = param if param.strip() and param.isprintable() else repr(param)
        return APIError(
            400,
            f"Unrecognized request argument supplied: {shown}",
            param=param,
            code="unknown_parameter",
            fix="remove it; besides OpenAI's fields Orchestrator accepts top_k, min_p and "
            "repeat_penalty, and session_id on chat and text completions",
        )
    if first.get("type") == "lone_surrogate":
        return _lone_surrogate(param, str(first.get("ctx", {}).get("where", "")))
    if param is None and first.get("type") in _NOT_AN_OBJECT:
        return APIError(
            400,
            "the request body must be a JSON object"
            + (" (it is empty)" if first.get("type") == "missing" else ""),
            code="invalid_value",
            fix=JSON_BODY_FIX,
        )
    if first.get("type") == "json_invalid":
        return APIError(
            400,
            f"the request body is not valid JSON: {_json_problem(first)}",
            code="invalid_json",
            fix=JSON_BODY_FIX,
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


def _json_problem(error: Any) -> str:
    """What the JSON decoder said, and where (FastAPI puts the character offset last)."""
    loc = tuple(error.get("loc", ()))
    where = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
    return f"{error.get('ctx', {}).get('error') or error.get('msg')}{where}"


def _unknown_field(loc: tuple[Any, ...]) -> str:
    """The path of an unknown field, its own name verbatim (whatever it looks like)."""
    parent = param_path(loc[:-1]) if loc else ""
    key = str(loc[-1]) if loc else ""
    return f"{parent}.{key}" if parent else key


def _lone_surrogate(model_param: str | None, where: str) -> APIError:
    """A string with an unpaired ``\\ud800``-``\\udfff`` escape: valid JSON, but not text."""
    param = model_param or ""
    if where:
        param = f"{param}{where}" if where.startswith("[") or not param else f"{param}.{where}"
    return APIError(
        400,
        f"Invalid '{param or 'body'}': the string holds a lone UTF-16 surrogate (a \\ud800-"
        "\\udfff escape without its pair), which is not Unicode text",
        param=param or None,
        code="invalid_value",
        fix="send well-formed Unicode: a JSON encoder writes every real character as UTF-8 or "
        "as a \\ud800-\\udbff escape followed by a \\udc00-\\udfff one; drop or replace "
        "the unpaired escape",
    )


def routing_error(
    method: str, path: str, status: int, detail: str, cause: BaseException | None = None
) -> APIError:
    """An HTTP error FastAPI raises: no such path or method, or a body it could not parse
    (``cause``: why; not UTF-8, nested too deeply, a number too long to read)."""
    if status == 400:
        reason = "it nests too deeply" if isinstance(cause, RecursionError) else str(cause or "")
        return APIError(
            400,
            f"the request body could not be read as JSON: {reason or detail}",
            code="invalid_json",
            fix=JSON_BODY_FIX,
        )
    message = {
        404: f"no such endpoint: {method} {path}",
        405: f"{method} is not allowed on {path}",
    }.get(status, detail)
    return APIError(
        status,
        message,
        code="not_found" if status == 404 else None,
        fix="see GET /v1/models and the endpoints in docs/architecture.md (serve)",
    )


def install_handlers(app: FastAPI, on_error: Any) -> None:
    """Register the one handler of every failure; ``on_error(request, api_error)`` records
    each one."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, RequestValidationError):
            error = validation_error(exc.errors())
        elif isinstance(exc, StarletteHTTPException):
            error = routing_error(
                request.method, request.url.path, exc.status_code, str(exc.detail), exc.__cause__
            )
        else:
            error = as_api_error(exc)
        on_error(request, error)
        return error.response()

    failures = (APIError, OrchestratorError, RequestValidationError, StarletteHTTPException)
    for failure in (*failures, Exception):
        app.add_exception_handler(failure, handle)
