"""``orchestrator serve``: the OpenAI-compatible server (see :mod:`orchestrator.server`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from orchestrator.cli.common import (
    BaseUrlOpt,
    DsnOpt,
    EmbeddingOpt,
    KOpt,
    MinSimilarityOpt,
    ModelOpt,
    ModeOpt,
    PrintSpecOpt,
    RerankOpt,
    ServedIndexesOpt,
    SpecOpt,
    StrategyOpt,
    err_console,
    given_flags,
    guarded,
    pipeline_spec,
    print_spec,
)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


@guarded
def serve(
    context: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless --api-key).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    model: ModelOpt = None,
    index: ServedIndexesOpt = None,
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
            "--mcp-config", help="MCP servers' tools for model 'agent': JSON with \"mcpServers\"."
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
    mode: ModeOpt = None,
    k: KOpt = None,
    strategy: StrategyOpt = None,
    rerank: RerankOpt = None,
    min_similarity: MinSimilarityOpt = None,
    embedding: EmbeddingOpt = None,
    base_url: BaseUrlOpt = None,
    upstream_api_key: Annotated[
        str | None,
        typer.Option(
            "--upstream-api-key",
            help="The API key of the --base-url server, if it wants one (--api-key is this "
            "server's own key, and is never sent upstream).",
            show_default=False,
        ),
    ] = None,
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel",
            "-np",
            min=1,
            max=64,
            help="Requests the local model decodes together, as llama-server's --parallel "
            "(default 4); each slot keeps a whole context window of KV cache.",
        ),
    ] = None,
    spec_file: SpecOpt = None,
    show_spec: PrintSpecOpt = False,
) -> None:
    """Serve the model and the pipelines (rag, agent, story) over an OpenAI-compatible API:
    /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings, /health, /metrics.
    --base-url URL fronts a served model (llama.cpp's server, vLLM, Ollama) for chat and the
    pipelines (/v1/completions needs a local GGUF); --mode, -k, --strategy, --rerank,
    --min-similarity and --embedding shape model 'rag' as they shape `orchestrator rag`;
    --spec FILE: model 'rag' runs that RAG spec (the server serves its model, and the agent's
    knowledge_base searches its index); --print-spec prints the RAG spec and exits."""
    from dataclasses import replace

    from orchestrator.extras import require
    from orchestrator.server.config import ServerConfig, check_bind

    config = ServerConfig(
        host=host,
        port=port,
        api_key=api_key or None,
        store=store,
        max_tokens_limit=max_tokens_limit,
        default_max_tokens=default_max_tokens,
        max_body_bytes=max_body_bytes,
    )
    check_bind(config)  # before starting anything (MCP servers, the model): a quick refusal
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        require(module, extra="serve", purpose="orchestrator serve")
    from orchestrator.agents.pipelines import spec_from_options
    from orchestrator.agents.pipelines.agent import knowledge_index
    from orchestrator.agents.pipelines.options import without_default_key
    from orchestrator.errors import OptionError
    from orchestrator.models import ModelSpec

    if upstream_api_key and not base_url and spec_file is None:
        raise OptionError(
            "--upstream-api-key is the key of a served model, and no --base-url was given",
            fix="add --base-url URL, or leave out --upstream-api-key",
        )
    models: dict[str, Any] = {"model": model, "base_url": base_url, "api_key": upstream_api_key}
    rag_only: dict[str, Any] = {"mode": mode, "k": k, "strategy": strategy, "rerank": rerank}
    rag_only.update(min_similarity=min_similarity, embedding=embedding)
    rag = _rag_spec(context, spec_file, rag_only, index=index or None, dsn=dsn, **models)
    if show_spec:
        if rag is None:
            raise OptionError("--print-spec prints the RAG spec: add --index", fix="--index DIR")
        print_spec(rag)
        return
    chat = without_default_key(rag.model if rag is not None else ModelSpec(**models))
    if parallel is not None:
        chat = ModelSpec.model_validate({**chat.model_dump(), "n_parallel": parallel})
    if rag is not None:
        rag = rag.model_copy(update={"model": chat})
    agent = spec_from_options(
        "agent", tools=tools, index=knowledge_index(rag, tools), mcp_config=mcp_config, model=chat
    )
    config = replace(config, model=chat, rag=rag, agent=agent)
    import uvicorn

    from orchestrator.server.app import create_app, uvicorn_options
    from orchestrator.server.backends import Backends

    backends = Backends(config, context.call_on_close)
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


def _rag_spec(
    context: typer.Context, spec_file: Path | None, rag_only: dict[str, Any], **options: Any
) -> Any:
    """Model 'rag''s spec: ``--spec FILE``, or the options with ``--index`` (``rag_only``: those
    only model 'rag' reads); ``None`` without either, when a ``rag_only`` option given (which
    would do nothing) is an error. serve's other options may be given beside ``--spec``."""
    from orchestrator.errors import OptionError

    if options["index"] is not None or spec_file is not None:
        pipeline = {*options, *rag_only}
        inputs = tuple(p.name or "" for p in context.command.params if p.name not in pipeline)
        return pipeline_spec(
            "rag", spec_file, context=context, inputs=inputs, **options, **rag_only
        )
    given = given_flags(context, only=rag_only)
    if given:
        raise OptionError(
            f"{', '.join(given)} shape model 'rag', which needs an index",
            fix="add --index DIR (or --spec FILE), or leave out " + ", ".join(given),
        )
    return None
