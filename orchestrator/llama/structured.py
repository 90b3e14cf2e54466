"""Tool calling and structured output for llama.cpp chat models, by grammar-constrained decoding.

A call with tools or a ``response_format`` is planned here: which messages the model sees (tool
descriptions go into the system turn), which grammar constrains decoding, and how the raw text
becomes an ``AIMessage`` with ``tool_calls``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

from orchestrator.errors import OptionError
from orchestrator.llama import tool_choice
from orchestrator.llama.json_grammar import (
    bundle_schemas,
    checked_grammar,
    json_schema_grammar,
    schema_gbnf,
)
from orchestrator.messages import content_text

if TYPE_CHECKING:
    from orchestrator.llama.chat import ChatLlamaCpp

_FORCED = ("any", "required", True)
#: Appended to the last tool result when the model answers after it.
ANSWER_REMINDER = 'Answer the question "{question}" with this result.'
#: Longest string a required argument without a length of its own may have in a call.
MAX_ARG_CHARS = 200
#: Most tool calls one turn may hold (``parallel_tool_calls=True``).
MAX_CALLS = 8
#: An answer in text when tools are bound: it may not start like a call (after tool results
#: a small model would otherwise repeat the call it sees in the history, as JSON).
PROSE_GBNF = "root ::= [^{[ \\t\\n] [^\\x00]*"
_ROOT_RULE = re.compile(r"^root ::=", re.MULTILINE)


@dataclass
class CallPlan:
    """How one chat call is run: rendered messages, grammar, and whether to parse tool calls."""

    messages: list[dict[str, str]]
    grammar: Any = None
    tool_names: list[str] = field(default_factory=list)
    decision: tool_choice.ToolDecision | None = None
    """The call-or-answer decision, when the model made one (``tool_choice="auto"``)."""

    @property
    def buffer_output(self) -> bool:
        return bool(self.tool_names)


def to_role_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as role/content dicts a chat template understands."""
    out: list[dict[str, str]] = []
    for message in messages:
        text = content_text(message)
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": text})
        elif isinstance(message, AIMessage):
            calls = [{"name": c["name"], "arguments": c["args"]} for c in message.tool_calls]
            body = json.dumps(calls[0] if len(calls) == 1 else calls) if calls else text
            out.append({"role": "assistant", "content": body})
        elif isinstance(message, ToolMessage):
            out.append({"role": "user", "content": f"Tool result: {text}"})
        elif isinstance(message, HumanMessage) or message.type in ("human", "user"):
            out.append({"role": "user", "content": text})
        else:
            out.append({"role": getattr(message, "role", "user"), "content": text})
    return _merge_system(out)


def _merge_system(items: list[dict[str, str]]) -> list[dict[str, str]]:
    """Many chat templates accept one system turn, first: fold the others into it."""
    systems = [m["content"] for m in items if m["role"] == "system"]
    rest = [m for m in items if m["role"] != "system"]
    return ([{"role": "system", "content": "\n\n".join(systems)}] if systems else []) + rest


def _tool_instructions(tools: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "You can call these tools. To call one, reply with only a JSON object "
        '{"name": <tool name>, "arguments": {...}}; to call several, a JSON array of them.',
    ]
    for tool in tools:
        fn = tool["function"]
        params = json.dumps(fn.get("parameters", {}))
        lines.append(f"- {fn['name']}: {fn.get('description', '')} Arguments schema: {params}")
    return "\n".join(lines)


def openai_tool(tool: Any) -> dict[str, Any]:
    """``tool`` (a dict, a pydantic model, a LangChain or MCP tool, a function) in OpenAI's
    tool format, with its arguments schema's references kept. LangChain's
    ``convert_to_openai_tool`` inlines them and writes a recursive one as ``{}`` (any JSON), so
    a recursive model's arguments would be decoded unconstrained; the grammar resolves
    references itself (:func:`~orchestrator.llama.json_grammar.bundle_schemas`)."""
    spec = convert_to_openai_tool(tool)
    raw = _schema_with_refs(tool)
    if raw is None:
        return spec
    params = {k: v for k, v in raw.items() if k not in ("title", "description")}
    return {**spec, "function": {**spec["function"], "parameters": params}}


def _schema_with_refs(tool: Any) -> dict[str, Any] | None:
    """The arguments schema of a pydantic model or a LangChain tool as written, if it has
    references (a dict tool is passed through by LangChain as it is)."""
    source = tool.tool_call_schema if isinstance(tool, BaseTool) else tool
    if isinstance(source, type) and is_basemodel_subclass(source):
        model: Any = source  # pydantic v2 (model_json_schema) or a pydantic.v1 model (schema)
        v2 = hasattr(model, "model_json_schema")
        source = model.model_json_schema() if v2 else model.schema()
    elif not isinstance(tool, BaseTool):
        return None
    if isinstance(source, Mapping) and '"$ref"' in json.dumps(source, default=str):
        return dict(source)
    return None


