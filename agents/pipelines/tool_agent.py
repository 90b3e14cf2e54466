"""Building the tool-calling agent an :class:`AgentSpec` with ``loop: tools`` names.

The same tools as the ReAct agent (:func:`~orchestrator.agents.pipelines.agent.agent_parts`:
built-in, knowledge base, MCP servers'), the same greedy model, limits from the same
fields (``max_iterations`` tool steps, then the final answer; ``max_execution_time``), plus
checkpoints (``checkpoints``: a SQLite file or a PostgreSQL DSN; by default under
``$ORCHESTRATOR_HOME``) and the ``approve`` tools. The shells call :meth:`ToolAgent.run`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.agents.pipelines.specs import AgentSpec


@dataclass
class ToolAgent:
    """A built tool-calling agent and its checkpoint store."""

    agent: Any
    checkpointer: Any
    spec: AgentSpec

    def run(
        self,
        question: str | None,
        *,
        thread_id: str | None = None,
        resume: bool = False,
        decide: Callable[[Any], Any] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """:func:`~orchestrator.agents.tool_agent.run.run_agent` on this agent."""
        from orchestrator.agents.tool_agent import run_agent

        return run_agent(
            self.agent,
            question,
            thread_id=thread_id,
            resume=resume,
            decide=decide,
            on_event=on_event,
        )

    def close(self) -> None:
        from orchestrator.agents.tool_agent import close_checkpointer

        close_checkpointer(self.checkpointer)


def build_tool_agent(
    spec: AgentSpec, *, on_close: Any = None, llm: Any = None, tools: Any = None
) -> ToolAgent:
    """The agent ``spec`` names, its parts made here unless given (a server's loaded
    model); ``on_close(close)`` registers the checkpoint store's closing."""
    from orchestrator.agents.pipelines.agent import agent_parts
    from orchestrator.agents.tool_agent import create_agent, open_checkpointer

    if llm is None or tools is None:
        llm, tools = agent_parts(spec, on_close)
    checkpointer = open_checkpointer(spec.checkpoints)
    built = ToolAgent(
        create_agent(
            llm,
            tools,
            checkpointer=checkpointer,
            approve=spec.approve,
            max_steps=spec.max_iterations + 1,
            max_seconds=spec.max_execution_time,
        ),
        checkpointer,
        spec,
    )
    if on_close is not None:
        on_close(built.close)
    return built
