"""The call-or-answer decision of a local model with tools and ``tool_choice="auto"``.

Left to itself, a small model almost never starts a tool call: the embedded 135M model gives
the first character of a call, ``{``, a probability under 0.004 whatever the question, so
greedy decoding under a "call or answer" grammar always answers. Nor does that first-token
probability say which questions need a tool (measured: it is as high for "Say hello." as
for "What's the weather in Paris?").

The decision is therefore made by comparing two likelihoods the model gives the user's
request: under the hypothesis "an assistant that answers by calling tool T: <its
description>" and under "an assistant that answers from its own knowledge" (one system turn
each, the request as the user turn, :data:`TOOL_FRAME` / :data:`ANSWER_FRAME`). A tool whose
hypothesis makes the request at least ``e**CALL_MARGIN`` times likelier than answering
is one the request needs (the noisy-channel reading of "which tool is this request for",
which small models do far better than the direct question). The model then writes the call
under a grammar that admits only those tools, with arguments valid for their schemas; no
tool passing the margin means a plain answer. No rule looks at the request's words: the
model's log-likelihoods decide.

A tool already called since the user's last message is not offered again in that exchange
(its result is in the conversation), so after the results come back the model answers or
calls a tool it has not used yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from orchestrator.errors import ChatFormatError
from orchestrator.llama.scoring import continuation_logprobs
from orchestrator.messages import content_text

if TYPE_CHECKING:
    from orchestrator.llama.chat import ChatLlamaCpp

#: The hypothesis "this request is for tool {name}" (a system turn).
TOOL_FRAME = "You are an assistant. You answer by calling the tool {name}: {description}"
#: The hypothesis "this request is answered without tools" (a system turn).
ANSWER_FRAME = "You are an assistant. You answer from your own knowledge."
#: Nats by which a tool's hypothesis must raise the request's log-likelihood over answering:
#: the log prior odds of answering. Measured on the embedded model (docs/agents.md): chat
#: requests ("Say hello.", "Thank you!") stay under 2, requests for a matching tool
#: (weather, products) reach 3.7 to 27.
CALL_MARGIN = 2.5
#: The request's first tokens scored (a long request's head says what it asks for).
MAX_REQUEST_TOKENS = 96
_SLOT = "\x00request\x00"


@dataclass(frozen=True)
class ToolDecision:
    """What the model decided for one turn: call (one of ``tools``) or answer."""

    call: bool
    tools: tuple[str, ...] = ()
    """The tools the call may name, likeliest first (empty when answering)."""
    gains: dict[str, float] = field(default_factory=dict)
    """Per tool offered: nats its hypothesis adds to the request's log-likelihood."""

    def as_metadata(self) -> dict[str, Any]:
        """For ``response_metadata["tool_decision"]`` (traces, benchmarks)."""
        return {
            "call": self.call,
            "tools": list(self.tools),
            "gains": {k: round(v, 3) for k, v in self.gains.items()},
            "margin": CALL_MARGIN,
        }


def last_request(messages: Sequence[BaseMessage]) -> tuple[str, int]:
    """The text of the last user message and its index (``("", -1)`` without one)."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, HumanMessage) or message.type in ("human", "user"):
            return content_text(message), index
    return "", -1


def open_tools(messages: Sequence[BaseMessage], names: Sequence[str]) -> list[str]:
    """``names`` less the tools already called since the last user message."""
    _, start = last_request(messages)
    called = {
        call["name"]
        for message in messages[start + 1 :]
        if isinstance(message, AIMessage)
        for call in message.tool_calls
    }
    return [name for name in names if name not in called]


def decide(
    model: ChatLlamaCpp, messages: Sequence[BaseMessage], tools: Sequence[Mapping[str, Any]]
) -> ToolDecision:
    """Whether ``model`` should call one of ``tools`` (OpenAI-format dicts) now, and which."""
    request, _ = last_request(messages)
    by_name = {t["function"]["name"]: t["function"] for t in tools}
    offered = open_tools(messages, list(by_name))
    if not request.strip() or not offered:
        return ToolDecision(call=False)
    engine = model.engine
    tokens = engine.tokenize(engine.defuse_specials(request), special=False)
    tokens = tokens[:MAX_REQUEST_TOKENS]
    frames = [ANSWER_FRAME] + [
        TOOL_FRAME.format(name=name, description=_described(by_name[name])) for name in offered
    ]
    scores = continuation_logprobs(engine, [(_prefix(model, f), tokens) for f in frames])
    gains = {name: score - scores[0] for name, score in zip(offered, scores[1:], strict=True)}
    chosen = sorted((n for n in offered if gains[n] >= CALL_MARGIN), key=lambda n: -gains[n])
    return ToolDecision(call=bool(chosen), tools=tuple(chosen), gains=gains)


def _described(function: Mapping[str, Any]) -> str:
    """The tool's description as written (the model reads tool text verbatim)."""
    return str(function.get("description") or "").strip() or "no description"


def _prefix(model: ChatLlamaCpp, frame: str) -> list[int]:
    """The prompt tokens up to where the user's request starts, under ``frame``."""
    from orchestrator.llama.chat import render_messages

    try:
        text = render_messages(
            model, [{"role": "system", "content": frame}, {"role": "user", "content": _SLOT}]
        )
    except ChatFormatError:  # a template without a system role: the frame opens the user turn
        text = render_messages(model, [{"role": "user", "content": f"{frame}\n\n{_SLOT}"}])
    return model.prompt_tokens(text.split(_SLOT)[0])
