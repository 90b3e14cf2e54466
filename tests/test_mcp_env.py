"""``${VAR}`` in an mcpServers config: the expansion rules, the unset-variable error, and what
a real stdio server (its argv, env and cwd) and a real HTTP server (its Authorization header)
receive."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp_support import server_env, wait_for_port
from ready_support import free_port

from orchestrator.agents.tools.mcp import MCPConfigError, MCPConnectionError, load_mcp_tools
from orchestrator.agents.tools.mcp_config import read_mcp_config
from orchestrator.agents.tools.mcp_vars import VariableError, expand_variables

ENV = {"TOKEN": "s3cret", "EMPTY": "", "RAW": "a${HOME}b$c"}


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("Bearer ${TOKEN}", "Bearer s3cret"),
        ("${TOKEN}-${TOKEN}", "s3cret-s3cret"),
        ("${env:TOKEN}", "s3cret"),  # Cursor / VS Code
        ("${MISSING:-fallback}", "fallback"),  # Claude Code
        ("${EMPTY:-fallback}", "fallback"),  # as in the shell: empty counts as unset
        ("${TOKEN:-fallback}", "s3cret"),
        ("${env:MISSING:-x}", "x"),
        ("${MISSING:-}", ""),
        ("${EMPTY}", ""),  # set but empty: no error
        ("${RAW}", "a${HOME}b$c"),  # a value is never expanded again
        ("$TOKEN and $ alone", "$TOKEN and $ alone"),  # a bare $ is not a reference
        ("no references", "no references"),
    ],
)
def test_expansion_rules(text: str, expanded: str) -> None:
    assert expand_variables(text, ENV) == expanded


def test_user_home_is_the_home_folder() -> None:
    assert expand_variables("${userHome}/bin", {}) == f"{Path.home()}/bin"


def test_every_unset_variable_is_named_once() -> None:
    with pytest.raises(VariableError) as caught:
        expand_variables("${A}:${TOKEN}:${B}:${A}", ENV)
    assert caught.value.missing == ["A", "B"]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("${workspaceFolder}/x", "Orchestrator has no workspace"),
        ("${input:apiKey}", "VS Code asks for ${input:...}"),
        ("${TOKEN%.txt}", "only these forms are expanded"),
        ("${A:-${B}}", "cannot be nested"),
        ("Bearer ${TOKEN", "no closing brace"),
        ("${}", "only these forms are expanded"),
    ],
)
def test_unsupported_references_are_errors_with_the_forms(text: str, why: str) -> None:
    with pytest.raises(VariableError) as caught:
        expand_variables(text, ENV)
    assert caught.value.missing == []
    assert why in caught.value.fix and "${NAME:-default}" in caught.value.fix


def test_every_field_of_the_format_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**ENV, "WORK": str(tmp_path), "PY": sys.executable}.items():
        monkeypatch.setenv(name, value)
    servers = {
        "local": {
            "command": "${PY}",
            "args": ["--token=${TOKEN}", "${MISSING:-default}"],
            "env": {"KEY": "${TOKEN}", "PLAIN": "x"},
            "cwd": "${WORK}",
        },
        "web": {
            "url": "http://127.0.0.1:${PORT:-9}/mcp",
            "headers": {"Authorization": "Bearer ${TOKEN}"},
        },
    }
    connections = read_mcp_config({"mcpServers": servers})
    assert connections["local"] == {
        "transport": "stdio",
        "command": sys.executable,
        "args": ["--token=s3cret", "default"],
        "env": {"KEY": "s3cret", "PLAIN": "x"},
        "cwd": str(tmp_path),
        "display": "'${PY}' '--token=${TOKEN}' '${MISSING:-default}'",  # for messages only
    }
    assert connections["web"]["url"] == "http://127.0.0.1:9/mcp"
    assert connections["web"]["headers"] == {"Authorization": "Bearer s3cret"}


def test_an_unset_variable_names_itself_the_server_the_fields_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCH_TEST_TOKEN", raising=False)
    monkeypatch.delenv("ORCH_TEST_USER", raising=False)
    path = tmp_path / "mcp.json"
    entry = {
        "url": "http://127.0.0.1:9/mcp",
        "headers": {"Authorization": "Bearer ${ORCH_TEST_TOKEN}", "X-User": "${ORCH_TEST_USER}"},
    }
    path.write_text(json.dumps({"mcpServers": {"web": entry}}), "utf-8")
    with pytest.raises(MCPConfigError) as caught:
        load_mcp_tools(path)  # the error comes before any server is contacted
    message, fix = caught.value.message, caught.value.fix or ""
    assert f"server 'web' in MCP config file {str(path)!r}" in message
    assert "ORCH_TEST_TOKEN (in headers.Authorization)" in message
    assert "ORCH_TEST_USER (in headers.X-User)" in message
    assert message.endswith("are not set")
    assert "export ORCH_TEST_TOKEN=" in fix and "${ORCH_TEST_TOKEN:-value}" in fix


def test_an_unsupported_reference_names_the_server_and_field() -> None:
    config = {"mcpServers": {"files": {"command": "python", "args": ["${workspaceFolder}/s.py"]}}}
    with pytest.raises(MCPConfigError) as caught:
        read_mcp_config(config)
    assert caught.value.message.startswith("server 'files' in the MCP config (dict): args[0]")
    assert "absolute path" in (caught.value.fix or "")


def test_a_disabled_server_needs_no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORCH_TEST_TOKEN", raising=False)
    servers = {
        "off": {"url": "http://x/mcp", "headers": {"A": "${ORCH_TEST_TOKEN}"}, "disabled": True},
        "on": {"command": "python"},
    }
    assert list(read_mcp_config({"mcpServers": servers})) == ["on"]


#: A stdio server that reports what it was started with.
ECHO_SERVER = textwrap.dedent(
    '''
    import json, os, sys
    from mcp.server.fastmcp import FastMCP

    server = FastMCP("echo")

    @server.tool()
    def started_with() -> str:
        """The server's argv, some of its environment and its working folder."""
        env = {k: os.environ.get(k) for k in ("SECRET", "LITERAL", "PLAIN")}
        return json.dumps({"argv": sys.argv[1:], "env": env, "cwd": os.getcwd()})

    if __name__ == "__main__":
        server.run("stdio")
    '''
)


@pytest.mark.slow
def test_a_stdio_server_receives_expanded_command_args_env_and_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "echo_server.py").write_text(ECHO_SERVER, "utf-8")
    work = tmp_path / "work"
    work.mkdir()
    for name, value in {
        "ORCH_TEST_PY": sys.executable,
        "ORCH_TEST_DIR": str(tmp_path),
        "ORCH_TEST_TOKEN": "tok-123",
        "ORCH_TEST_RAW": "pa${HOME}ss",
    }.items():
        monkeypatch.setenv(name, value)
    entry = {
        "command": "${ORCH_TEST_PY}",
        "args": ["${ORCH_TEST_DIR}/echo_server.py", "--token=${ORCH_TEST_TOKEN}", "${NO:-dflt}"],
        "env": {
            **server_env(),
            "SECRET": "${env:ORCH_TEST_TOKEN}",
            "LITERAL": "${ORCH_TEST_RAW}",
            "PLAIN": "$ORCH_TEST_TOKEN",
        },
        "cwd": "${ORCH_TEST_DIR}/work",
    }
    with load_mcp_tools({"mcpServers": {"echo": entry}}) as tools:
        seen = json.loads(tools[0].invoke(""))
    assert seen["argv"] == ["--token=tok-123", "dflt"]
    assert seen["env"] == {
        "SECRET": "tok-123",
        "LITERAL": "pa${HOME}ss",  # the variable's value, not expanded a second time
        "PLAIN": "$ORCH_TEST_TOKEN",  # a bare $NAME is not a reference
    }
    assert Path(seen["cwd"]) == work


#: A streamable-HTTP MCP server that refuses every request without ``Bearer <argv[2]>``.
AUTH_SERVER = textwrap.dedent(
    '''
    import sys
    import uvicorn
    from mcp.server.fastmcp import FastMCP
    from starlette.responses import PlainTextResponse

    port, token = int(sys.argv[1]), sys.argv[2]
    server = FastMCP("auth-check")

    @server.tool()
    def whoami() -> str:
        """Says whether the caller got in."""
        return "authorised"

    inner = server.streamable_http_app()

    async def app(scope, receive, send):
        if scope["type"] == "http":
            sent = dict(scope["headers"]).get(b"authorization", b"").decode()
            if sent != f"Bearer {token}":
                reply = PlainTextResponse(f"refused: {sent!r}", status_code=401)
                return await reply(scope, receive, send)
        await inner(scope, receive, send)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    '''
)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    script = tmp_path_factory.mktemp("auth") / "auth_server.py"
    script.write_text(AUTH_SERVER, "utf-8")
    port, token = free_port(), "from-env-7f3a"
    process = subprocess.Popen(
        [sys.executable, str(script), str(port), token],
        env=server_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(process, port)
        yield port, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _web() -> dict[str, object]:
    return {
        "url": "http://127.0.0.1:${ORCH_TEST_PORT}/mcp",
        "headers": {"Authorization": "Bearer ${ORCH_TEST_TOKEN}"},
    }


@pytest.mark.slow
def test_an_http_server_receives_the_header_from_the_environment(
    auth_server: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, token = auth_server
    monkeypatch.setenv("ORCH_TEST_PORT", str(port))
    monkeypatch.setenv("ORCH_TEST_TOKEN", token)
    with load_mcp_tools({"mcpServers": {"web": _web()}}, startup_timeout=60) as tools:
        assert [t.name for t in tools] == ["whoami"]
        assert tools[0].invoke("") == "authorised"


@pytest.mark.slow
def test_the_http_server_refuses_a_wrong_token(
    auth_server: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = auth_server
    monkeypatch.setenv("ORCH_TEST_PORT", str(port))
    monkeypatch.setenv("ORCH_TEST_TOKEN", "wrong")
    # the URL as the config wrote it: an error never prints a value taken from the environment
    with pytest.raises(MCPConnectionError, match=r"server 'web' at http://127.0.0.1:\$\{ORCH_TEST_PORT\}/mcp"):
        load_mcp_tools({"mcpServers": {"web": _web()}}, startup_timeout=60)


def test_a_startup_error_never_prints_a_token_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line and URL in the error are the config's text, ``${VAR}`` unexpanded."""

    monkeypatch.setenv("MCP_SECRET", "s3cr3t-token-value")
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "cli": {
                        "command": sys.executable,
                        "args": ["-c", "import sys; sys.exit(3)", "--token=${MCP_SECRET}"],
                    },
                    "web": {"url": "http://127.0.0.1:9/mcp?key=${MCP_SECRET}"},
                }
            }
        )
    )
    with pytest.raises(MCPConnectionError) as caught:
        load_mcp_tools(str(config), startup_timeout=20)
    text = f"{caught.value.message} {caught.value.fix}"
    assert "s3cr3t-token-value" not in text
    assert "${MCP_SECRET}" in text
