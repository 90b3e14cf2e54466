"""A person approves, edits or rejects a tool call before it runs.

Tools named in ``approve`` get LangChain's ``HumanInTheLoopMiddleware`` in ``per_call``
mode: the run stops (a LangGraph interrupt) as such a call is about to run, and continues
with ``Command(resume={interrupt_id: decision})``, where a decision is
``{"type": "approve"}``, ``{"type": "edit", "edited_action": {"name": ..., "args": {...}}}``
or ``{"type": "reject", "message": "why"}`` (the reason reaches the model as the call's
result). LangGraph checks an answer against the tool's own decision schema before saving
it: an edit keeps the tool it reviews (the tool it names is the reviewed one, so that tool's
policy applies) and its arguments must match the tool's argument types.
:func:`check_decision` applies the same rules before a decision is sent, with a message
naming the problem and the fix, and also checks arguments of tools whose schema is JSON
Schema (MCP tools), which LangGraph passes unchecked.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain.agents.middleware import HumanInTheLoopMiddleware, InterruptOnConfig
from langchain.agents.middleware.human_in_the_loop import DecisionType
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ValidationError

from orchestrator.errors import OptionError

#: What a reviewer may answer, unless a tool's own policy says otherwise.
DECISIONS: tuple[DecisionType, ...] = ("approve", "edit", "reject")


@dataclass(frozen=True)
class PendingCall:
    """A tool call waiting for a decision (one per-call interrupt)."""

    interrupt_id: str
    tool_call_id: str
    name: str
    args: dict[str, Any]
    description: str
    allowed: tuple[str, ...]


def approval_middleware(
    approve: Sequence[str] | Mapping[str, bool | InterruptOnConfig], tools: Sequence[BaseTool]
) -> HumanInTheLoopMiddleware | None:
    """LangChain's human-in-the-loop middleware for the tools in ``approve`` (names, or
    name -> ``InterruptOnConfig``), ``None`` when it names none; an unknown name is an
    :class:`OptionError`."""
    policies = approval_policies(approve, tools)
    if not policies:
        return None
    return HumanInTheLoopMiddleware(
        interrupt_on=dict(policies),
        description_prefix="Approval needed before this tool call runs",
        interrupt_mode="per_call",
    )


def approval_policies(
    approve: Sequence[str] | Mapping[str, bool | InterruptOnConfig], tools: Sequence[BaseTool]
) -> dict[str, InterruptOnConfig]:
    """Each tool that needs approval and the decisions allowed for it."""
    names = [t.name for t in tools]
    given = dict(approve) if isinstance(approve, Mapping) else dict.fromkeys(approve, True)
    policies: dict[str, InterruptOnConfig] = {}
    for name, policy in given.items():
        if name not in names:
            close = difflib.get_close_matches(name, names, 1)
            raise OptionError(
                f"approval was asked for tool {name!r}, which the agent does not have",
                fix=(f"did you mean {close[0]!r}? " if close else "")
                + f"the agent's tools: {', '.join(names)}",
            )
        if policy is True:
            policies[name] = InterruptOnConfig(allowed_decisions=list(DECISIONS))
        elif policy:
            policies[name] = policy
    return policies


def pending_calls(agent: Any, config: Mapping[str, Any]) -> list[PendingCall]:
    """The tool calls of the thread in ``config`` waiting for a decision."""
    snapshot = agent.get_state(config)
    found = []
    for item in snapshot.interrupts:
        value = item.value
        if not isinstance(value, Mapping) or value.get("type") != "tool_approval":
            continue
        allowed = _allowed(agent, str(value["name"]))
        found.append(
            PendingCall(
                item.id,
                str(value["tool_call_id"]),
                str(value["name"]),
                dict(value.get("args") or {}),
                str(value.get("description", "")),
                allowed,
            )
        )
    return found


def _allowed(agent: Any, name: str) -> tuple[str, ...]:
    for middleware in getattr(agent, "orchestrator_middleware", ()):
        if isinstance(middleware, HumanInTheLoopMiddleware):
            policy = middleware.interrupt_on.get(name)
            if policy is not None:
                return tuple(policy["allowed_decisions"])
    return DECISIONS


def check_decision(
    call: PendingCall, decision: Mapping[str, Any], tools: Mapping[str, BaseTool]
) -> dict[str, Any]:
    """``decision`` for ``call`` as LangChain takes it, or an :class:`OptionError` saying
    what is wrong: a type the tool's policy does not allow, an edit naming another tool,
    arguments that do not match the tool's schema, a rejection without a reason."""
    kind = decision.get("type")
    if kind not in call.allowed:
        raise OptionError(
            f"{kind!r} is not a decision allowed for {call.name}",
            fix=f"answer one of: {', '.join(call.allowed)}",
        )
    if kind == "approve":
        return {"type": "approve"}
    if kind == "reject":
        message = str(decision.get("message") or "").strip()
        if not message:
            raise OptionError("a rejection needs a reason", fix="say why the call must not run")
        return {"type": "reject", "message": message}
    action = decision.get("edited_action") or {}
    name = action.get("name", call.name)
    if name != call.name:
        raise OptionError(
            f"an edit of the {call.name} call names another tool, {name!r}",
            fix=f"edit the arguments of {call.name}, or reject the call with a reason",
        )
    args = action.get("args")
    if not isinstance(args, Mapping):
        raise OptionError("an edit needs the new arguments", fix='give {"args": {...}}')
    return {
        "type": "edit",
        "edited_action": {"name": name, "args": checked_args(tools[name], dict(args))},
    }


def checked_args(tool: BaseTool, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` if they are valid for ``tool``'s arguments schema, else an
    :class:`OptionError` naming the first problem."""
    schema = tool.tool_call_schema
    try:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            schema.model_validate(args)
        elif isinstance(schema, Mapping):
            import jsonschema

            jsonschema.validate(args, dict(schema))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "arguments"
        raise OptionError(
            f"the edited arguments of {tool.name} are not valid: {where}: {first['msg']}",
            fix=f"give arguments matching {tool.name}'s schema: {_shown_schema(tool)}",
        ) from None
    except Exception as exc:  # jsonschema.ValidationError, without importing it eagerly
        if type(exc).__name__ != "ValidationError":
            raise
        raise OptionError(
            f"the edited arguments of {tool.name} are not valid: {getattr(exc, 'message', exc)}",
            fix=f"give arguments matching {tool.name}'s schema: {_shown_schema(tool)}",
        ) from None
    return args


def _shown_schema(tool: BaseTool) -> str:
    return ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in tool.args.items()) or "{}"
