"""``orchestrator serve --mcp-config``: the tools of an MCP server (a FastMCP stdio server
written here) for ``model: "agent"``, started before the model loads and closed with the
server; a bad config is exit 2 naming the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp_support import server_env
from ready_support import free_port, wait_until
from server_harness import running_server, serve_command
from typer.testing import CliRunner

from orchestrator.cli.app import app

pytestmark = pytest.mark.slow

#: One tool; the process writes its pid first, so the test can see it end with the server.
SERVER = textwrap.dedent(
    '''
    import os
    import sys
    from mcp.server.fastmcp import FastMCP

    server = FastMCP("text-tools")

    @server.tool()
    def reverse(text: str) -> str:
        """Reverses the text, character by character."""
        return text[::-1]

    if __name__ == "__main__":
        with open(sys.argv[1], "w") as out:
            out.write(str(os.getpid()))
        server.run("stdio")
    '''
)


def _config(tmp_path: Path) -> tuple[Path, Path]:
    script = tmp_path / "reverse_server.py"
    script.write_text(SERVER, encoding="utf-8")
    pid_file = tmp_path / "mcp-server.pid"
    entry = {"command": sys.executable, "args": [str(script), str(pid_file)], "env": server_env()}
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"mcpServers": {"text": entry}}), encoding="utf-8")
    return config, pid_file


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by the stopped server's parent) counts as ended
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


@pytest.mark.integration
def test_serve_offers_the_mcp_tool_to_the_agent_and_closes_it(tmp_path: Path) -> None:
    config, pid_file = _config(tmp_path)
    with running_server(tmp_path, "--mcp-config", str(config), "--tools", "reverse") as server:
        pid = int(pid_file.read_text())  # written before /health answered: started first
        assert _alive(pid)
        cards = httpx.get(f"{server.v1}/models", timeout=30).json()["data"]
        (agent_card,) = [c for c in cards if c["id"] == "agent"]
        assert agent_card["tools"] == ["reverse"]
        client: Any = server.client()
        reply = client.chat.completions.create(
            model="agent",
            messages=[{"role": "user", "content": "Reverse the text 'stressed'."}],
            max_tokens=64,
        )
        extra = reply.model_extra
        assert extra["tools"] == ["reverse"]
        assert isinstance(extra["steps"], list) and extra["stopped_because"]
        for step in extra["steps"]:  # calling it is the model's choice; what it returns is not
            assert step["action"] in ("reverse", None) or step["parse_error"]
            if step["action"] == "reverse":
                assert step["observation"] == step["action_input"].strip()[::-1]
        assert "agent tools: reverse" in server.log.read_text(errors="replace")
    wait_until(lambda: not _alive(pid), f"the MCP server (pid {pid}) to end with orchestrator "
               "serve", limit=30.0)


def test_a_bad_mcp_config_exits_2_naming_the_file_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.llama import registry

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model loaded before the MCP config was checked")

    monkeypatch.setattr(registry, "load_engine", no_model)
    bad = tmp_path / "broken-mcp.json"
    bad.write_text('{"mcpServers": {"text": {"args": ["x"]}}}', encoding="utf-8")
    result = CliRunner().invoke(app, ["serve", "--port", "1", "--mcp-config", str(bad)])
    assert result.exit_code == 2, result.output
    assert "broken-mcp.json" in "".join(result.output.split())


def test_an_unknown_tool_names_the_mcp_tools(tmp_path: Path) -> None:
    # a subprocess: a stdio MCP server needs a real stderr, which CliRunner replaces
    config, _ = _config(tmp_path)
    args = ("--mcp-config", str(config), "--tools", "reverze,calculator")
    result = subprocess.run(
        serve_command(free_port(), *args), capture_output=True, text=True, timeout=300,
        env={**os.environ, "ORCHESTRATOR_HOME": str(tmp_path / "home"), "COLUMNS": "300"},
    )
    assert result.returncode == 2, result.stderr
    output = " ".join((result.stdout + result.stderr).split())
    assert "unknown tool(s) ['reverze']" in output and "did you mean 'reverse'?" in output
