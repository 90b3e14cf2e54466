"""Shared parts of the MCP tests: a small real index, our server's command, a test server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from ready_support import wait_until

DOCS = {
    "zorblat.md": "Zorblat is a small volcanic island in the northern sea, famous for purple sand.",
    "quimby.md": "Quimby is a river town known for its annual cheese fair and stone bridges.",
    "vorn.md": "The Vorn glacier feeds three lakes and moves forty metres every year.",
}

#: A FastMCP server of our own, run over stdio: ``reverse`` works, ``fail`` reports an MCP
#: error, ``crash`` ends the process mid-call.
TEST_SERVER = textwrap.dedent(
    '''
    import os
    from mcp.server.fastmcp import FastMCP

    server = FastMCP("text-tools")

    @server.tool()
    def reverse(text: str) -> str:
        """Reverses the text, character by character."""
        return text[::-1]

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails with the reason given."""
        raise ValueError(f"refused: {reason}")

    @server.tool()
    def crash() -> str:
        """Ends the server process."""
        os._exit(3)

    @server.tool()
    def join(left: str, right: str) -> str:
        """Joins two strings with a dash."""
        return f"{left}-{right}"

    if __name__ == "__main__":
        server.run("stdio")
    '''
)


def server_env() -> dict[str, str]:
    """What a server subprocess needs: offline, one thread (the MCP SDK passes only a few
    variables of ours on its own)."""
    keep = (
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "ORCHESTRATOR_THREADS",
        "ORCHESTRATOR_MODEL",
        "ORCHESTRATOR_HOME",
    )
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("ORCHESTRATOR_THREADS", "1")
    return env


def build_kb_index(root: Path) -> Path:
    """A BM25 index over :data:`DOCS` (built with the Python API)."""
    from orchestrator.retrieval import build_index

    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text + "\n", encoding="utf-8")
    index = root / "index"
    build_index([docs], index, modes=["bm25"])
    return index


def orchestrator_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli.app", *args]


def stdio_config(index: Path, name: str = "orch") -> dict[str, Any]:
    # a BM25-only index: the spec's default mode (hybrid, as `rag`'s) needs both sides
    command, *args = orchestrator_command("mcp", "--index", str(index), "--mode", "bm25")
    return {"mcpServers": {name: {"command": command, "args": args, "env": server_env()}}}


def write_test_server(root: Path) -> Path:
    path = root / "text_tools_server.py"
    path.write_text(TEST_SERVER, encoding="utf-8")
    return path


def text_server_entry(script: Path) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(script)], "env": server_env()}


def wait_for_port(process: subprocess.Popen[bytes], port: int, limit: float = 180.0) -> None:
    """Return once ``port`` accepts connections; fail with the server's stderr if it exits."""

    def listening() -> bool:
        with socket.socket() as sock:
            sock.settimeout(1.0)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, f"a listener on port {port}", limit=limit, process=process)
