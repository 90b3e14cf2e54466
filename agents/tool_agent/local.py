"""Tool calling that a small local model does reliably: the model turn, constrained.

:class:`ConstrainedToolCalls` adapts each model call of a LangChain agent to what the model
can do (:func:`~orchestrator.models.capabilities.capabilities`, asked for the model the call
really goes to, so a fallback model is handled as itself):

- a local GGUF model (``ChatLlamaCpp``): its tools are bound with ``tool_choice="auto"``
  and ``parallel_tool_calls=True``; the model decides to call or to answer by the
  likelihoods it gives the request (:mod:`orchestrator.llama.tool_choice`), and a call is
  decoded under a GBNF grammar admitting only the tools it pointed to, one call or an
  array of several, each with arguments valid for its tool's JSON schema;
- a served model without native tool calls whose server honours a JSON schema or a
  grammar (as probed): the turn is decoded under one schema meaning "these calls, or this
  answer" (:func:`turn_schema`) and turned back into tool calls or text;
- any other chat model (native tools, or no known constraint): the call is LangChain's,
  unchanged.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, SystemMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from orchestrator.llama.structured import MAX_CALLS
from orchestrator.models.capabilities import Capabilities, capabilities

Handler = Callable[[ModelRequest], ModelResponse]

#: The instruction a served model gets with the turn schema.
TURN_NOTE = (
    'Reply with a JSON object: {"tool_calls": [{"name": ..., "arguments": {...}}]} to '
    'call tools, or {"answer": "..."} to answer. The tools:\n'
)


class ConstrainedToolCalls(AgentMiddleware[Any, Any, Any]):
    """Each model turn constrained to "call these tools with valid arguments, or answer"
    where the model's capabilities allow it (see the module docstring)."""

    def wrap_model_call(self, request: ModelRequest, handler: Handler) -> Any:
        if not request.tools or request.tool_choice not in (None, "auto"):
            return handler(request)
        found = capabilities(request.model)
        if found.local and found.chat:
            settings = {**request.model_settings, "parallel_tool_calls": True}
            return handler(request.override(tool_choice="auto", model_settings=settings))
        if found.native_tools or found.constraint == "none":
            return handler(request)
        return _schema_turn(request, handler, found)


def turn_schema(tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """JSON schema of one turn: ``{"tool_calls": [calls of these tools]}`` (each call's
    arguments under its tool's schema) or ``{"answer": text}``."""
    calls = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t["function"]["name"]},
                "arguments": t["function"].get("parameters") or {"type": "object"},
            },
            "required": ["name", "arguments"],
        }
        for t in tools
    ]
    call = calls[0] if len(calls) == 1 else {"anyOf": calls}
    return {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "tool_calls": {
                        "type": "array",
                        "items": call,
                        "minItems": 1,
                        "maxItems": MAX_CALLS,
                    }
                },
                "required": ["tool_calls"],
            },
            {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
            },
        ]
    }


def parse_turn(text: str, names: Sequence[str]) -> AIMessage:
    """A reply under :func:`turn_schema` as an ``AIMessage``: tool calls (of ``names``)
    or the answer; text that is not such a reply is the answer as written."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return AIMessage(content=text.strip())
    if isinstance(data, dict) and isinstance(data.get("tool_calls"), list):
        calls = [
            {
                "name": c["name"],
                "args": dict(c.get("arguments") or {}),
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "tool_call",
            }
            for c in data["tool_calls"]
            if isinstance(c, dict) and c.get("name") in names
        ]
        if calls:
            return AIMessage(content="", tool_calls=calls)
    if isinstance(data, dict) and isinstance(data.get("answer"), str):
        return AIMessage(content=data["answer"].strip())
    return AIMessage(content=text.strip())


def _schema_turn(request: ModelRequest, handler: Handler, found: Capabilities) -> Any:
    tools = [convert_to_openai_tool(t) for t in request.tools]
    names = [t["function"]["name"] for t in tools]
    listing = "\n".join(
        f"- {t['function']['name']}: {t['function'].get('description', '')} "
        f"Arguments schema: {json.dumps(t['function'].get('parameters', {}))}"
        for t in tools
    )
    note = TURN_NOTE + listing
    system = request.system_message
    text = f"{system.content}\n\n{note}" if system is not None else note
    settings = {**request.model_settings, **found.constrain(schema=turn_schema(tools))}
    response = handler(
        request.override(
            system_message=SystemMessage(text), tools=[], tool_choice=None, model_settings=settings
        )
    )
    result = response.result if isinstance(response, ModelResponse) else [response]
    out = [
        parse_turn(m.text, names) if isinstance(m, AIMessage) and not m.tool_calls else m
        for m in result
    ]
    return ModelResponse(result=out)
