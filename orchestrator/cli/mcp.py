"""``mcp``: serve knowledge_base, rag and calculator as MCP tools (stdio, or HTTP with --http)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from orchestrator.cli.common import MaxTokensOpt, ModelOpt, err_console, guarded

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)


@guarded
def mcp(
    index: Annotated[
        Path | None,
        typer.Option("--index", help="Index directory: adds the knowledge_base and rag tools."),
    ] = None,
    model: ModelOpt = None,
    http: Annotated[
        int | None,
        typer.Option(
            "--http", min=1, max=65535, help="Serve streamable HTTP on this port (at /mcp)."
        ),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Address for --http (loopback unless --allow-remote).")
    ] = "127.0.0.1",
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow a non-loopback --host: the MCP endpoint has no authentication.",
        ),
    ] = False,
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=20, help="Passages per search.")] = 3,
    max_tokens: MaxTokensOpt = 256,
) -> None:
    """Serve Orchestrator's tools over MCP: calculator, and with --index knowledge_base and rag
    (answers with [n] citations; --model answers). Stdio by default, for MCP clients that
    start the server themselves; --http PORT serves streamable HTTP at http://HOST:PORT/mcp."""
    from orchestrator.cli.mcp_server import MCPServerOptions, check_host, serve
    from orchestrator.extras import require

    options = MCPServerOptions(
        index=index,
        model=model,
        k=k,
        max_tokens=max_tokens,
        port=http,
        host=host,
        allow_remote=allow_remote,
    )
    check_host(options)  # before loading anything: a refused bind should be quick
    require("mcp.server.fastmcp", extra="mcp", purpose="orchestrator mcp")
    serve(options, announce=lambda line: err_console.print(f"[dim]{escape(line)}[/]"))


def agent_mcp_tools(
    config: Path, tools: str | None, builtin: tuple[str, ...]
) -> tuple[list[str], list[BaseTool]]:
    """``agent``/``serve --mcp-config``: the built-in tool names and the MCP tools to use.

    ``tools`` (``--tools``) may name built-in and MCP tools; ``None`` means every MCP tool. An
    MCP tool named like a built-in one is prefixed with its server's name. The sessions close
    when the command ends (or at exit, outside a command).
    """
    import click

    from orchestrator.agents.tools.mcp import load_mcp_tools
    from orchestrator.errors import OptionError

    toolset = load_mcp_tools(config, reserved_names=builtin)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(toolset.close)
    if tools is None:
        return [], list(toolset)
    offered = {t.name: t for t in toolset}
    names = [n.strip() for n in tools.split(",") if n.strip()]
    unknown = [n for n in names if n not in offered and n not in builtin]
    if unknown or not names:
        toolset.close()
        close = difflib.get_close_matches(unknown[0], [*builtin, *offered], 1) if unknown else []
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise OptionError(
            f"unknown tool(s) {unknown}" if unknown else "--tools is empty",
            fix=f"{hint}choose from the built-in tools {', '.join(builtin)} or the tools of "
            f"{config}: {', '.join(sorted(offered))} (or leave out --tools to use every MCP tool)",
        )
    chosen = list(dict.fromkeys(names))
    return [n for n in chosen if n in builtin], [offered[n] for n in chosen if n in offered]
