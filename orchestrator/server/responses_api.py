"""The request body of ``POST /v1/responses`` (OpenAI's Responses API), validated by pydantic.

As for chat completions, unknown fields are refused and every standard field is accepted, in
three groups: honoured (``input``, ``instructions``, ``previous_response_id``, ``tools``,
``tool_choice``, ``text.format``, ``max_output_tokens``, ``temperature``, ``top_p``,
``stream``, ``store``, ``metadata``), no-ops that change nothing about the answer (marked so
where declared), and fields accepted only at their default (:data:`UNSUPPORTED_DEFAULTS`),
because ignoring another value would change what the client gets. Orchestrator's own fields
(``extra_body``): ``seed``, ``top_k``, ``min_p``, ``repeat_penalty``.

Input items are the text ones: messages (string or ``input_text`` / ``output_text`` /
``refusal`` parts), ``function_call`` and ``function_call_output``; any other item or part is
a 400 that names it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from orchestrator.models.options import MaxTokens, MinP, RepeatPenalty, Temperature, TopK, TopP
from orchestrator.server.schemas import Closed

#: Fields accepted only at these values (``None``: absent); any other value is a 400.
UNSUPPORTED_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "background": (None, False),
    "background_options": (None,),
    "conversation": (None,),
    "prompt": (None,),
    "context_management": (None, []),
    "moderation": (None,),
    "access_programs": (None,),
    "truncation": (None, "disabled"),
    "top_logprobs": (None, 0),
}

_TEXT_ONLY = "these models read text only; send input_text parts or a string"
_FUNCTIONS_ONLY = "this server runs function tools only ({'type': 'function', 'name': ...})"


class TextPart(Closed):
    """Text in a message: the user's (``input_text``) or a previous answer's (``output_text``)."""

    type: Literal["input_text", "output_text"]
    text: str
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None
    prompt_cache_breakpoint: Any = None


class RefusalPart(Closed):
    type: Literal["refusal"]
    refusal: str


def _text_parts_only(parts: Any, kind: str = "input_text") -> Any:
    """A string as one text part; name a part this server cannot read (an image, a file)."""
    if isinstance(parts, str):
        return [{"type": kind, "text": parts}]
    if not isinstance(parts, list):
        raise ValueError("send a string or a list of content parts")
    for part in parts:
        tag = part.get("type") if isinstance(part, dict) else None
        if tag not in (None, "input_text", "output_text", "refusal"):
            raise ValueError(f"content parts of type {tag!r} are not supported: {_TEXT_ONLY}")
    return parts


Part = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


def text_of(content: list[TextPart | RefusalPart]) -> str:
    """Content as plain text (parts joined, a refusal as its text)."""
    return "".join(p.text if isinstance(p, TextPart) else p.refusal for p in content)


class MessageItem(Closed):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: list[Part]
    id: str | None = None
    status: str | None = None
    phase: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _parts(cls, content: Any, info: ValidationInfo) -> Any:
        kind = "output_text" if info.data.get("role") == "assistant" else "input_text"
        return _text_parts_only(content, kind)


class FunctionCallItem(Closed):
    """A call the model made (sent back as history)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str
    arguments: str = "{}"
    id: str | None = None
    status: str | None = None
    namespace: str | None = None
    caller: Any = None
    async_: bool | None = Field(default=None, alias="async")


class FunctionCallOutputItem(Closed):
    """What the client's function returned for ``call_id``."""

    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: list[Part]
    id: str | None = None
    status: str | None = None
    name: str | None = None
    namespace: str | None = None
    caller: Any = None

    @field_validator("output", mode="before")
    @classmethod
    def _parts(cls, output: Any) -> Any:
        return _text_parts_only(output)


ITEM_TYPES = ("message", "function_call", "function_call_output")


def _item_type(item: Any) -> str | None:
    """An item's tag: its ``type``, or ``message`` for the short ``{role, content}`` form."""
    if isinstance(item, dict):
        kind = item.get("type")
        return kind if kind is not None or "role" not in item else "message"
    return getattr(item, "type", None)


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")],
    Discriminator(
        _item_type,
        custom_error_type="invalid_input_item",
        custom_error_message=(
            f"this input item's type is not supported: send one of {', '.join(ITEM_TYPES)} "
            "(a message may be {'role': ..., 'content': ...})"
        ),
    ),
]


