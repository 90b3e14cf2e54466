"""The mcpServers config: what it accepts, the errors for what it does not, tool-name clashes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import StructuredTool
from mcp_support import server_env, text_server_entry, write_test_server
from typer.testing import CliRunner

from orchestrator.agents.tools.mcp import (
    MCPConfigError,
    MCPConnectionError,
    _unique_names,
    content_text,
    load_mcp_tools,
    read_mcp_config,
)
from orchestrator.cli.app import app
from orchestrator.errors import OrchestratorError

runner = CliRunner()


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), "utf-8")
    return path


def test_stdio_and_http_servers_become_connections() -> None:
    config = {
        "mcpServers": {
            "files": {"command": "python", "args": ["s.py"], "env": {"K": "v"}},
            "a": {"url": "http://127.0.0.1:9/mcp", "transport": "http"},
            "b": {"url": "http://127.0.0.1:9/mcp", "transport": "streamable-http"},
            "c": {"url": "http://127.0.0.1:9/mcp", "type": "streamable_http", "timeout": 5},
            "d": {"url": "http://127.0.0.1:9/mcp"},
            "off": {"command": "nothing", "disabled": True},
        }
    }
    connections = read_mcp_config(config)
    assert connections["files"] == {
        "transport": "stdio",
        "command": "python",
        "args": ["s.py"],
        "env": {"K": "v"},
        "display": "python s.py",  # the command line as written, for messages
    }
    for name in "abcd":
        assert connections[name]["transport"] == "streamable_http"
        assert connections[name]["url"] == "http://127.0.0.1:9/mcp"
    assert connections["c"]["timeout"] == 5.0
    assert "off" not in connections


BAD_SERVERS = [
    ({"comand": "python"}, "unknown option 'comand'", "did you mean 'command'?"),
    ({"args": ["x"]}, "has neither \"command\"", "add one"),
    ({"command": "python", "url": "http://x/mcp"}, "'url' does not apply to a stdio", "either"),
    ({"url": "http://x/mcp", "env": {}}, "'env' does not apply to an HTTP server", "stdio:"),
    ({"url": "http://x/mcp", "transport": "sse"}, "SSE is not supported", "streamable_http"),
    ({"url": "ftp://x/mcp"}, "must be an http(s) URL", "127.0.0.1"),
    ({"command": "python", "args": "s.py"}, "\"args\" must be a list", "[\"server.py\""),
    ({"command": "python", "env": {"N": 1}}, "\"env\" must be an object", "quote"),
    ({"command": ""}, "\"command\" must be a non-empty string", "python"),
    ("python s.py", "is not a JSON object", "mcpServers"),
]


@pytest.mark.parametrize(("entry", "problem", "fix"), BAD_SERVERS)
def test_a_bad_server_names_the_file_the_server_and_the_fix(
    tmp_path: Path, entry: Any, problem: str, fix: str
) -> None:
    path = _write(tmp_path, {"mcpServers": {"tools": entry}})
    with pytest.raises(MCPConfigError) as caught:
        read_mcp_config(path)
    assert f"server 'tools' in MCP config file {str(path)!r}" in caught.value.message
    assert problem in caught.value.message
    assert caught.value.fix is not None and fix in caught.value.fix


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"mcpServers": {"a": {"command": "x",}}}', "is not valid JSON: Expecting property name"),
        ('{"servers": {}}', 'has no "mcpServers" object'),
        ('{"mcpServers": {}}', "lists no servers"),
        ('{"mcpServers": {"a": {"command": "x", "disabled": true}}}', "every server"),
        ('{"mcpServers": {"a b": {"command": "x"}}}', "the name may hold only"),
    ],
)
def test_bad_files_are_errors_naming_the_file(tmp_path: Path, content: str, problem: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(MCPConfigError, match="fix:") as caught:
        read_mcp_config(path)
    assert str(path) in caught.value.message
    assert problem in caught.value.message


def test_a_missing_file_says_what_to_write(tmp_path: Path) -> None:
    with pytest.raises(MCPConfigError) as caught:
        load_mcp_tools(tmp_path / "nope.json")
    assert caught.value.message == f"MCP config file {str(tmp_path / 'nope.json')!r} does not exist"
    assert caught.value.fix is not None and '{"mcpServers": {"NAME"' in caught.value.fix


def test_cli_reports_a_bad_config_with_exit_code_2(tmp_path: Path) -> None:
    path = _write(tmp_path, {"mcpServers": {"tools": {"comand": "python"}}})
    result = runner.invoke(app, ["agent", "q", "--mcp-config", str(path)])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "server 'tools' in MCP config file" in output
    assert "did you mean 'command'?" in output


def test_a_server_that_cannot_start_is_named_with_its_command() -> None:
    config = {"mcpServers": {"ghost": {"command": "/nonexistent/mcp-server", "args": ["--x"]}}}
    with pytest.raises(MCPConnectionError) as caught:
        load_mcp_tools(config)
    assert caught.value.message.startswith(
        "server 'ghost' (command: /nonexistent/mcp-server --x) did not start: FileNotFoundError"
    )
    assert isinstance(caught.value, OrchestratorError)


def test_a_server_that_exits_at_once_is_a_connection_error() -> None:
    entry = {"command": sys.executable, "args": ["-c", "raise SystemExit(3)"]}
    with pytest.raises(MCPConnectionError, match=r"server 'quits' .* did not start"):
        load_mcp_tools({"mcpServers": {"quits": entry}}, startup_timeout=60)


def test_an_unreachable_http_server_is_a_connection_error() -> None:
    config = {"mcpServers": {"web": {"url": "http://127.0.0.1:9/mcp"}}}
    with pytest.raises(MCPConnectionError) as caught:
        load_mcp_tools(config, startup_timeout=60)
    assert caught.value.message.startswith("server 'web' at http://127.0.0.1:9/mcp is not reach")
    assert caught.value.fix == "start the server that serves MCP at http://127.0.0.1:9/mcp"


def _fake(name: str) -> StructuredTool:
    return StructuredTool.from_function(lambda: "", name=name, description="d")


def test_clashing_names_are_prefixed_with_the_server_name() -> None:
    found = {"a": [_fake("search"), _fake("only_a")], "b": [_fake("search"), _fake("calculator")]}
    named = [(s, n) for s, n, _ in _unique_names(found, {"calculator"}, "cfg")]
    assert named == [("a", "a_search"), ("a", "only_a"), ("b", "b_search"), ("b", "b_calculator")]


def test_a_clash_that_survives_the_prefix_is_an_error() -> None:
    found = {"a": [_fake("b_x")], "b": [_fake("x")], "c": [_fake("x")]}
    with pytest.raises(MCPConfigError, match="'b_x' is offered by server 'b'"):
        _unique_names(found, set(), "cfg")


@pytest.mark.slow
def test_two_servers_with_the_same_tools_get_prefixed_names(tmp_path: Path) -> None:
    script = write_test_server(tmp_path)
    config = {"mcpServers": {"one": text_server_entry(script), "two": text_server_entry(script)}}
    with load_mcp_tools(config) as tools:
        names = {t.name for t in tools}
        assert {"one_reverse", "two_reverse", "one_join", "two_join"} <= names
        by_name = {t.name: t for t in tools}
        assert by_name["one_reverse"].invoke("ab") == "ba"
        assert by_name["two_reverse"].invoke("xy") == "yx"


def test_content_blocks_become_text() -> None:
    blocks = [{"type": "text", "text": "a"}, {"type": "image", "mime_type": "image/png"}]
    assert content_text(blocks) == "a\n[image: image/png]"
    assert content_text([]) == "(the tool returned no content)"
    assert server_env()["HF_HUB_OFFLINE"]
