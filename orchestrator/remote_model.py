"""``RemoteChatModel``: langchain-openai's ``ChatOpenAI`` fitted to OpenAI-compatible servers
that are not OpenAI. Build it with :func:`orchestrator.remote.remote_chat_model` (which checks
the server first); this module needs the ``remote`` extra and is imported only then.

What differs from ``ChatOpenAI``, and why:

- ``max_tokens`` is sent under its own name: ``ChatOpenAI`` renames it
  ``max_completion_tokens``, which llama.cpp's Python server ignores (it would then generate
  until the context is full).
- ``grammar=`` (GBNF text, as a local ``ChatLlamaCpp`` takes it) and ``response_format=`` (a
  JSON schema, in our ``{"type": "json_schema", "schema": ...}`` or OpenAI's form, or a pydantic
  class) travel in the request body in the form the server honours. Which that is comes from a
  probe, because servers ignore fields they do not know instead of refusing them: a request
  whose grammar admits one fixed word, then (without a grammar) one whose schema admits one
  fixed object. A schema goes to a grammar-capable server as the same grammar a local model
  would use (:func:`orchestrator.llama.json_grammar.schema_gbnf`). Results are cached per
  server and model for the process.
- Token counts are approximate (``ChatOpenAI`` would fetch tiktoken's tables from the network
  and count with OpenAI's vocabulary); the first count warns once.
- llama.cpp's sampling options (``top_k``, ``min_p``, ``repeat_penalty``), given to the
  constructor or per call (``bind``/``invoke``), travel in the request body, which is where
  its server (and vLLM) reads them; the ``openai`` client has no arguments for them.
- ``openai`` errors become :class:`orchestrator.remote.RemoteModelError` naming the URL.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import openai
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage, get_buffer_string
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field, PrivateAttr

from orchestrator.errors import OptionError
from orchestrator.llama.structured import response_format_schema
from orchestrator.models.capabilities import Capabilities, Way
from orchestrator.remote import (
    BODY_SAMPLING,
    TOKEN_COUNT_NOTE,
    Constraints,
    RemoteModelError,
    api_error,
    approx_tokens,
)

PROBE_WORD = "ok-7301"
PROBE_GRAMMAR = f'root ::= "{PROBE_WORD}"'
PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"probe": {"type": "string", "enum": [PROBE_WORD]}},
    "required": ["probe"],
    "additionalProperties": False,
}
#: Ways servers take a JSON schema, tried in this order: OpenAI's (vLLM, Ollama, llama.cpp's
#: C++ server), then llama.cpp's ``json_object`` + ``schema`` (its Python server's only one).
JSON_DIALECTS = ("openai", "llama")

_probe_lock = threading.Lock()
_probed: dict[tuple[str, str, str], Any] = {}


def json_format(dialect: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The ``response_format`` body field that asks for ``schema`` in ``dialect``."""
    if dialect == "openai":
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    return {"type": "json_object", "schema": schema}


def response_schema(fmt: Any) -> dict[str, Any] | None:
    """The JSON schema a ``response_format`` asks for (``None`` for plain text)."""
    if isinstance(fmt, type) and issubclass(fmt, BaseModel):
        return fmt.model_json_schema()
    if not isinstance(fmt, Mapping):
        raise OptionError(
            f"response_format must be a dict or a pydantic class; got {type(fmt).__name__}",
            fix="pass {'type': 'json_schema', 'schema': {...}} or {'type': 'json_object'}",
        )
    if fmt.get("type") == "text":
        return None
    return response_format_schema(fmt)