def _call_schema(tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The schema of one call, ``{"name": ..., "arguments": ...}``, of any of ``tools``. Each
    tool's arguments schema is embedded below the root, so its references (``#/$defs/...``,
    as pydantic, FastMCP and ``openai.pydantic_function_tool`` write them) are moved into the
    root ``$defs`` of the call schema, where they resolve."""
    names = [t["function"]["name"] for t in tools]
    arguments, defs = bundle_schemas(
        [t["function"].get("parameters") or {"type": "object"} for t in tools],
        [f"the arguments schema of tool {name!r}" for name in names],
    )
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": name}, "arguments": _nonempty_strings(args)},
            "required": ["name", "arguments"],
        }
        for name, args in zip(names, arguments, strict=True)
    ]
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    return {**schema, "$defs": defs} if defs else schema


def _nonempty_strings(args: Mapping[str, Any]) -> Mapping[str, Any]:
    """``args`` with its required top-level string properties 1 to :data:`MAX_ARG_CHARS`
    characters long (where the schema sets no length): an empty query or expression is
    valid JSON but never a call anyone meant (a small model likes to write ``""``), and a
    bound lets a rambling model still close the call within its token budget."""
    props = args.get("properties")
    if not isinstance(props, Mapping):
        return args
    required = set(args.get("required") or ())
    fixed = {
        key: {**value, "minLength": 1, "maxLength": MAX_ARG_CHARS}
        if key in required
        and isinstance(value, Mapping)
        and value.get("type") == "string"
        and "minLength" not in value
        and "enum" not in value
        and "const" not in value
        else value
        for key, value in props.items()
    }
    return {**args, "properties": fixed}


def _select_tools(
    tools: Sequence[Mapping[str, Any]], choice: Any
) -> tuple[list[Mapping[str, Any]], bool]:
    names = [t["function"]["name"] for t in tools]
    if isinstance(choice, dict):
        choice = choice.get("function", {}).get("name") or choice.get("name")
    if choice in (None, "auto", False):
        return list(tools), False
    if choice in _FORCED:
        return list(tools), True
    if choice == "none":
        return [], False
    if choice in names:
        return [t for t in tools if t["function"]["name"] == choice], True
    raise OptionError(
        f"tool_choice={choice!r} names no bound tool",
        fix=f"use 'auto', 'any', 'none' or one of {names}",
    )


def plan_call(
    model: ChatLlamaCpp, messages: Sequence[BaseMessage], extras: Mapping[str, Any]
) -> CallPlan:
    """Decide the prompt and grammar for one call from its tools / response_format."""
    items = to_role_dicts(messages)
    constrained = [k for k in ("grammar", "response_format") if extras.get(k)]
    if len(constrained) > 1 or (constrained and extras.get("tools")):
        raise OptionError(
            f"one call got {' and '.join(constrained + (['tools'] if extras.get('tools') else []))}"
            ", which constrain the output in different ways",
            fix="pass only one of grammar=, response_format= or bound tools per call",
        )
    if extras.get("grammar"):
        return CallPlan(items, grammar=model.call_grammar(extras["grammar"]))
    fmt = extras.get("response_format")
    if fmt:
        schema = response_format_schema(fmt)
        return CallPlan(items, grammar=json_schema_grammar(model.engine, schema))
    tools, forced = _select_tools(extras.get("tools") or [], extras.get("tool_choice"))
    if not tools:
        return CallPlan(items)
    for tool in tools:  # errors name the tool and the path inside its own schema
        fn = tool["function"]
        schema_gbnf(
            fn.get("parameters") or {}, label=f"the arguments schema of tool {fn['name']!r}"
        )
    decision = None
    if not forced:  # the model decides: call (one of the tools it points to) or answer
        decision = tool_choice.decide(model, messages, tools)
        if not decision.call:
            grammar = model.call_grammar(PROSE_GBNF)
            return CallPlan(_answer_reminder(items, messages), grammar=grammar, decision=decision)
        tools = [t for name in decision.tools for t in tools if t["function"]["name"] == name]
    note = _tool_instructions(tools)
    if items and items[0]["role"] == "system":
        items[0] = {"role": "system", "content": items[0]["content"] + "\n\n" + note}
    else:
        items.insert(0, {"role": "system", "content": note})
    several = bool(extras.get("parallel_tool_calls"))
    grammar = checked_grammar(model.engine, _call_schema(tools), calls_gbnf(tools, several))
    names = [t["function"]["name"] for t in tools]
    return CallPlan(items, grammar=grammar, tool_names=names, decision=decision)


def _answer_reminder(
    items: list[dict[str, str]], messages: Sequence[BaseMessage]
) -> list[dict[str, str]]:
    """After tool results, the answer turn is reminded of the question (a small model
    otherwise comments on the result instead of answering with it)."""
    if not messages or not isinstance(messages[-1], ToolMessage) or items[-1]["role"] != "user":
        return items
    request, _ = tool_choice.last_request(messages)
    if not request:
        return items
    note = ANSWER_REMINDER.format(question=request)
    return [*items[:-1], {"role": "user", "content": f"{items[-1]['content']}\n\n{note}"}]


def calls_gbnf(tools: Sequence[Mapping[str, Any]], several: bool) -> str:
    """GBNF for one call ``{"name": ..., "arguments": ...}`` of one of ``tools`` (arguments
    valid for its schema) or, with ``several``, also a JSON array of up to
    :data:`MAX_CALLS` such calls."""
    gbnf = _ROOT_RULE.sub("call ::=", schema_gbnf(_call_schema(tools)), count=1)
    if not several:
        return f"root ::= call\n{gbnf}"
    more = f'( "," " "? call ){{0,{MAX_CALLS - 1}}}'
    return f'root ::= call | "[" call {more} "]"\n{gbnf}'


def response_format_schema(fmt: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON schema an OpenAI-style ``response_format`` dict asks for: ``json_schema``'s
    schema, or for ``json_object`` any object (or the ``schema`` given with it, as llama.cpp's
    server allows). Raises :class:`OptionError` for any other type."""
    kind = fmt.get("type")
    if kind == "json_object":
        return dict(fmt.get("schema") or {"type": "object"})
    if kind == "json_schema":
        spec = fmt.get("json_schema", fmt)
        return dict(spec.get("schema") or {"type": "object"})
    raise OptionError(
        f"response_format type {kind!r} is not supported",
        fix="use {'type': 'json_schema', 'schema': {...}} or {'type': 'json_object'}",
    )