class FunctionTool(Closed):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["function"]
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    defer_loading: bool | None = None
    allowed_callers: list[str] | None = None
    output_schema: dict[str, Any] | None = None
    async_: bool | None = Field(default=None, alias="async")

    @model_validator(mode="before")
    @classmethod
    def _functions_only(cls, data: Any) -> Any:
        kind = data.get("type") if isinstance(data, dict) else None
        if kind is not None and kind != "function":
            raise ValueError(f"tools of type {kind!r} are not supported: {_FUNCTIONS_ONLY}")
        return data


class ToolChoiceFunction(Closed):
    type: Literal["function"]
    name: str

    @model_validator(mode="before")
    @classmethod
    def _functions_only(cls, data: Any) -> Any:
        kind = data.get("type") if isinstance(data, dict) else None
        if kind is not None and kind != "function":
            raise ValueError(
                f"tool_choice of type {kind!r} is not supported: send 'auto', 'required', "
                "'none' or {'type': 'function', 'name': ...}"
            )
        return data


ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("str")]
    | Annotated[ToolChoiceFunction, Tag("dict")],
    Discriminator(lambda v: "dict" if isinstance(v, dict | ToolChoiceFunction) else "str"),
]


class TextFormat(Closed):
    """``text.format``: plain text, any JSON object, or JSON held to a schema."""

    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> TextFormat:
        if self.type == "json_schema" and not self.schema_:
            raise ValueError("type 'json_schema' needs schema (a JSON Schema object)")
        if self.type == "json_schema" and not self.name:
            raise ValueError("type 'json_schema' needs name (as OpenAI requires)")
        return self

    def echo(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class TextConfig(Closed):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class StreamOptions(Closed):
    include_obfuscation: bool | None = None  # nothing here is obfuscated


class ResponseRequest(Closed):
    """``POST /v1/responses``."""

    model: str
    input: list[InputItem] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None  # a no-op
    # bounds: orchestrator.models.SamplingOptions (None: the model's default)
    max_output_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None  # a no-op
    text: TextConfig | None = None
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    store: bool | None = None
    include: list[str] | None = None
    reasoning: dict[str, Any] | None = None
    # Orchestrator's own (extra_body)
    seed: int | None = None
    top_k: TopK | None = None
    min_p: MinP | None = None
    repeat_penalty: RepeatPenalty | None = None
    # no-ops: they never change an answer here
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    service_tier: str | None = None
    max_tool_calls: int | None = Field(default=None, ge=1)  # there are no built-in tools
    image: dict[str, Any] | None = None  # image options; images are refused anyway
    # accepted only at their defaults (UNSUPPORTED_DEFAULTS)
    background: bool | None = None
    background_options: dict[str, Any] | None = None
    conversation: str | dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    context_management: list[Any] | None = None
    moderation: dict[str, Any] | None = None
    access_programs: dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)

    @field_validator("input", mode="before")
    @classmethod
    def _input_string(cls, value: Any) -> Any:
        """A string input is one user message."""
        if isinstance(value, str):
            return [{"role": "user", "content": value}]
        if value is not None and not isinstance(value, list):
            raise ValueError("send a string or a list of input items")
        return value

    def unsupported(self) -> tuple[str, Any] | None:
        """The first field set to a value this server cannot honour, with that value."""
        for name, allowed in UNSUPPORTED_DEFAULTS.items():
            value = getattr(self, name)
            if value not in allowed:
                return name, value
        if self.text is not None and self.text.verbosity not in (None, "medium"):
            return "text.verbosity", self.text.verbosity
        if self.reasoning and any(v is not None for v in self.reasoning.values()):
            return "reasoning", self.reasoning
        if "message.output_text.logprobs" in (self.include or ()):
            return "include", "message.output_text.logprobs"
        return None

    def items(self) -> list[MessageItem | FunctionCallItem | FunctionCallOutputItem]:
        return list(self.input or ())

    def text_format(self) -> TextFormat | None:
        return self.text.format if self.text is not None else None
