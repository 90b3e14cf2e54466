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
    typer.Option(
        "--model",
        "-m",
        help="GGUF file (default: $ORCHESTRATOR_MODEL or embedded); with --base-url, the "
        "served model's name (default: the server's only model).",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="Use the model on this OpenAI-compatible server (llama.cpp, vLLM, Ollama), e.g. "
        "http://gpu-box:8000/v1 (default: $ORCHESTRATOR_BASE_URL; unset: a local GGUF).",
        show_default=False,
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="The server's API key, if it wants one (default: $ORCHESTRATOR_API_KEY).",
        show_default=False,
    ),
]
DsnOpt = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        help="PostgreSQL database holding the index, e.g. postgresql://USER:PASS@HOST/DB "
        "(orchestrator db start prints one); --index then names the index inside it.",
        show_default=False,
    ),
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


def chat_model(
    model: str | None,
    max_tokens: int,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    **kwargs: Any,
) -> Any:
    """The chat model a command uses: a ChatLlamaCpp on a GGUF, or, when a base URL is given
    (``--base-url`` or ``$ORCHESTRATOR_BASE_URL``), the named model on that server, checked
    before use (:func:`orchestrator.remote.remote_chat_model`). Imported lazily so ``--help``
    stays fast."""
    from orchestrator.remote import resolve_endpoint

    url, key = resolve_endpoint(base_url, api_key)
    if url is None:
        from orchestrator.llama.chat import ChatLlamaCpp

        return ChatLlamaCpp(model_path=model, max_tokens=max_tokens, **kwargs)
    return remote_model(url, key, model, max_tokens=max_tokens, **kwargs)


#: Local-only CLI options, and where their remote counterpart is set instead.
_LOCAL_ONLY = {
    "chat_format": ("--chat-format", "the server applies its own chat template"),
    "n_ctx": ("--n-ctx", "the server sets its context size (llama.cpp: --n_ctx / -c)"),
}


def remote_model(url: str, key: str | None, model: str | None, **kwargs: Any) -> Any:
    """The served model for a command's options: local-only options set to something are an
    error naming where to set them instead; seed -1 (random) is left to the server."""
    from orchestrator.remote import remote_chat_model

    for name, (flag, where) in _LOCAL_ONLY.items():
        if kwargs.pop(name, None) is not None:
            raise OptionError(
                f"{flag} applies to a local GGUF model, not to one served at {url}",
                fix=f"leave out {flag}: {where}",
            )
    if kwargs.get("seed") == -1:
        kwargs["seed"] = None
    return remote_chat_model(url, model, key, **kwargs)


def check_rerank_local(base_url: str | None, api_key: str | None, rerank: str | None) -> None:
    """``--rerank llm`` scores next-token probabilities in process, so it needs a local GGUF:
    with a served model it is an error (before anything loads)."""
    from orchestrator.remote import resolve_endpoint

    url, _ = resolve_endpoint(base_url, api_key)
    if url is not None and rerank == "llm":
        raise OptionError(
            f"--rerank llm scores with a local GGUF in process; it cannot use the model "
            f"served at {url}",
            fix="use --rerank none or a CrossEncoder directory, or leave out --base-url",
        )


def model_label(llm: Any) -> str:
    """The model as the CLI names it: the GGUF file's path, or ``NAME at URL``."""
    from orchestrator.remote import remote_model_of

    served = remote_model_of(llm)
    return served.label if served is not None else str(llm.info.path)


def index_location(index: Any, dsn: str | None) -> tuple[str, str | None]:
    """The one resolver for ``--index``/``--dsn``: ``(index, dsn)`` as the retrieval API takes
    them. Without a DSN, ``--index`` is a directory; with one, its text as typed is the name
    of an index inside that PostgreSQL database. A DSN that is neither a ``postgresql://``
    URI nor ``key=value`` pairs is an error (a path typed there by mistake is caught)."""
    if dsn is None:
        return str(index), None
    text = dsn.strip()
    if not (text.startswith(("postgresql://", "postgres://")) or "=" in text):
        raise OptionError(
            "--dsn must be a PostgreSQL connection string",
            fix="e.g. --dsn postgresql://USER:PASSWORD@HOST:5432/DB (orchestrator db start "
            "prints one for a local server)",
        )
    return str(index), text
