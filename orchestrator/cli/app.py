"""Entry point: builds the Typer app from the command modules."""

from __future__ import annotations

import importlib

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
)

app = typer.Typer(
    name="orchestrator",
    help="LLM applications on your own machine: GGUF models through llama.cpp.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"orchestrator.cli.{_name}").register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
