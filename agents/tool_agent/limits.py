"""Every run ends with an answer and a reason: the forced final answer at a limit.

LangChain's limit middleware count and block (``ModelCallLimitMiddleware``,
``ToolCallLimitMiddleware``); at the limit they end the run with a canned message. As the
ReAct executor does (``agents/executor.py``), :class:`StopAtLimits` instead asks the model
once more, without tools, for the final answer from what it found, and records why the run
stopped in the state's ``stop_reason``:

- ``final_answer``: the model answered;
- ``max_iterations``: the run's model calls reached ``ModelCallLimitMiddleware.run_limit``
  (the last allowed call is the final answer), ``thread_call_limit`` for its thread limit;
- ``max_execution_time``: the run's seconds ran out (also while the model was generating);
- ``tool_call_limit``: every tool reached its ``ToolCallLimitMiddleware`` limit (a tool at
  its limit is no longer offered);
- ``repeated_action``: the model repeated a call it already made for this request;
- ``context_overflow``: the conversation no longer fits the model's context;
- ``truncated_call``: the model's tool call did not fit its ``max_tokens``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, NotRequired, cast

from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ExtendedModelResponse,
    ModelCallLimitMiddleware,
    ModelRequest,
    ModelResponse,
    ToolCallLimitMiddleware,
)
from langchain.agents.middleware.types import PrivateStateAttr
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.channels.untracked_value import UntrackedValue
from langgraph.types import Command

from orchestrator.agents.react import STOP_NOTES
from orchestrator.errors import ContextOverflowError, TruncatedOutputError
from orchestrator.llama.base import GenerationTimeoutError
from orchestrator.llama.structured import PROSE_GBNF
from orchestrator.llama.tool_choice import last_request
from orchestrator.messages import content_text
from orchestrator.models.capabilities import capabilities

#: Why a run stopped, by reason, in the words the final-answer request uses.
NOTES = {
    **STOP_NOTES,
    "thread_call_limit": "This conversation has used all its model calls, so I must answer now.",
    "tool_call_limit": "I have used every tool as often as allowed, so I must answer now.",
    "truncated_call": "My tool call did not fit my output budget, so I must answer now.",
}
#: Characters of the last tool result kept when the conversation overflowed the context.
OVERFLOW_KEEP = 1500

Handler = Callable[[ModelRequest], ModelResponse]


class LimitState(AgentState[Any]):
    """``stop_reason`` (kept in checkpoints) and the run's start (this process only)."""

    stop_reason: NotRequired[str | None]
    run_started: NotRequired[Annotated[float, UntrackedValue, PrivateStateAttr]]