def final_chunk(text: str, plan: CallPlan) -> ChatGenerationChunk:
    """The whole buffered answer: tool calls when it parses as one call or an array of
    calls of the plan's tools, else plain text."""
    stripped = text.strip()
    try:
        data = json.loads(stripped, strict=False) if stripped[:1] in ("{", "[") else None
    except json.JSONDecodeError:
        data = None
    found = data if isinstance(data, list) else [data]
    calls = [c for c in found if isinstance(c, dict) and c.get("name") in plan.tool_names]
    if not calls or len(calls) != len(found):
        return ChatGenerationChunk(message=AIMessageChunk(content=stripped))
    chunks = [
        tool_call_chunk(
            name=call["name"],
            args=json.dumps(call.get("arguments") or {}),
            id=f"call_{uuid.uuid4().hex[:24]}",
            index=index,
        )
        for index, call in enumerate(calls)
    ]
    return ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=chunks))


def with_structured_output(
    model: ChatLlamaCpp,
    schema: Mapping[str, Any] | type,
    method: str,
    include_raw: bool,
    **kwargs: Any,
) -> Runnable[Any, Any]:
    """LangChain's ``with_structured_output``, defaulting to grammar-constrained JSON schema."""
    kwargs.pop("strict", None)  # grammar-constrained decoding is always strict
    if kwargs:
        raise OptionError(f"with_structured_output got unknown options {sorted(kwargs)}")
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    tool = openai_tool(schema)
    name, params = tool["function"]["name"], tool["function"]["parameters"]
    structured_format = {"kwargs": {"method": method}, "schema": tool}
    if method == "function_calling":
        llm: Runnable[Any, Any] = model.bind_tools(
            [schema],  # type: ignore[list-item]
            tool_choice=name,
            ls_structured_output_format=structured_format,
        )
        parser: Runnable[Any, Any] = (
            PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
            if is_pydantic
            else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        )
    elif method in ("json_schema", "json_mode"):
        # json_mode only promises "some JSON object"; we have the schema, so decoding is held to
        # it as well: a small model then cannot return a valid object of the wrong shape.
        fmt = {"type": "json_schema", "schema": params}
        llm = model.bind(response_format=fmt, ls_structured_output_format=structured_format)
        parser = (
            PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
            if is_pydantic
            else JsonOutputParser()
        )
    else:
        raise OptionError(
            f"unknown structured output method {method!r}",
            fix="use 'json_schema' (default), 'function_calling' or 'json_mode'",
        )
    if not include_raw:
        return llm | parser
    parse = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    )
    fallback = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=llm) | parse.with_fallbacks([fallback], exception_key="parsing_error")
