"""Chat models served elsewhere: any OpenAI-compatible server (llama.cpp's ``llama-server`` or
``python -m llama_cpp.server``, vLLM, Ollama), through langchain-openai's ``ChatOpenAI``.

Why this module exists beside ``ChatOpenAI`` itself: a local server is not OpenAI, and the
differences are where apps break. This is the one place they are handled:

- **Opt-in only.** Nothing here runs unless a base URL is given (argument, ``--base-url`` or
  ``$ORCHESTRATOR_BASE_URL``); ``ChatLlamaCpp`` never turns remote by itself.
- **Checked before use.** :func:`remote_chat_model` asks the server for ``/models`` first, so an
  unreachable server, a missing API key or a misspelt model name is a :class:`RemoteModelError`
  that names the URL and the fix, not a traceback at the first generation. llama.cpp's servers
  answer *any* model name with their one model, so the name is checked against that list.
- **Closed options.** Sampling options are a fixed set (:class:`RemoteOptions`); a misspelling
  is an ``OptionError`` with a "did you mean", as for local models.
- **Constraints.** llama.cpp's servers accept a GBNF ``grammar`` and a JSON schema in the request
  body; which one a server honours is found by a probe (see :mod:`orchestrator.remote_model`),
  because most servers silently ignore fields they do not know.
- **No tokenizer.** Token counts are approximate (:func:`approx_tokens`) and say so:
  ``ChatOpenAI`` would download tiktoken's tables and count with OpenAI's vocabulary.

The model class itself lives in :mod:`orchestrator.remote_model`, imported only when used, so
this module imports without the ``remote`` extra.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, model_validator

from orchestrator.errors import OptionError, OrchestratorError, reject_unknown_options
from orchestrator.extras import require
from orchestrator.models.capabilities import bound_model
from orchestrator.models.options import (
    DEFAULT_SAMPLING,
    MaxRetries,
    MaxTokens,
    MinP,
    RepeatPenalty,
    Temperature,
    Timeout,
    TopK,
    TopP,
)

if TYPE_CHECKING:
    from orchestrator.remote_model import RemoteChatModel

BASE_URL_ENV = "ORCHESTRATOR_BASE_URL"
API_KEY_ENV = "ORCHESTRATOR_API_KEY"
#: Sent when no key is given: local servers ignore it, and OpenAI's key is never borrowed.
NO_API_KEY = "no-key"
#: Seconds the ``/models`` check may take (a server that is up answers at once).
CHECK_TIMEOUT = 10.0
#: llama.cpp's sampling options, which the ``openai`` client has no argument for: a served
#: model sends them in the request body (its server and vLLM read them there).
BODY_SAMPLING = ("top_k", "min_p", "repeat_penalty")
#: Characters per token for approximate counts (English text with BPE vocabularies).
CHARS_PER_TOKEN = 4
TOKEN_COUNT_NOTE = (
    "token counts for a remote model are approximate (about 4 characters per token); the "
    "server's tokenizer is not used"
)
SERVER_FIX = (
    "start the server (e.g. python -m llama_cpp.server --model M.gguf --port 8000) or correct "
    f"--base-url / ${BASE_URL_ENV}"
)

Constraints = Literal["auto", "grammar", "json_schema", "none"]


class RemoteModelError(OrchestratorError):
    """A served model cannot be used: server unreachable, key refused, model not served, or a
    request the server rejected. The message names the URL."""


class RemoteOptions(BaseModel):
    """The closed set of options a remote chat model takes besides where it is and its name.

    Bounds and ``max_retries``' default are :class:`orchestrator.models.SamplingOptions`'; an
    unset sampling option (``None``) is left to the server's default, so nothing the caller
    did not ask for is sent. ``top_k``, ``min_p`` and ``repeat_penalty`` are llama.cpp's and
    travel in the request body
    (vLLM takes ``top_k``/``min_p`` too; other servers ignore them). ``constraints``: how
    structured output and agent steps are constrained: ``auto`` probes the server once;
    ``grammar`` / ``json_schema`` trust the caller; ``none`` never constrains.
    """

    model_config = ConfigDict(extra="forbid")

    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    min_p: MinP | None = None
    repeat_penalty: RepeatPenalty | None = None
    seed: int | None = None
    stop: list[str] | None = None
    timeout: Timeout | None = None
    max_retries: MaxRetries = DEFAULT_SAMPLING.max_retries
    constraints: Constraints = "auto"

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and ("model_path" in data or "n_ctx" in data):
            name = "model_path" if "model_path" in data else "n_ctx"
            raise OptionError(
                f"{name} is for local GGUF models, not a served one",
                fix="pass model= (the served model's name); the server sets its own context",
            )
        reject_unknown_options(data, cls)
        return data

    def body_extras(self) -> dict[str, Any]:
        """llama.cpp's sampling options, for the request body."""
        return {n: getattr(self, n) for n in BODY_SAMPLING if getattr(self, n) is not None}