class StopAtLimits(AgentMiddleware[LimitState, Any, Any]):
    """Forced final answer and ``stop_reason`` at the limits of the middleware it is given.

    List it before (outside) retries and fallbacks, so a limit is checked once per step.
    """

    state_schema = LimitState

    def __init__(
        self,
        *,
        calls: ModelCallLimitMiddleware | None = None,
        tool_limits: Sequence[ToolCallLimitMiddleware] = (),
        max_seconds: float | None = None,
    ) -> None:
        super().__init__()
        self.calls, self.tool_limits, self.max_seconds = calls, list(tool_limits), max_seconds

    def before_agent(self, state: LimitState, runtime: Any) -> dict[str, Any]:
        return {"stop_reason": None, "run_started": time.monotonic()}

    def wrap_model_call(self, request: ModelRequest, handler: Handler) -> Any:
        reason = self._limit_reached(request)
        if reason is None and request.tools:
            request = request.override(tools=self._open_tools(request))
            if not request.tools:
                reason = "tool_call_limit"
        if reason is not None:
            return self._final(request, handler, reason)
        try:
            response = handler(self._timed(request))
        except GenerationTimeoutError:
            return self._final(request, handler, "max_execution_time")
        except TruncatedOutputError:  # a call longer than the model's max_tokens
            return self._final(request, handler, "truncated_call")
        except ContextOverflowError:
            return self._final(_shrunk(request), handler, "context_overflow")
        message = _ai(response)
        if message is not None and message.tool_calls:
            if _repeats(request.messages, message):
                return self._final(request, handler, "repeated_action")
            return response
        return _with_reason(response, "final_answer")

    def _limit_reached(self, request: ModelRequest) -> str | None:
        state, calls = _state(request), self.calls
        if calls is not None:
            run_count = state.get("run_model_call_count", 0) + 1  # this call's number
            if calls.run_limit is not None and run_count >= calls.run_limit:
                return "max_iterations"
            thread_count = state.get("thread_model_call_count", 0) + 1
            if calls.thread_limit is not None and thread_count >= calls.thread_limit:
                return "thread_call_limit"
        if self._seconds_left(request) == 0.0:
            return "max_execution_time"
        return None

    def _seconds_left(self, request: ModelRequest) -> float | None:
        if self.max_seconds is None:
            return None
        started = float(_state(request).get("run_started") or time.monotonic())
        return max(0.0, self.max_seconds - (time.monotonic() - started))

    def _timed(self, request: ModelRequest) -> ModelRequest:
        """A local model generates no longer than the run has left (``timeout=``)."""
        left = self._seconds_left(request)
        if left is None or not capabilities(request.model).local:
            return request
        return request.override(model_settings={**request.model_settings, "timeout": left})

    def _open_tools(self, request: ModelRequest) -> list[Any]:
        """The tools not at a run or thread limit of their ``ToolCallLimitMiddleware``."""
        run = _state(request).get("run_tool_call_count") or {}
        thread = _state(request).get("thread_tool_call_count") or {}
        closed: set[str] = set()
        for limit in self.tool_limits:
            key = limit.tool_name or "__all__"
            full = (limit.run_limit is not None and run.get(key, 0) >= limit.run_limit) or (
                limit.thread_limit is not None and thread.get(key, 0) >= limit.thread_limit
            )
            if full:
                closed |= {"*"} if limit.tool_name is None else {limit.tool_name}
        if "*" in closed:
            return []
        return [t for t in request.tools if _tool_name(t) not in closed]

    def _final(self, request: ModelRequest, handler: Handler, reason: str) -> Any:
        """The model's answer without tools, told why it must answer now."""
        note = NOTES.get(reason, "I must answer now from what I found.")
        ask = HumanMessage(f"{note} Answer the question now from what you found, without tools.")
        settings = {
            k: v
            for k, v in request.model_settings.items()
            if k not in ("parallel_tool_calls", "timeout")
        }
        settings.update(capabilities(request.model).constrain(gbnf=PROSE_GBNF))

        def asking(base: ModelRequest) -> ModelRequest:
            return base.override(
                messages=[*base.messages, ask], tools=[], tool_choice=None, model_settings=settings
            )

        try:
            response = handler(asking(request))
        except ContextOverflowError:
            response = handler(asking(_shrunk(request)))
        message = _ai(response)
        if message is not None and message.tool_calls:
            message.tool_calls = []
        return _with_reason(response, reason)


def _state(request: ModelRequest) -> Mapping[str, Any]:
    """The graph state, with the counters the limit middleware keep in it."""
    return cast(Mapping[str, Any], request.state)


def _ai(response: Any) -> AIMessage | None:
    result = response.result if isinstance(response, ModelResponse) else [response]
    return next((m for m in result if isinstance(m, AIMessage)), None)


def _with_reason(response: Any, reason: str) -> ExtendedModelResponse[Any]:
    if isinstance(response, ExtendedModelResponse):
        response = response.model_response
    if isinstance(response, AIMessage):
        response = ModelResponse(result=[response])
    message = _ai(response)
    if message is not None:
        message.response_metadata["stop_reason"] = reason
    return ExtendedModelResponse(
        model_response=response, command=Command(update={"stop_reason": reason})
    )


def _call_key(call: Any) -> tuple[str, str]:
    return call["name"], json.dumps(call.get("args") or {}, sort_keys=True, default=str)


def _repeats(history: Sequence[BaseMessage], message: AIMessage) -> bool:
    """Every call of ``message`` was already made since the user's last message."""
    _, start = last_request(history)
    made = {
        _call_key(call)
        for m in history[start + 1 :]
        if isinstance(m, AIMessage)
        for call in m.tool_calls
    }
    return all(_call_key(call) in made for call in message.tool_calls)


def _shrunk(request: ModelRequest) -> ModelRequest:
    """The request with only the user's last message and the last tool result (cut)."""
    text, index = last_request(request.messages)
    results = [m for m in request.messages[index + 1 :] if isinstance(m, ToolMessage)]
    kept: list[Any] = [HumanMessage(text)] if index >= 0 else []
    if results:
        found = content_text(results[-1])[:OVERFLOW_KEEP]
        kept.append(HumanMessage(f"The last tool result was: {found}"))
    return request.override(messages=kept)


def _tool_name(tool: Any) -> str:
    if isinstance(tool, dict):
        return str(tool.get("name") or tool.get("function", {}).get("name", ""))
    return str(getattr(tool, "name", ""))
