"""Request bodies of the OpenAI-compatible endpoints, validated by pydantic.

Unknown fields are refused (``extra="forbid"``), as OpenAI refuses them, so a misspelled option
is an error naming it instead of being silently ignored. OpenAI's standard optional fields are
all accepted, in three groups:

- honoured: ``max_tokens`` / ``max_completion_tokens``, ``temperature``, ``top_p``, ``seed``,
  ``stop``, ``tools``, ``tool_choice``, ``response_format``, ``stream``, ``stream_options``;
- no-ops, accepted with any value because they change nothing about the answer (``user``,
  ``metadata``, ``store``, ``parallel_tool_calls``, ...: marked so where declared);
- unsupported, accepted only at their default value (:data:`UNSUPPORTED_DEFAULTS`: ``n`` other
  than 1, ``logprobs``, ``logit_bias``, penalties, audio ...); any other value is a 400 that
  names the field, because ignoring it would change what the client gets.

Orchestrator's own fields (sent with the openai client's ``extra_body``): ``session_id`` and
the llama.cpp sampling options ``top_k``, ``min_p``, ``repeat_penalty``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from orchestrator.models.options import MaxTokens, MinP, RepeatPenalty, Temperature, TopK, TopP
from orchestrator.server.errors import printable

#: Fields accepted only at these (default) values; ``None`` means "absent" is also fine.
UNSUPPORTED_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "n": (None, 1),
    "best_of": (None, 1),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "logit_bias": (None, {}),
    "presence_penalty": (None, 0, 0.0),
    "frequency_penalty": (None, 0, 0.0),
    "modalities": (None, ["text"]),
    "audio": (None,),
    "prediction": (None,),
    "reasoning_effort": (None,),
    "web_search_options": (None,),
    "functions": (None, []),
    "function_call": (None,),
    "verbosity": (None,),
    "suffix": (None, ""),
}


#: A UTF-16 surrogate code point. JSON's ``\\ud800`` escapes decode to one when unpaired (a
#: valid pair decodes to the character it encodes), and no such string can be encoded as UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate_path(value: Any) -> str | None:
    """Where the first string (value or key) holding a lone surrogate is in parsed JSON
    ``value``, as a param path relative to it (``messages[0].content``; ``""`` for ``value``
    itself), or ``None``. Iterative, so no nesting depth makes it fail."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return path
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and _SURROGATE.search(key):
                    return printable(name)
                children.append((name, child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(item))))
    return None


class Closed(BaseModel):
    """A request object whose unknown fields are errors, and whose every string (in any
    field, at any depth, keys included) is Unicode text: a lone UTF-16 surrogate is refused
    here, with its path, since the model, the tokenizer and every UTF-8 writer would fail on
    it later (the one rule, for every endpoint's schema)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _unicode_text(cls, data: Any) -> Any:
        where = lone_surrogate_path(data)
        if where is not None:
            raise PydanticCustomError(
                "lone_surrogate", "holds a lone UTF-16 surrogate", {"where": where}
            )
        return data


class ContentPart(Closed):
    """A text part of a message (the only kind these models read)."""

    type: Literal["text"]
    text: str


class FunctionCall(Closed):
    name: str
    arguments: str = "{}"


class ToolCall(Closed):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(Closed):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    # what the server returns in a message; accepted so a client can send it back as history
    refusal: str | None = None
    annotations: list[Any] | None = None
    audio: Any = None
    function_call: Any = None

    @model_validator(mode="before")
    @classmethod
    def _text_parts_only(cls, data: Any) -> Any:
        """Say plainly that images and audio are not read (instead of a union mismatch)."""
        content = data.get("content") if isinstance(data, dict) else None
        if isinstance(content, list):
            kinds = [p.get("type") for p in content if isinstance(p, dict)]
            other = [k for k in kinds if k != "text"]
            if other:
                raise ValueError(
                    f"content parts of type {other[0]!r} are not supported: these models read "
                    "text only; send {'type': 'text', 'text': ...} parts or a string"
                )
        return data

    def text(self) -> str:
        """The content as plain text (text parts joined)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content)


class FunctionSpec(Closed):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolSpec(Closed):
    type: Literal["function"]
    function: FunctionSpec


class ToolChoiceFunction(Closed):
    name: str


class ToolChoice(Closed):
    type: Literal["function"]
    function: ToolChoiceFunction


class JsonSchemaSpec(Closed):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(Closed):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        spec = self.json_schema
        if self.type == "json_schema" and (spec is None or not spec.schema_):
            raise ValueError("type 'json_schema' needs json_schema.schema (a JSON Schema object)")
        return self


class StreamOptions(Closed):
    include_usage: bool = False
    include_obfuscation: bool | None = None  # no-op: nothing here is obfuscated


class Sampling(Closed):
    """Options shared by chat and text completions."""

    model: str
    stream: bool = False
    stream_options: StreamOptions | None = None
    # bounds: orchestrator.models.SamplingOptions (None: the model's default)
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    # llama.cpp sampling (Orchestrator's own, sent with extra_body)
    top_k: TopK | None = None
    min_p: MinP | None = None
    repeat_penalty: RepeatPenalty | None = None
    # no-ops: they never change an answer here
    user: str | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    # accepted only at their defaults (UNSUPPORTED_DEFAULTS)
    n: int | None = None
    logprobs: bool | int | None = None
    logit_bias: dict[str, float] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def unsupported(self) -> tuple[str, Any] | None:
        """The first field set to a value this server cannot honour, with that value."""
        for name, allowed in UNSUPPORTED_DEFAULTS.items():
            value = getattr(self, name, None)
            if value not in allowed:
                return name, value
        return None

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: MaxTokens | None = None
    tools: list[ToolSpec] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoice | None = None
    response_format: ResponseFormat | None = None
    session_id: str | None = None
    parallel_tool_calls: bool | None = None  # a no-op
    top_logprobs: int | None = None
    modalities: list[str] | None = None
    audio: Any = None
    prediction: Any = None
    reasoning_effort: str | None = None
    web_search_options: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    verbosity: str | None = None

    def wanted_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def tool_choice_value(self) -> str | dict[str, Any] | None:
        choice = self.tool_choice
        return choice if choice is None or isinstance(choice, str) else choice.model_dump()

    def response_format_value(self) -> dict[str, Any] | None:
        fmt = self.response_format
        if fmt is None or fmt.type == "text":
            return None
        if fmt.type == "json_object":
            return {"type": "json_object"}
        assert fmt.json_schema is not None
        return {"type": "json_schema", "schema": fmt.json_schema.schema_}


class CompletionRequest(Sampling):
    prompt: str | list[str]
    echo: bool = False
    best_of: int | None = None
    suffix: str | None = None

    def wanted_tokens(self) -> int | None:
        return self.max_tokens

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class EmbeddingRequest(Closed):
    model: str
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


def decode_arguments(arguments: str | None) -> dict[str, Any]:
    """Function-call arguments (a JSON object in a string, as OpenAI sends them), for every
    endpoint that takes them back; a ``ValueError`` says what is wrong. JSON inside a string
    escapes the request's own checks, so the decoded value gets them here: any nesting depth
    is an error rather than a ``RecursionError``, and a lone surrogate is refused."""
    try:
        value = json.loads(arguments or "{}")
    except RecursionError:
        raise ValueError("function.arguments nests too deeply to decode") from None
    if not isinstance(value, dict):
        raise ValueError("function.arguments must be a JSON object")
    where = lone_surrogate_path(value)
    if where is not None:
        raise ValueError(f"the string at {where!r} in it holds a lone UTF-16 surrogate")
    return value
