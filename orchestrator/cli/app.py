"""Entry point: builds the Typer app from the command modules."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

#: Command modules under ``orchestrator.cli``; each defines ``register(app)``.
COMMAND_MODULES = (
    "generate",
    "ask",
    "chat",
    "retrieval",
    "rag",
    "agent",
    "evaluate",
    "serve",
    "mcp",
    "db",
    "logs",
    "traces",
    "replay",
)

app = typer.Typer(
    name="orchestrator",
    help="LLM applications on your own machine: GGUF models through llama.cpp.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def options(
    context: typer.Context,
    no_trace: Annotated[
        bool,
        typer.Option(
            "--no-trace",
            help="Record no run in the trace store ($ORCHESTRATOR_HOME/traces.sqlite; also "
            "ORCHESTRATOR_TRACE=0). `orchestrator logs` lists what was recorded.",
        ),
    ] = False,
    otlp: Annotated[
        str | None,
        typer.Option(
            "--otlp",
            help="Also send the spans to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318 "
            "(default: $OTEL_EXPORTER_OTLP_ENDPOINT; unset: nothing leaves the machine).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """LLM applications on your own machine: GGUF models through llama.cpp."""
    from orchestrator.cli.common import traced_command

    traced_command(context, no_trace=no_trace, otlp=otlp)


for _name in COMMAND_MODULES:
    importlib.import_module(f"orchestrator.cli.{_name}").register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
