"""ReAct agents that local models can drive: the loop, its tools and its grammar.

The book's agent code runs with only its import lines changed::

    from orchestrator.agents import AgentExecutor, Tool, create_react_agent, load_tools

``agentic_rag({name: (retriever, description)}, llm)`` is the book's agentic RAG: a ReAct agent
with one knowledge-base tool per index, answering with ``[n]`` citations of what it read.

``create_agent(model, tools, ...)`` is the tool-calling agent on LangChain's ``create_agent``
(LangGraph: checkpoints, approvals, middleware), for local models too; it and ``run_agent``,
``open_checkpointer`` load on first use (the ``agents`` extra):
:mod:`orchestrator.agents.tool_agent`.
"""

from __future__ import annotations

from langchain_core.agents import AgentAction, AgentFinish, AgentStep
from langchain_core.tools import BaseTool, Tool, tool

from orchestrator.agents.agentic_rag import (
    AgenticRAG,
    CitingKnowledgeTool,
    KnowledgeIndex,
    PassageLedger,
    agentic_rag,
    agentic_rag_prompt,
)
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
from orchestrator.lazy import lazy_getattr

_LAZY = {
    name: "orchestrator.agents.tool_agent"
    for name in ("create_agent", "run_agent", "open_checkpointer", "close_checkpointer")
}
__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = [
    "KNOWN_TOOLS",
    "AgentAction",
    "AgentExecutor",
    "AgentFinish",
    "AgentParseError",
    "AgentStep",
    "AgentTrace",
    "AgenticRAG",
    "BaseTool",
    "CalculatorError",
    "CalculatorTool",
    "CitingKnowledgeTool",
    "DuckDuckGoSearchResults",
    "KnowledgeBaseTool",
    "KnowledgeIndex",
    "PassageLedger",
    "ReActAgent",
    "StepRecord",
    "Tool",
    "VerbosePrinter",
    "agentic_rag",
    "agentic_rag_prompt",
    "calculate",
    "close_checkpointer",
    "create_agent",
    "create_react_agent",
    "format_scratchpad",
    "load_tools",
    "open_checkpointer",
    "open_knowledge_base",
    "run_agent",
    "tool",
]
