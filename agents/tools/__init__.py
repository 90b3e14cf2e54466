"""Tools for agents: ``calculator``, ``web_search``, ``knowledge_base`` and :func:`load_tools`."""

from __future__ import annotations

from orchestrator.agents.tools.calculator import CalculatorError, calculate, check_expression
from orchestrator.agents.tools.knowledge import KnowledgeBaseTool, open_knowledge_base
from orchestrator.agents.tools.loading import KNOWN_TOOLS, load_tools
from orchestrator.agents.tools.math_tool import CalculatorTool
from orchestrator.agents.tools.search import DuckDuckGoSearchResults, SearchBackend

__all__ = [
    "KNOWN_TOOLS",
    "CalculatorError",
    "CalculatorTool",
    "DuckDuckGoSearchResults",
    "KnowledgeBaseTool",
    "SearchBackend",
    "calculate",
    "check_expression",
    "load_tools",
    "open_knowledge_base",
]
