"""``mcp``: serve knowledge_base, rag and calculator as MCP tools (stdio, or HTTP with --http).

The ``rag`` tool runs the pipeline spec of the options (``spec_from_options("rag", ...)``,
the index's own search mode: hybrid when it has both sides) or of ``--spec FILE``, built by
the library as ``orchestrator rag`` builds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from orchestrator.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    DsnOpt,
    MaxTokensOpt,
    ModelOpt,
    PrintSpecOpt,
    RerankOpt,
    SpecOpt,
    StrategyOpt,
    err_console,
    guarded,
    pipeline_spec,
    print_spec,
)


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)


@guarded
def mcp(
    context: typer.Context,
    index: Annotated[
        Path | None,
        typer.Option(
            "--index",
            help="Index directory (with --dsn its name): adds the knowledge_base and rag tools.",
        ),
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
    dsn: DsnOpt = None,
    strategy: StrategyOpt = "plain",
    rerank: RerankOpt = "none",
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    spec_file: SpecOpt = None,
    show_spec: PrintSpecOpt = False,
) -> None:
    """Serve Orchestrator's tools over MCP: calculator, and with --index (or --spec)
    knowledge_base and rag (answers with [n] citations; --model, or with --base-url the served
    model, answers). Stdio by default, for MCP clients that start the server themselves;
    --http PORT serves streamable HTTP at http://HOST:PORT/mcp."""
    from orchestrator.extras import require
    from orchestrator.server.mcp_server import MCPServerOptions, check_host, serve

    rag: Any = None
    if index is not None or spec_file is not None or show_spec:
        rag = pipeline_spec(
            "rag",
            spec_file,
            context=context,
            inputs=("http", "host", "allow_remote"),
            index=index,
            dsn=dsn,
            mode="auto",
            k=k,
            strategy=strategy,
            rerank=rerank,
            model=model,
            max_tokens=max_tokens,
            base_url=base_url,
            api_key=api_key,
        )
    if show_spec and rag is not None:
        print_spec(rag)
        return
    options = MCPServerOptions(rag=rag, port=http, host=host, allow_remote=allow_remote)
    check_host(options)  # before loading anything: a refused bind should be quick
    require("mcp.server.fastmcp", extra="mcp", purpose="orchestrator mcp")
    serve(options, announce=lambda line: err_console.print(f"[dim]{escape(line)}[/]"))
