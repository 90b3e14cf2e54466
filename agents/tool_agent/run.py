"""Running a tool-calling agent on a thread: ask, continue, resume, and answer approvals.

:func:`run_agent` is what ``orchestrator agent --mode tools`` (and any other shell) calls:
a new question on a thread, or ``resume=True`` to finish the thread's interrupted run from
its last checkpoint (a run killed with ``-9``, or one waiting for approvals). Every step is
saved before the next starts (``durability="sync"``), so a completed tool call is never run
again. Pending approvals go to ``decide`` (one call at a time); without it the run returns
with ``stopped_because="awaiting_approval"`` and the pending calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.types import Command

from orchestrator.agents.tool_agent.approval import PendingCall, check_decision, pending_calls
from orchestrator.agents.tool_agent.checkpoints import prune_thread
from orchestrator.errors import OptionError
from orchestrator.llama.tool_choice import last_request
from orchestrator.messages import content_text
from orchestrator.tracing import annotate

Decide = Callable[[PendingCall], Mapping[str, Any]]
#: Graph steps a run may take: a backstop only (each agent step is about five graph steps;
#: the agent's own limits end runs first, with an answer).
RECURSION_LIMIT = 10_000


def new_thread_id() -> str:
    return uuid.uuid4().hex[:12]


def run_agent(
    agent: Any,
    question: str | None,
    *,
    thread_id: str | None = None,
    resume: bool = False,
    decide: Decide | None = None,
    prune: bool = True,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``question`` on ``thread_id`` (a new thread when ``None``), or with ``resume``
    finish the thread's interrupted run. Returns ``output``, ``stopped_because``, ``steps``
    (``action``, ``args``, ``observation``), ``thread_id`` and ``pending`` (calls waiting
    for a decision). ``prune``: keep only the thread's latest checkpoint, after each tool
    step and at the end (what a resume needs; older ones are history for time travel).
    ``on_event``: called with each step as it completes (``{"type": "action" | ...}``)."""
    thread_id = thread_id or new_thread_id()
    config: dict[str, Any] = {
        "configurable": {"thread_id": thread_id},
        "recursion_limit": RECURSION_LIMIT,
    }
    inputs: Any = _first_input(agent, config, question, resume)
    annotate(session=thread_id, agent_resumed=resume)
    values: dict[str, Any] = {}
    while True:  # input None: LangGraph goes on from the last checkpoint and its writes
        for event in _steps(agent, inputs, config, values):
            if on_event is not None:
                on_event(event)
            if prune and event["type"] == "observation" and agent.checkpointer is not None:
                prune_thread(agent.checkpointer, thread_id)  # storage stays one checkpoint
        pending = pending_calls(agent, config) if agent.checkpointer is not None else []
        if not pending or decide is None:
            break
        inputs = Command(resume={p.interrupt_id: _decided(agent, p, decide) for p in pending})
    if agent.checkpointer is not None:
        values = agent.get_state(config).values
    result = summary(values, thread_id, pending)
    if prune and agent.checkpointer is not None:
        prune_thread(agent.checkpointer, thread_id)
    return result


def _first_input(agent: Any, config: dict[str, Any], question: str | None, resume: bool) -> Any:
    if agent.checkpointer is None and resume:
        raise OptionError("resume needs checkpoints", fix="build the agent with a checkpointer")
    if resume:
        if question:
            raise OptionError(
                "--resume finishes the thread's interrupted run; it takes no new question",
                fix="leave out the question, or drop --resume to ask it on the thread",
            )
        if not agent.get_state(config).values:
            raise OptionError(
                f"thread {config['configurable']['thread_id']!r} has no saved run to resume",
                fix="check the thread id, or start the thread with a question",
            )
        return None
    if not question:
        raise OptionError("no question given", fix='orchestrator agent --mode tools "QUESTION"')
    if agent.checkpointer is not None and agent.get_state(config).next:
        raise OptionError(
            f"thread {config['configurable']['thread_id']!r} has an unfinished run",
            fix="finish it first with --thread ID --resume (or use another thread)",
        )
    return {"messages": [HumanMessage(question)]}


def _decided(agent: Any, call: PendingCall, decide: Decide) -> dict[str, Any]:
    """The reviewer's decision, checked (an interactive ``decide`` checks its answers with
    :func:`check_decision` itself, to ask again)."""
    decision = check_decision(call, decide(call), agent.orchestrator_tools)
    annotate(**{f"approval.{call.tool_call_id}": f"{call.name}: {decision['type']}"})
    return decision


def _steps(
    agent: Any, inputs: Any, config: dict[str, Any], values: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """The run's events: each model turn's calls or answer, each tool's result; ``values``
    gets the state as it is after each step."""
    durable = {"durability": "sync"} if agent.checkpointer is not None else {}
    modes = ["updates", "values"]
    for mode, update in agent.stream(inputs, config, stream_mode=modes, **durable):
        if mode == "values":
            values.clear()
            values.update(update)
            continue
        for node, change in update.items():
            if not isinstance(change, Mapping):
                continue
            for message in change.get("messages") or []:
                yield from _events(node, message)


def _events(node: str, message: BaseMessage) -> Iterator[dict[str, Any]]:
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            yield {"type": "action", "action": call["name"], "args": call["args"]}
        if not message.tool_calls and node == "model":
            yield {"type": "answer", "output": content_text(message)}
    elif isinstance(message, ToolMessage):
        yield {"type": "observation", "action": message.name, "observation": message.text}


def summary(
    values: Mapping[str, Any], thread_id: str, pending: list[PendingCall]
) -> dict[str, Any]:
    """The run's result from the thread's state: the last question's calls and answer."""
    messages: list[BaseMessage] = list(values.get("messages") or [])
    _, start = last_request(messages)
    turn = messages[start + 1 :]
    results = {m.tool_call_id: m for m in turn if isinstance(m, ToolMessage)}
    steps = [
        {
            "action": call["name"],
            "args": call["args"],
            "observation": content_text(results[call["id"]]) if call["id"] in results else None,
        }
        for m in turn
        if isinstance(m, AIMessage)
        for call in m.tool_calls
    ]
    answers = [m for m in turn if isinstance(m, AIMessage) and not m.tool_calls]
    if pending:
        reason = "awaiting_approval"
    else:
        reason = values.get("stop_reason") or ("final_answer" if answers else "interrupted")
    return {
        "output": content_text(answers[-1]).strip() if answers and not pending else "",
        "stopped_because": reason,
        "steps": steps,
        "thread_id": thread_id,
        "pending": [
            {"id": p.interrupt_id, "action": p.name, "args": p.args, "allowed": list(p.allowed)}
            for p in pending
        ],
    }