def resolve_endpoint(
    base_url: str | None = None, api_key: str | None = None
) -> tuple[str | None, str | None]:
    """``(base_url, api_key)``: each from the argument, else ``$ORCHESTRATOR_BASE_URL`` /
    ``$ORCHESTRATOR_API_KEY``; ``(None, None)`` means a local model. The URL is checked and
    normalised (see :func:`normalise_base_url`)."""
    url = base_url or os.environ.get(BASE_URL_ENV) or None
    key = api_key or os.environ.get(API_KEY_ENV) or None
    if url is None:
        if api_key:
            raise OptionError(
                "--api-key is for a served model, and no base URL was given",
                fix=f"add --base-url URL (or set {BASE_URL_ENV}), or leave out --api-key",
            )
        return None, None
    return normalise_base_url(url), key


def normalise_base_url(url: str) -> str:
    """``url`` checked (http or https, with a host) and without a trailing slash; a bare
    ``http://host:port`` gets ``/v1``, where every OpenAI-compatible server serves its API."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OptionError(
            f"{url!r} is not a server URL",
            fix="pass the server's OpenAI-compatible base URL, e.g. http://gpu-box:8000/v1",
        )
    try:
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        raise OptionError(
            f"{url!r} has an invalid port", fix="e.g. http://gpu-box:8000/v1"
        ) from None
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def api_error(exc: BaseException, base_url: str, model: str | None = None) -> RemoteModelError:
    """An ``openai`` client error as a :class:`RemoteModelError` naming the URL and the fix."""
    import openai

    where = f"the model server at {base_url}"
    if isinstance(exc, openai.APITimeoutError):
        return RemoteModelError(
            f"{where} did not answer in time", fix=f"check that it is up; {SERVER_FIX}"
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return RemoteModelError(f"cannot reach {where}: {cause}", fix=SERVER_FIX)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return RemoteModelError(
            f"{where} refused the API key ({_status(exc)})",
            fix=f"pass the server's key with --api-key or ${API_KEY_ENV}",
        )
    detail = _detail(exc)
    if isinstance(exc, openai.NotFoundError):
        named = f" or does not serve {model!r}" if model else ""
        return RemoteModelError(
            f"{where} answered 404 (no such path{named}): {detail}",
            fix="the base URL usually ends in /v1; pass --model with a name the server lists "
            "under /v1/models",
        )
    if "context" in detail.lower() and ("length" in detail.lower() or "window" in detail):
        return RemoteModelError(
            f"{where} refused the prompt: {detail}",
            fix="shorten the prompt or history, or raise the server's context size "
            "(llama.cpp: --n_ctx / -c; vLLM: --max-model-len)",
        )
    return RemoteModelError(
        f"{where} refused the request ({_status(exc)}): {detail}",
        fix="see the server's log; an option this server does not support may be the cause",
    )


def _status(exc: BaseException) -> str:
    code = getattr(exc, "status_code", None)
    return f"HTTP {code}" if code else type(exc).__name__


def _detail(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, Mapping) else inner
        if message:
            return " ".join(str(message).split())[:400]
    return " ".join(str(exc).split())[:400]


def served_models(base_url: str, api_key: str | None, timeout: float = CHECK_TIMEOUT) -> list[str]:
    """The model names the server lists under ``/models`` (one cheap request)."""
    openai = require("openai", extra="remote", purpose="a served model")
    client = openai.OpenAI(
        base_url=base_url, api_key=api_key or NO_API_KEY, timeout=timeout, max_retries=0
    )
    try:
        return [m.id for m in client.models.list()]
    except openai.APIError as exc:
        raise api_error(exc, base_url) from None
    finally:
        client.close()


def choose_model(base_url: str, served: list[str], model: str | None) -> str:
    """``model`` if the server lists it; without one, the server's only model."""
    listed = ", ".join(repr(m) for m in served) or "nothing"
    if model is None:
        if len(served) == 1:
            return served[0]
        raise OptionError(
            f"which model? the server at {base_url} serves {listed}",
            fix="pass --model NAME with one of those names",
        )
    if model in served:
        return model
    import difflib

    close = difflib.get_close_matches(model, served, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise RemoteModelError(
        f"the server at {base_url} does not serve {model!r}; it serves {listed}",
        fix=f"{hint}with a base URL, --model is the served model's name, not a file",
    )


def remote_chat_model(
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    *,
    check: bool = True,
    **sampling: Any,
) -> RemoteChatModel:
    """A LangChain chat model for ``model`` on the OpenAI-compatible server at ``base_url``.

    ``base_url`` defaults to ``$ORCHESTRATOR_BASE_URL`` and ``api_key`` to
    ``$ORCHESTRATOR_API_KEY`` (no key: a placeholder local servers ignore). ``sampling``: the
    options of :class:`RemoteOptions`. With ``check`` (default) the server is asked for its
    model list first: an unreachable server or an unknown name is a :class:`RemoteModelError`
    now; ``model=None`` then picks the server's only model.
    """
    url, key = resolve_endpoint(base_url, api_key)
    if url is None:
        raise OptionError(
            "a remote model needs the server's base URL",
            fix=f"pass base_url= (e.g. http://gpu-box:8000/v1) or set {BASE_URL_ENV}",
        )
    options = RemoteOptions(**sampling)
    if check:
        model = choose_model(url, served_models(url, key), model)
    elif not model:
        raise OptionError("a remote model needs its name", fix="pass model=NAME (or check=True)")
    require("langchain_openai", extra="remote", purpose="a served model")
    from orchestrator.remote_model import RemoteChatModel

    # ChatOpenAI's fields by name (populate_by_name); type checkers see only their aliases
    fields: dict[str, Any] = {
        "base_url": url,
        "api_key": key or NO_API_KEY,
        "model": model,
        "max_tokens": options.max_tokens,
        "temperature": options.temperature,
        "top_p": options.top_p,
        "seed": options.seed,
        "stop": options.stop,
        "timeout": options.timeout,
        "max_retries": options.max_retries,
        "stream_usage": True,
        "constraints": options.constraints,
        "body_extras": options.body_extras(),
    }
    return RemoteChatModel(**fields)


@dataclass(frozen=True)
class Endpoint:
    """A server's base URL and key, for code that builds several served models (a RAG
    pipeline and its judge): ``Endpoint.resolve(...)`` is ``None`` for local models."""

    base_url: str
    api_key: str | None = None

    @classmethod
    def resolve(cls, base_url: str | None = None, api_key: str | None = None) -> Endpoint | None:
        """As :func:`resolve_endpoint`: the arguments, else the environment, else ``None``."""
        url, key = resolve_endpoint(base_url, api_key)
        return None if url is None else cls(url, key)

    def chat_model(self, model: str | None = None, **sampling: Any) -> RemoteChatModel:
        """:func:`remote_chat_model` for ``model`` on this server."""
        return remote_chat_model(self.base_url, model, self.api_key, **sampling)


def remote_model_of(llm: Any) -> RemoteChatModel | None:
    """The :class:`RemoteChatModel` behind ``llm`` (through ``.bind`` wrappers), or ``None``;
    never imports langchain-openai (no remote model can exist before it is imported)."""
    module = sys.modules.get("orchestrator.remote_model")
    if module is None:
        return None
    inner = bound_model(llm)
    return inner if isinstance(inner, module.RemoteChatModel) else None


def approx_tokens(text: str) -> int:
    """Approximate token count of ``text`` (see :data:`TOKEN_COUNT_NOTE`)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "BODY_SAMPLING",
    "TOKEN_COUNT_NOTE",
    "Endpoint",
    "RemoteModelError",
    "RemoteOptions",
    "api_error",
    "approx_tokens",
    "choose_model",
    "normalise_base_url",
    "remote_chat_model",
    "remote_model_of",
    "resolve_endpoint",
    "served_models",
]
