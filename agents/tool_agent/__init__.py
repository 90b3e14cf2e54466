"""Tool-calling agents on LangChain's ``create_agent`` / LangGraph, for local models too.

    from orchestrator.agents import create_agent, run_agent, open_checkpointer

    agent = create_agent(ChatLlamaCpp(), [multiply, get_weather],
                         checkpointer=open_checkpointer(), approve=["get_weather"])
    result = run_agent(agent, "What's the weather in Paris?", thread_id="t1", decide=ask)

Needs the ``agents`` extra (langchain, langgraph, langgraph-checkpoint-sqlite).
"""

from __future__ import annotations

from orchestrator.agents.tool_agent.approval import (
    PendingCall,
    approval_policies,
    check_decision,
    pending_calls,
)
from orchestrator.agents.tool_agent.checkpoints import (
    close_checkpointer,
    default_checkpoint_path,
    open_checkpointer,
    prune_thread,
    thread_bytes,
)
from orchestrator.agents.tool_agent.factory import create_agent
from orchestrator.agents.tool_agent.limits import StopAtLimits
from orchestrator.agents.tool_agent.local import ConstrainedToolCalls, parse_turn, turn_schema
from orchestrator.agents.tool_agent.run import new_thread_id, run_agent, summary

__all__ = [
    "ConstrainedToolCalls",
    "PendingCall",
    "StopAtLimits",
    "approval_policies",
    "check_decision",
    "close_checkpointer",
    "create_agent",
    "default_checkpoint_path",
    "new_thread_id",
    "open_checkpointer",
    "parse_turn",
    "pending_calls",
    "prune_thread",
    "run_agent",
    "summary",
    "thread_bytes",
    "turn_schema",
]
