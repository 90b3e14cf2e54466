"""``orchestrator serve``: the OpenAI-compatible server (see :mod:`orchestrator.server`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from orchestrator.cli.common import DsnOpt, ModelOpt, err_console, guarded, index_location


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def _tool_names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))


def _agent_tools(tools: str | None, mcp_config: Path | None) -> tuple[tuple[str, ...], list[Any]]:
    """The built-in tool names and the MCP tools of ``model: "agent"``, as ``orchestrator
    agent`` chooses them (same function): the MCP servers start here, before the model loads,
    and their sessions close when the command (the server) ends."""
    if mcp_config is None:
        return _tool_names(tools or "calculator"), []
    from orchestrator.cli.mcp import agent_mcp_tools
    from orchestrator.server.config import SERVER_TOOLS

    names, mcp_tools = agent_mcp_tools(mcp_config, tools, SERVER_TOOLS)
    return tuple(names), list(mcp_tools)


@guarded
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless --api-key).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    model: ModelOpt = None,
    index: Annotated[
        Path | None,
        typer.Option("--index", help="Index directory: enables model 'rag' and knowledge_base."),
    ] = None,
    tools: Annotated[
        str | None,
        typer.Option(
            "--tools",
            help="Tools of model 'agent': calculator, web_search, knowledge_base and those of "
            "--mcp-config (default: calculator; with --mcp-config, every MCP tool).",
        ),
    ] = None,
    mcp_config: Annotated[
        Path | None,
        typer.Option(
            "--mcp-config", help='MCP servers\' tools for model \'agent\': JSON with "mcpServers".'
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="ORCHESTRATOR_API_KEY",
            help="Require 'Authorization: Bearer KEY' on every endpoint but /health.",
            show_envvar=True,
        ),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option("--store", help="Session file for session_id (default: data dir)."),
    ] = None,
    max_tokens_limit: Annotated[
        int, typer.Option("--max-tokens-limit", min=1, help="Most max_tokens a request may ask.")
    ] = 2048,
    default_max_tokens: Annotated[
        int, typer.Option("--default-max-tokens", min=1, help="max_tokens when a request omits it.")
    ] = 256,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1024, help="Largest request body (else 413).")
    ] = 1_000_000,
    dsn: DsnOpt = None,
) -> None:
    """Serve the model and the pipelines (rag, agent, story) over an OpenAI-compatible API:
    /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings, /health, /metrics."""
    from orchestrator.extras import require
    from orchestrator.server.config import ServerConfig, check_bind

    # before starting anything (MCP servers, the model): a refused bind should be quick
    check_bind(
        ServerConfig(
            host=host,
            api_key=api_key or None,
            max_tokens_limit=max_tokens_limit,
            default_max_tokens=default_max_tokens,
        )
    )
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        require(module, extra="serve", purpose="orchestrator serve")
    names, mcp_tools = _agent_tools(tools, mcp_config)
    config = ServerConfig(
        host=host,
        port=port,
        model=model,
        index=index,
        dsn=index_location(index, dsn)[1],
        tools=names,
        mcp_config=mcp_config,
        api_key=api_key or None,
        store=store,
        max_tokens_limit=max_tokens_limit,
        default_max_tokens=default_max_tokens,
        max_body_bytes=max_body_bytes,
    )
    import uvicorn

    from orchestrator.server.app import create_app, uvicorn_options
    from orchestrator.server.backends import Backends

    backends = Backends(config, mcp_tools)
    backends.warm_up()
    app = create_app(config, backends)
    shown = f"[{host}]" if ":" in host else host
    err_console.print(
        f"[bold]orchestrator serve[/] on {escape(f'http://{shown}:{port}/v1')} - models: "
        f"{escape(', '.join(backends.kinds()))}; agent tools: "
        f"{escape(', '.join(t.name for t in backends.tools))}"
        + ("" if config.api_key else " [dim](no API key: loopback only)[/]")
    )
    uvicorn.run(app, **uvicorn_options(config))
