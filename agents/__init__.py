"""ReAct agents that local models can drive: the loop, its tools and its grammar.

The book's agent code runs with only its import lines changed::

    from orchestrator.agents import AgentExecutor, Tool, create_react_agent, load_tools
"""

from __future__ import annotations

from langchain_core.agents import AgentAction, AgentFinish, AgentStep
from langchain_core.tools import BaseTool, Tool, tool

from orchestrator.agents.events import AgentTrace, StepRecord, VerbosePrinter
from orchestrator.agents.executor import AgentExecutor, AgentParseError
from orchestrator.agents.react import ReActAgent, create_react_agent, format_scratchpad
from orchestrator.agents.tools import (
    KNOWN_TOOLS,
    CalculatorError,
    CalculatorTool,
    DuckDuckGoSearchResults,
    KnowledgeBaseTool,
    calculate,
    load_tools,
    open_knowledge_base,
)

__all__ = [
    "KNOWN_TOOLS",
    "AgentAction",
    "AgentExecutor",
    "AgentFinish",
    "AgentParseError",
    "AgentStep",
    "AgentTrace",
    "BaseTool",
    "CalculatorError",
    "CalculatorTool",
    "DuckDuckGoSearchResults",
    "KnowledgeBaseTool",
    "ReActAgent",
    "StepRecord",
    "Tool",
    "VerbosePrinter",
    "calculate",
    "create_react_agent",
    "format_scratchpad",
    "load_tools",
    "open_knowledge_base",
    "tool",
]
