"""``create_agent``: LangChain's tool-calling agent, with what local models and long runs need.

The graph, its checkpoints, interrupts and middleware API are LangChain's and LangGraph's
(``langchain.agents.create_agent``). Around the model and the tools this adds, outermost
first:

1. :class:`~orchestrator.agents.tool_agent.limits.StopAtLimits`: a final answer forced at a
   limit, with ``stop_reason``;
2. ``ModelCallLimitMiddleware`` (``max_steps`` model calls per run, the last one the final
   answer; ``max_thread_calls`` per thread) and one ``ToolCallLimitMiddleware`` per entry
   of ``tool_limits`` (a tool at its limit is not offered again);
3. ``SummarizationMiddleware`` near the context window (the model's own, from
   :func:`~orchestrator.models.capabilities.capabilities`): old turns become a summary,
   and a tool call is never separated from its result;
4. ``ModelFallbackMiddleware`` (``fallback`` models, in order) and ``ModelRetryMiddleware``
   (``retries`` with exponential backoff; deliberate errors such as a context overflow are
   not retried);
5. :class:`~orchestrator.agents.tool_agent.local.ConstrainedToolCalls`: each model turn
   decoded as "call these tools with valid arguments, or answer" where the model allows;
6. for tools: LangChain's ``HumanInTheLoopMiddleware`` for the ``approve`` tools,
   ``ToolErrorMiddleware`` (a failing tool's error is returned to the model as its
   observation) and ``ToolRetryMiddleware`` (``tool_retries`` for transient errors).

The caller's own ``middleware`` run inside all of these, next to the model and the tools.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain.agents import create_agent as langchain_create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    InterruptOnConfig,
    ModelCallLimitMiddleware,
    ModelFallbackMiddleware,
    ModelRetryMiddleware,
    SummarizationMiddleware,
    ToolCallLimitMiddleware,
    ToolErrorMiddleware,
    ToolRetryMiddleware,
)
from langchain_core.messages import BaseMessage
from langchain_core.tools import BaseTool
from langchain_core.tools import tool as as_tool

from orchestrator.agents.tool_agent.approval import approval_middleware
from orchestrator.agents.tool_agent.limits import StopAtLimits
from orchestrator.agents.tool_agent.local import ConstrainedToolCalls
from orchestrator.errors import OptionError, OrchestratorError
from orchestrator.messages import content_text
from orchestrator.models.capabilities import capabilities

#: Share of the context window at which old turns are summarized, and the share kept.
SUMMARIZE_AT, KEEP_AFTER_SUMMARY = 0.75, 0.4
#: Errors a tool may raise that are worth another try (the rest are observations at once).
TRANSIENT = (ConnectionError, TimeoutError, OSError)


def create_agent(
    model: Any,
    tools: Sequence[BaseTool | Any],
    *,
    system_prompt: str | None = None,
    middleware: Sequence[AgentMiddleware[Any, Any, Any]] = (),
    checkpointer: Any = None,
    approve: Sequence[str] | Mapping[str, bool | InterruptOnConfig] = (),
    max_steps: int | None = 8,
    max_thread_calls: int | None = None,
    max_seconds: float | None = None,
    tool_limits: Mapping[str, int] | None = None,
    retries: int = 2,
    retry_delay: float = 1.0,
    tool_retries: int = 1,
    fallback: Sequence[Any] = (),
    summarize: bool = True,
    name: str | None = None,
) -> Any:
    """A tool-calling agent on LangChain's ``create_agent`` (see the module docstring).

    ``invoke({"messages": [...]}, {"configurable": {"thread_id": ...}})`` as any LangChain
    agent; with a ``checkpointer`` the thread's state is saved after every step. ``approve``:
    tools a person must approve (names, or name -> LangChain ``InterruptOnConfig``).
    ``max_steps``: model calls per run, the last of them the forced final answer;
    ``max_seconds``: the run's time; ``tool_limits``: calls per run by tool name
    (``"*"``: all tools together); ``fallback``: models tried in order when the model fails;
    ``retries`` / ``tool_retries`` with exponential backoff from ``retry_delay`` seconds.
    """
    made = [t if isinstance(t, BaseTool) else as_tool(t) for t in tools]
    if max_steps is not None and max_steps < 1:
        raise OptionError(f"max_steps={max_steps}", fix="allow at least 1 model call")
    calls = (
        ModelCallLimitMiddleware(run_limit=max_steps, thread_limit=max_thread_calls)
        if max_steps is not None or max_thread_calls is not None
        else None
    )
    limits = [
        ToolCallLimitMiddleware(tool_name=None if n == "*" else n, run_limit=count)
        for n, count in (tool_limits or {}).items()
    ]
    stack: list[AgentMiddleware[Any, Any, Any]] = [
        StopAtLimits(calls=calls, tool_limits=limits, max_seconds=max_seconds),
        *([calls] if calls is not None else []),
        *limits,
        *_summarizer(model, summarize),
        *([ModelFallbackMiddleware(*fallback)] if fallback else []),
        ModelRetryMiddleware(
            max_retries=retries,
            retry_on=_retryable,
            on_failure="error",
            initial_delay=retry_delay,
        ),
        ConstrainedToolCalls(),
        *_tool_middleware(approve, made, tool_retries, retry_delay),
        *middleware,
    ]
    agent: Any = langchain_create_agent(
        model,
        made,
        system_prompt=system_prompt,
        middleware=stack,
        checkpointer=checkpointer,
        name=name,
    )
    agent.orchestrator_middleware = tuple(stack)
    agent.orchestrator_tools = {t.name: t for t in made}
    return agent


def _tool_middleware(
    approve: Sequence[str] | Mapping[str, bool | InterruptOnConfig],
    tools: Sequence[BaseTool],
    retries: int,
    delay: float,
) -> list[AgentMiddleware[Any, Any, Any]]:
    """Approval outermost (asked once, before any try), then errors as observations, then
    retries of transient errors innermost."""
    found: list[AgentMiddleware[Any, Any, Any]] = []
    review = approval_middleware(approve, tools)
    if review is not None:
        found.append(review)
    found.append(ToolErrorMiddleware(_observation))
    if retries > 0:
        found.append(
            ToolRetryMiddleware(
                max_retries=retries, retry_on=TRANSIENT, on_failure="error", initial_delay=delay
            )
        )
    return found


def _observation(exc: Exception, request: Any) -> str:
    """A failing tool's error as the model sees it (as the ReAct executor words it)."""
    return f"Tool {request.tool_call['name']} failed: {type(exc).__name__}: {exc}"


def _retryable(exc: Exception) -> bool:
    """Retry what may pass (a server's hiccup, a failed decode), not a deliberate error."""
    return not isinstance(exc, OrchestratorError | ValueError | TypeError)


def _summarizer(model: Any, summarize: bool) -> list[AgentMiddleware[Any, Any, Any]]:
    """LangChain's summarization at :data:`SUMMARIZE_AT` of the model's context window,
    counting with the model's tokenizer; none when the window is unknown."""
    if not summarize:
        return []
    found = capabilities(model)
    window = found.context_window
    if not window:
        return []

    def count(messages: Iterable[Any]) -> int:
        texts = (content_text(m) if isinstance(m, BaseMessage) else str(m) for m in messages)
        return sum(found.count_tokens(text) + 4 for text in texts)

    return [
        SummarizationMiddleware(
            model,
            trigger=("tokens", int(window * SUMMARIZE_AT)),
            keep=("tokens", int(window * KEEP_AFTER_SUMMARY)),
            token_counter=count,
        )
    ]
