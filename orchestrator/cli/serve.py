"""``orchestrator serve``: the OpenAI-compatible server (see :mod:`orchestrator.server`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from orchestrator.cli.common import ModelOpt, err_console, guarded


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def _tool_names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))


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
        str,
        typer.Option(
            "--tools", help="Tools of model 'agent': calculator, web_search, knowledge_base."
        ),
    ] = "calculator",
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
) -> None:
    """Serve the model and the pipelines (rag, agent, story) over an OpenAI-compatible API:
    /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings, /health, /metrics."""
    from orchestrator.extras import require
    from orchestrator.server.config import ServerConfig, check_bind

    config = ServerConfig(
        host=host,
        port=port,
        model=model,
        index=index,
        tools=_tool_names(tools),
        api_key=api_key or None,
        store=store,
        max_tokens_limit=max_tokens_limit,
        default_max_tokens=default_max_tokens,
        max_body_bytes=max_body_bytes,
    )
    check_bind(config)  # before loading anything: a refused bind should be quick
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        require(module, extra="serve", purpose="orchestrator serve")
    import uvicorn

    from orchestrator.server.app import create_app, uvicorn_options
    from orchestrator.server.backends import Backends

    backends = Backends(config)
    backends.warm_up()
    app = create_app(config, backends)
    shown = f"[{host}]" if ":" in host else host
    err_console.print(
        f"[bold]orchestrator serve[/] on {escape(f'http://{shown}:{port}/v1')} - models: "
        f"{escape(', '.join(backends.kinds()))}"
        + ("" if config.api_key else " [dim](no API key: loopback only)[/]")
    )
    uvicorn.run(app, **uvicorn_options(config))
