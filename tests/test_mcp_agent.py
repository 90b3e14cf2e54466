"""A FastMCP server of our own (written here, run over stdio) driven by the ReAct agent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp_support import text_server_entry, write_test_server
from typer.testing import CliRunner

from orchestrator.agents import AgentExecutor, create_react_agent
from orchestrator.agents.tools.mcp import MCPToolset, load_mcp_tools
from orchestrator.cli.app import app
from orchestrator.testing import ScriptedLLM

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_server(tmp_path_factory.mktemp("mcp-agent"))


@pytest.fixture()
def config_file(script: Path, tmp_path: Path) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"text": text_server_entry(script)}}), "utf-8")
    return path


@pytest.fixture()
def toolset(config_file: Path) -> Iterator[MCPToolset]:
    with load_mcp_tools(config_file) as tools:
        yield tools


def _run(tools: MCPToolset, names: list[str], replies: list[str]) -> dict:  # type: ignore[type-arg]
    chosen = [t for t in tools if t.name in names]
    llm = ScriptedLLM(replies=replies)
    executor = AgentExecutor(
        agent=create_react_agent(llm, chosen), tools=chosen, handle_parsing_errors=True
    )
    return executor.invoke({"input": "the question"})


def test_the_agent_calls_an_mcp_tool_and_observes_its_result(toolset: MCPToolset) -> None:
    assert sorted(t.name for t in toolset) == ["crash", "fail", "join", "reverse"]
    result = _run(
        toolset,
        ["reverse"],
        [
            " I should reverse it.\nAction: reverse\nAction Input: hello world\n",
            " Done.\nFinal Answer: dlrow olleh",
        ],
    )
    (step,) = result["steps"]
    assert (step["action"], step["action_input"], step["observation"]) == (
        "reverse",
        "hello world",
        "dlrow olleh",
    )
    assert result["output"] == "dlrow olleh"
    assert result["stopped_because"] == "final_answer"


def test_a_tool_with_two_parameters_takes_a_json_object(toolset: MCPToolset) -> None:
    result = _run(
        toolset,
        ["join"],
        [
            ' Join.\nAction: join\nAction Input: {"left": "ab", "right": "cd"}\n',
            " Done.\nFinal Answer: ab-cd",
        ],
    )
    assert result["steps"][0]["observation"] == "ab-cd"
    (join,) = [t for t in toolset if t.name == "join"]
    assert "Input: a JSON object with keys left, right." in join.description


def test_a_failing_mcp_tool_becomes_an_observation(toolset: MCPToolset) -> None:
    result = _run(
        toolset,
        ["fail", "reverse"],
        [
            " Try it.\nAction: fail\nAction Input: boom\n",
            " Try again.\nAction: reverse\nAction Input: abc\n",
            " Done.\nFinal Answer: cba",
        ],
    )
    first, second = result["steps"]
    assert first["observation"] == (
        "MCP tool 'fail' on server 'text' failed: Error executing tool fail: refused: boom"
    )
    assert second["observation"] == "cba"
    assert result["output"] == "cba"


def test_a_crashed_server_is_an_observation_for_every_later_call(toolset: MCPToolset) -> None:
    by_name = {t.name: t for t in toolset}
    assert by_name["crash"].invoke({}).startswith("MCP tool 'crash' on server 'text' failed:")
    assert by_name["reverse"].invoke("abc") == (
        "MCP tool 'reverse' on server 'text' failed: the connection is closed "
        "(the server has stopped)"
    )


def test_cli_unknown_tool_lists_the_mcp_tools(config_file: Path) -> None:
    result = runner.invoke(
        app, ["agent", "q", "--mcp-config", str(config_file), "--tools", "reverze"]
    )
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "unknown tool(s) ['reverze']" in output
    assert "did you mean 'reverse'?" in output
    assert "crash, fail, join, reverse" in output


def test_cli_tool_selection(config_file: Path) -> None:
    from orchestrator.agents.pipelines import spec_from_options
    from orchestrator.agents.pipelines.agent import mcp_tools

    every, all_mcp = mcp_tools(spec_from_options("agent", mcp_config=config_file))  # type: ignore[arg-type]
    assert every == [] and sorted(t.name for t in all_mcp) == ["crash", "fail", "join", "reverse"]
    spec = spec_from_options("agent", mcp_config=config_file, tools="reverse, calculator")
    builtin, chosen = mcp_tools(spec)  # type: ignore[arg-type]
    assert builtin == ["calculator"] and [t.name for t in chosen] == ["reverse"]
    assert chosen[0].invoke("abc") == "cba"


@pytest.mark.integration
def test_cli_agent_runs_with_the_mcp_tool(config_file: Path, tmp_path: Path) -> None:
    trace = tmp_path / "trace.json"
    result = runner.invoke(
        app,
        [
            "agent",
            "Reverse the text 'stressed' with the reverse tool.",
            "--mcp-config",
            str(config_file),
            "--tools",
            "reverse,calculator",
            "--max-steps",
            "2",
            "--trace",
            str(trace),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    saved = json.loads(trace.read_text("utf-8"))
    assert saved["tools"] == ["calculator", "reverse"]
    payload = json.loads(result.output.strip().splitlines()[-1])
    for step in payload["steps"]:
        if step["action"] == "reverse":  # what the model asks for is its choice; the result is not
            assert step["observation"] == step["action_input"].strip()[::-1]