class RemoteChatModel(ChatOpenAI):
    """A chat model on an OpenAI-compatible server (see the module docstring)."""

    constraints: Constraints = "auto"
    """How output is constrained: ``auto`` (probe the server), ``grammar``, ``json_schema``,
    ``none``."""
    body_extras: dict[str, Any] = Field(default_factory=dict)
    """llama.cpp sampling options sent in every request body (top_k, min_p, repeat_penalty)."""

    _warned: set[str] = PrivateAttr(default_factory=set)

    @property
    def _llm_type(self) -> str:
        return "orchestrator-remote-chat"

    @property
    def endpoint(self) -> str:
        return str(self.openai_api_base)

    @property
    def label(self) -> str:
        """``NAME at URL``: how traces and the CLI name this model."""
        return f"{self.model_name} at {self.endpoint}"

    def model_capabilities(self) -> Capabilities:
        """A served chat model: the constraints its server honours are probed on first use
        (a schema goes to a grammar-capable server as its grammar); no context window is
        known; token counts are approximate."""
        return Capabilities(
            model=self,
            chat=True,
            local=False,
            label=self.label,
            native_tools=True,
            find_ways=self.constraint_ways,
            counter=self.get_num_tokens,
        )

    # -- what the server honours ------------------------------------------------------------

    def constraint_ways(self) -> tuple[Way, ...]:
        """How calls can constrain output, strongest first: ``grammar`` (a grammar-capable
        server also takes schemas, as grammars), else ``json_schema``, else nothing."""
        if self.accepts_grammar():
            return ("grammar", "json_schema")
        return ("json_schema",) if self.json_dialect() else ()

    def accepts_grammar(self) -> bool:
        """Whether the server constrains output with a GBNF ``grammar`` (probed once)."""
        if self.constraints != "auto":
            return self.constraints == "grammar"
        return bool(self._probe("grammar", self._probe_grammar))

    def json_dialect(self) -> str | None:
        """How the server takes a JSON schema (``openai`` / ``llama``), or ``None``."""
        if self.constraints in ("grammar", "none"):
            return None
        found = self._probe("json", self._probe_json)
        if found is None and self.constraints == "json_schema":
            return JSON_DIALECTS[0]  # the caller said it works; send the standard form
        return found

    def structured_mode(self) -> str:
        """``grammar``, ``json_schema`` or ``none``: how this server's output is constrained
        (grammar first: it carries the same grammar a local model uses)."""
        ways = self.constraint_ways()
        return ways[0] if ways else "none"

    def _probe(self, aspect: str, run: Callable[[], Any]) -> Any:
        key = (self.endpoint, self.model_name, aspect)
        with _probe_lock:
            if key not in _probed:
                _probed[key] = run()
            return _probed[key]

    def _probe_grammar(self) -> bool:
        text = self._probe_reply({"grammar": PROBE_GRAMMAR})
        return text is not None and text.strip() == PROBE_WORD

    def _probe_json(self) -> str | None:
        for dialect in JSON_DIALECTS:
            text = self._probe_reply({"response_format": json_format(dialect, PROBE_SCHEMA)})
            try:
                if text is not None and json.loads(text) == {"probe": PROBE_WORD}:
                    return dialect
            except ValueError:
                continue
        return None

    def _probe_reply(self, body: dict[str, Any]) -> str | None:
        """The text of one short deterministic request with ``body`` added; ``None`` when the
        server refuses it (it does not know the field)."""
        try:
            reply = self.root_client.chat.completions.create(
                model=self.model_name,
                messages=[{"role": "user", "content": "Reply with one word."}],
                max_tokens=24,
                temperature=0.0,
                extra_body=body,
            )
        except openai.APIStatusError:
            return None
        except openai.APIError as exc:
            raise api_error(exc, self.endpoint, self.model_name) from None
        choices = getattr(reply, "choices", None) or []
        return (choices[0].message.content or "") if choices else None

    # -- requests ----------------------------------------------------------------------------

    def _get_request_payload(
        self, input_: LanguageModelInput, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        grammar = kwargs.pop("grammar", None)
        fmt = kwargs.pop("response_format", None)
        # llama.cpp's sampling options per call (a spec's sampling bound to the model) go in
        # the body as the constructor's do: the openai client refuses them as arguments
        per_call = {n: kwargs.pop(n) for n in BODY_SAMPLING if n in kwargs}
        self._check_retries(kwargs.pop("max_retries", None))
        payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
        if "max_completion_tokens" in payload:
            payload["max_tokens"] = payload.pop("max_completion_tokens")
        extra = {
            **self.body_extras,
            **{n: v for n, v in per_call.items() if v is not None},
            **dict(payload.get("extra_body") or {}),
        }
        extra.update(self._constraint_body(grammar, fmt))
        if extra:
            payload["extra_body"] = extra
        return payload

    def _check_retries(self, retries: int | None) -> None:
        """``max_retries`` per call (a spec's options bound to the model built from it): the
        model's own is accepted; the client's retries are fixed when the model is made."""
        if retries is not None and retries != self.max_retries:
            raise OptionError(
                f"max_retries={retries} per call; this served model retries "
                f"{self.max_retries} times",
                fix="set max_retries when the model is made (chat_model(..., max_retries=N))",
            )

    def _constraint_body(self, grammar: Any, fmt: Any) -> dict[str, Any]:
        if grammar is not None and fmt is not None:
            raise OptionError(
                "grammar= and response_format= were both given",
                fix="pass only one of them per call",
            )
        if grammar is not None:
            if not isinstance(grammar, str):
                raise OptionError(
                    "a served model takes grammar= as GBNF text", fix="pass the grammar's text"
                )
            if not self.accepts_grammar():
                raise RemoteModelError(
                    f"the server at {self.endpoint} does not apply GBNF grammars",
                    fix="serve the model with llama.cpp's server, or ask for JSON with "
                    "response_format= instead",
                )
            return {"grammar": grammar}
        if fmt is None:
            return {}
        schema = response_schema(fmt)
        if schema is None:
            return {}
        mode = self.structured_mode()
        if mode == "grammar":
            from orchestrator.llama.json_grammar import schema_gbnf

            return {"grammar": schema_gbnf(schema, label="the response_format schema")}
        if mode == "json_schema":
            return {"response_format": json_format(self.json_dialect() or "openai", schema)}
        self._warn_once(
            "unconstrained",
            f"the server at {self.endpoint} constrains output neither with a grammar nor with "
            "a JSON schema: structured output is asked for in the prompt only and may not parse",
        )
        return {}

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return super()._generate(*args, **kwargs)
        except openai.APIError as exc:
            raise api_error(exc, self.endpoint, self.model_name) from None

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return await super()._agenerate(*args, **kwargs)
        except openai.APIError as exc:
            raise api_error(exc, self.endpoint, self.model_name) from None

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        try:
            yield from super()._stream(*args, **kwargs)
        except openai.APIError as exc:
            raise api_error(exc, self.endpoint, self.model_name) from None

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        try:
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk
        except openai.APIError as exc:
            raise api_error(exc, self.endpoint, self.model_name) from None

    # -- structured output -------------------------------------------------------------------

    def with_structured_output(  # type: ignore[override]
        self,
        schema: Any,
        *,
        method: Literal["function_calling", "json_mode", "json_schema"] = "json_schema",
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """JSON output constrained as this server allows (grammar or JSON schema), parsed into
        ``schema`` (a pydantic class, or a JSON schema dict for plain dicts). ``function_calling``
        is ``ChatOpenAI``'s own path (tool calls; the server must support them)."""
        if method == "function_calling":
            return super().with_structured_output(
                schema, method=method, include_raw=include_raw, **kwargs
            )
        if method not in ("json_schema", "json_mode"):
            raise OptionError(
                f"unknown structured output method {method!r}",
                fix="use 'json_schema' (default), 'json_mode' or 'function_calling'",
            )
        from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
        from langchain_core.runnables import RunnableMap, RunnablePassthrough

        is_model = isinstance(schema, type) and issubclass(schema, BaseModel)
        json_schema = schema.model_json_schema() if is_model else dict(schema or {})
        bound = self.bind(response_format={"type": "json_schema", "schema": json_schema})
        parser: Runnable[Any, Any] = (
            PydanticOutputParser(pydantic_object=schema) if is_model else JsonOutputParser()
        )
        if not include_raw:
            return bound | parser
        parsed = RunnablePassthrough.assign(
            parsed=lambda x: parser.invoke(x["raw"]), parsing_error=lambda _: None
        )
        failed = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=bound) | parsed.with_fallbacks(
            [failed], exception_key="parsing_error"
        )

    # -- token counts ------------------------------------------------------------------------

    def get_num_tokens(self, text: str) -> int:
        """Approximate (see :data:`orchestrator.remote.TOKEN_COUNT_NOTE`)."""
        self._warn_once("tokens", TOKEN_COUNT_NOTE)
        return approx_tokens(text)

    def get_num_tokens_from_messages(
        self, messages: Sequence[BaseMessage], tools: Sequence[Any] | None = None, **_: Any
    ) -> int:
        """Approximate: the messages as text, plus a few tokens of markup per message."""
        return sum(self.get_num_tokens(get_buffer_string([m])) + 4 for m in messages)

    def get_token_ids(self, text: str) -> list[int]:
        raise RemoteModelError(
            f"token ids of {self.label} are not known here (the server's tokenizer is not used)",
            fix="count with get_num_tokens (approximate), or use a local GGUF model",
        )
