"""`orchestrator mcp --http PORT` as a real subprocess on a free loopback port, and our client."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp_support import build_kb_index, orchestrator_command, server_env, wait_for_port
from ready_support import free_port
from typer.testing import CliRunner

from orchestrator.agents.tools.mcp import MCPToolset, load_mcp_tools
from orchestrator.cli.app import app
from orchestrator.errors import OptionError
from orchestrator.server.mcp_server import MCPServerOptions, check_host, is_loopback, served_tools

runner = CliRunner()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    index = build_kb_index(tmp_path_factory.mktemp("mcp-http"))
    port = free_port()
    bm25 = ("--index", str(index), "--mode", "bm25")  # a BM25-only index
    command = orchestrator_command("mcp", *bm25, "--http", str(port))
    process = subprocess.Popen(
        command, env=server_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for_port(process, port)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["streamable_http", "http", "streamable-http"])
def test_client_calls_the_http_server(server_url: str, transport: str) -> None:
    config = {"mcpServers": {"orch": {"url": server_url, "transport": transport}}}
    with load_mcp_tools(config) as tools:
        assert isinstance(tools, MCPToolset)
        by_name = {t.name: t for t in tools}
        assert sorted(by_name) == ["calculator", "knowledge_base", "rag"]
        assert by_name["calculator"].invoke("2*(3+4)") == "14"
        found = by_name["knowledge_base"].invoke("glacier lakes")
        assert found.startswith("[1] (vorn.md) The Vorn glacier feeds three lakes")


@pytest.mark.slow
def test_a_builtin_name_is_prefixed_with_the_server_name(server_url: str) -> None:
    config = {"mcpServers": {"orch": {"url": server_url}}}  # url alone means streamable HTTP
    with load_mcp_tools(config, reserved_names=["calculator"]) as tools:
        names = sorted(t.name for t in tools)
        assert names == ["knowledge_base", "orch_calculator", "rag"]
        (calculator,) = [t for t in tools if t.name == "orch_calculator"]
        assert calculator.remote_name == "calculator"  # type: ignore[attr-defined]
        assert calculator.invoke("3*3") == "9"


def test_non_loopback_host_is_refused_without_the_flag() -> None:
    result = runner.invoke(app, ["mcp", "--http", "8123", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "refusing to serve MCP on 0.0.0.0" in output
    assert "--allow-remote" in output


def test_loopback_rules() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    check_host(MCPServerOptions(port=8000, host="0.0.0.0", allow_remote=True))  # allowed
    check_host(MCPServerOptions(port=None, host="0.0.0.0"))  # stdio: no address is bound
    with pytest.raises(OptionError, match="no authentication"):
        check_host(MCPServerOptions(port=8000, host="192.168.1.5"))
    assert served_tools(MCPServerOptions()) == ["calculator"]  # no --index: no documents to serve


def test_a_bad_index_fails_before_serving(tmp_path: Path) -> None:
    result = runner.invoke(app, ["mcp", "--index", str(tmp_path / "missing")])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "missing' is not a" in text and "orchestrator index" in text  # the fix
