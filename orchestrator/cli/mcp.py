"""``mcp``: serve knowledge_base, rag and calculator as MCP tools (stdio, or HTTP with --http).

The ``rag`` tool runs the pipeline spec of the options (``spec_from_options("rag", ...)``,
the same flags giving the same spec as ``orchestrator rag``'s) or of ``--spec FILE``, built by
the library as ``orchestrator rag`` builds it; knowledge_base searches that spec's index.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from orchestrator.agents.pipelines.agent import knowledge_index
from orchestrator.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    DsnOpt,
    EmbeddingOpt,
    KOpt,
    MaxTokensOpt,
    MinSimilarityOpt,
    ModelOpt,
    ModeOpt,
    PrintSpecOpt,
    RerankOpt,
    ServedIndexesOpt,
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
    index: ServedIndexesOpt = None,
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
    mode: ModeOpt = None,
    k: KOpt = None,
    min_similarity: MinSimilarityOpt = None,
    embedding: EmbeddingOpt = None,
    max_tokens: MaxTokensOpt = None,
    dsn: DsnOpt = None,
    strategy: StrategyOpt = None,
    rerank: RerankOpt = None,
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
    if index or spec_file is not None or show_spec:
        rag = pipeline_spec(
            "rag",
            spec_file,
            context=context,
            inputs=("http", "host", "allow_remote"),
            index=index or None,
            dsn=dsn,
            mode=mode,
            k=k,
            min_similarity=min_similarity,
            embedding=embedding,
            strategy=strategy,
            rerank=rerank,
            model=model,
            max_tokens=max_tokens,
            base_url=base_url,
            api_key=api_key,
        )
        knowledge_index(rag, "knowledge_base")  # the tool searches one index: not a silent first
    if show_spec and rag is not None:
        print_spec(rag)
        return
    options = MCPServerOptions(rag=rag, port=http, host=host, allow_remote=allow_remote)
    check_host(options)  # before loading anything: a refused bind should be quick
    require("mcp.server.fastmcp", extra="mcp", purpose="orchestrator mcp")
    serve(options, announce=lambda line: err_console.print(f"[dim]{escape(line)}[/]"))
