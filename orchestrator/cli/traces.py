"""``orchestrator traces``: the trace viewer, a local web page over the trace store (runs,
a run's span tree on a timeline, per-pipeline summaries). The app is
``orchestrator.server.trace_viewer``; this module checks options and runs it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from orchestrator.cli.common import err_console, guarded
from orchestrator.cli.logs import StoreOpt
from orchestrator.errors import OptionError


def register(app: typer.Typer) -> None:
    app.command("traces")(traces)


def check_viewer_bind(host: str, api_key: str | None) -> None:
    """Refuse to show recorded prompts and answers beyond this machine without an API key
    (the rule of ``serve``: :func:`orchestrator.netloc.is_loopback`)."""
    from orchestrator.netloc import is_loopback

    if not is_loopback(host) and not api_key:
        raise OptionError(
            f"refusing to serve the traces on {host} without an API key: anyone who can reach "
            "this machine could read every recorded prompt and answer",
            fix="pass --api-key KEY (or set ORCHESTRATOR_API_KEY), or bind to 127.0.0.1",
        )


@guarded
def traces(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless --api-key).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8899,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="ORCHESTRATOR_API_KEY",
            help="Require 'Authorization: Bearer KEY' on /api/ (the page asks for it once).",
            show_envvar=True,
        ),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Serve the trace viewer: the recorded runs (filters as `logs`, search), each run's span
    tree on a timeline with prompts, passages, tool calls, tokens and timings, and a summary
    per pipeline (latency p50/p95/p99, tokens, error rate) with plots. Works offline."""
    from orchestrator.extras import require

    check_viewer_bind(host, api_key or None)
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        require(module, extra="serve", purpose="orchestrator traces")
    import uvicorn

    from orchestrator.server.trace_viewer import create_viewer_app
    from orchestrator.tracing.schema import store_path

    app = create_viewer_app(store, api_key=api_key or None)
    shown = f"[{host}]" if ":" in host else host
    err_console.print(
        f"[bold]orchestrator traces[/] on {escape(f'http://{shown}:{port}/')} - store "
        f"{escape(str(store_path(store)))}"
        + ("" if api_key else " [dim](no API key: loopback only)[/]")
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":  # python -m orchestrator.cli.traces (as `orchestrator traces`)
    typer.run(traces)
