"""Our MCP client (load_mcp_tools) against our own server (`orchestrator mcp`) over stdio."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp_support import build_kb_index, stdio_config

from orchestrator.agents.tools.mcp import MCPTool, MCPToolset, load_mcp_tools

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_kb_index(tmp_path_factory.mktemp("mcp-stdio"))


@pytest.fixture(scope="module")
def toolset(index: Path) -> Iterator[MCPToolset]:
    with load_mcp_tools(stdio_config(index)) as tools:
        yield tools


def _tool(tools: MCPToolset, name: str) -> MCPTool:
    (found,) = [t for t in tools if t.name == name]
    assert isinstance(found, MCPTool)
    return found


def test_lists_the_three_tools(toolset: MCPToolset) -> None:
    assert sorted(t.name for t in toolset) == ["calculator", "knowledge_base", "rag"]
    assert toolset.servers == ["orch"]
    assert {t.server for t in toolset} == {"orch"}  # type: ignore[attr-defined]
    assert list(_tool(toolset, "calculator").args) == ["expression"]


def test_calculator_answers_14(toolset: MCPToolset) -> None:
    calculator = _tool(toolset, "calculator")
    assert calculator.invoke("2*(3+4)") == "14"
    assert calculator.invoke({"expression": "2**10"}) == "1024"


def test_knowledge_base_finds_the_right_document(toolset: MCPToolset) -> None:
    text = _tool(toolset, "knowledge_base").invoke("Which island has purple sand?")
    assert text.startswith("[1] (zorblat.md) Zorblat is a small volcanic island")
    quimby = _tool(toolset, "knowledge_base").invoke("cheese fair")
    assert quimby.startswith("[1] (quimby.md)")


def test_a_refused_expression_is_an_observation_not_an_exception(toolset: MCPToolset) -> None:
    text = _tool(toolset, "calculator").invoke("__import__('os').system('true')")
    assert text.startswith("MCP tool 'calculator' on server 'orch' failed:")
    assert "double underscores" in text


async def test_sync_invoke_works_inside_a_running_event_loop(toolset: MCPToolset) -> None:
    calculator = _tool(toolset, "calculator")
    assert calculator.invoke("6*7") == "42"  # blocking call from async code: no deadlock
    assert await calculator.ainvoke("2*(3+4)") == "14"


@pytest.mark.integration
def test_rag_answers_with_numbered_sources(toolset: MCPToolset) -> None:
    text = _tool(toolset, "rag").invoke("What is Zorblat famous for?")
    answer, sources = text.split("\nSources:\n")
    assert answer.strip()
    assert sources.splitlines()[0].startswith("[1] zorblat.md (")


def test_closed_tools_answer_with_an_observation(index: Path) -> None:
    tools = load_mcp_tools(stdio_config(index, name="short"))
    calculator = _tool(tools, "calculator")
    assert calculator.invoke("1+1") == "2"
    tools.close()
    assert calculator.invoke("1+1") == (
        "MCP tool 'calculator' on server 'short' is closed (its tool set was closed)"
    )
