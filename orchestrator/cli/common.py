"""Shared CLI plumbing: error reporting, model options, JSON output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from orchestrator.errors import OptionError, OrchestratorError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])

#: Optional dependencies: the top-level module and the extra that installs it.
EXTRAS = {
    "faiss": "rag",
    "sentence_transformers": "rag",
    "torch": "rag",
    "Stemmer": "rag",
    "scipy": "rag",
    "bm25s": "rag",
    "ragas": "eval",
    "matplotlib": "eval",
    "rapidfuzz": "eval",
    "sacrebleu": "eval",
    "rouge_score": "eval",
    "ddgs": "web",
}

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="GGUF file (default: $ORCHESTRATOR_MODEL or embedded)."),
]
MaxTokensOpt = Annotated[int, typer.Option("--max-tokens", min=1, help="Tokens to generate.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ChatFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--chat-format",
        help="phi3, chatml, llama3, gemma or mistral-instruct instead of the model's own template.",
    ),
]


def report_error(exc: OrchestratorError) -> None:
    """Print an expected error and its fix (as text: brackets in it are not markup)."""
    err_console.print(f"[bold red]error:[/] {escape(exc.message)}")
    if exc.fix:
        err_console.print(f"[yellow]fix:[/] {escape(exc.fix)}")


def guarded(fn: F) -> F:
    """Turn expected errors into a red message with the fix and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OrchestratorError as exc:
            report_error(exc)
            raise typer.Exit(2) from None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            report_error(OptionError(f"invalid option: {problems}", fix="see --help"))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("[dim]interrupted[/]")
            raise typer.Exit(130) from None
        except ModuleNotFoundError as exc:
            top = (exc.name or "").split(".")[0]
            if top not in EXTRAS:
                raise
            err_console.print(f"[bold red]error:[/] this command needs {top!r}, not installed")
            err_console.print(f"[yellow]fix:[/] pip install 'orchestrator\\[{EXTRAS[top]}]'")
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def chat_model(model: str | None, max_tokens: int, **kwargs: Any) -> Any:
    """A ChatLlamaCpp for CLI use (imported lazily so ``--help`` stays fast)."""
    from orchestrator.llama.chat import ChatLlamaCpp

    return ChatLlamaCpp(model_path=model, max_tokens=max_tokens, **kwargs)
