"""``load_tools(["llm-math", ...], llm=llm)``: built-in tools by name, as in the book."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

from orchestrator.agents.tools.knowledge import KnowledgeBaseTool, open_knowledge_base
from orchestrator.agents.tools.math_tool import CalculatorTool
from orchestrator.agents.tools.search import DuckDuckGoSearchResults, SearchBackend
from orchestrator.errors import OptionError, unknown_option
from orchestrator.retrieval.location import IndexSpec

#: Accepted names (LangChain's included) -> the tool they load.
KNOWN_TOOLS = {
    "calculator": "calculator",
    "llm-math": "calculator",
    "web_search": "web_search",
    "ddg-search": "web_search",
    "duckduckgo": "web_search",
    "knowledge_base": "knowledge_base",
}


def load_tools(
    tool_names: Sequence[str],
    llm: Runnable[Any, Any] | None = None,
    *,
    retriever: BaseRetriever | None = None,
    index_dir: IndexSpec | str | Path | None = None,
    search_backend: SearchBackend | None = None,
    search_timeout: float = 8.0,
    k: int = 3,
) -> list[BaseTool]:
    """Built-in tools by name; unknown names are an error listing the known ones.

    ``knowledge_base`` needs ``retriever=`` or ``index_dir=`` (an
    :class:`~orchestrator.retrieval.location.IndexSpec`, or a folder); ``search_backend`` replaces
    DuckDuckGo (tests use :class:`agents.testing.FakeSearchBackend`).
    """
    if isinstance(tool_names, str):
        raise OptionError(
            f"load_tools got the string {tool_names!r}, not a list of names",
            fix=f'pass a list, e.g. load_tools(["{tool_names}"])',
        )
    tools: list[BaseTool] = []
    for raw in tool_names:
        kind = KNOWN_TOOLS.get(raw.strip())
        if kind is None:
            error = unknown_option(raw, KNOWN_TOOLS, where="load_tools")
            raise OptionError(
                f"unknown tool {raw!r}; known tools: {', '.join(KNOWN_TOOLS)}", fix=error.fix
            )
        if kind in {t.name for t in tools}:
            continue
        if kind == "calculator":
            tools.append(CalculatorTool(llm=llm))
        elif kind == "web_search":
            tools.append(DuckDuckGoSearchResults(backend=search_backend, timeout=search_timeout))
        else:
            tools.append(_knowledge_base(retriever, index_dir, k))
    return tools


def _knowledge_base(
    retriever: BaseRetriever | None, index_dir: IndexSpec | str | Path | None, k: int
) -> BaseTool:
    if retriever is not None:
        return KnowledgeBaseTool(retriever=retriever, k=k)
    if index_dir is not None:
        return open_knowledge_base(index_dir, k=k)
    raise OptionError(
        "the knowledge_base tool needs an index",
        fix="pass retriever=... or index_dir=DIR (CLI: --index DIR)",
    )
