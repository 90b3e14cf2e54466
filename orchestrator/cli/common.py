"""Shared CLI plumbing: the options every command declares (once, here), error reporting,
JSON output, and the pipeline spec a command runs (its options through the library's one
``spec_from_options``, or a ``--spec`` file)."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import warnings
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from orchestrator.errors import OptionError, OrchestratorError

if TYPE_CHECKING:
    from orchestrator.agents.pipelines.specs import AgentSpec, RagSpec, StorySpec

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])

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
MaxTokensOpt = Annotated[
    int | None,
    typer.Option(
        "--max-tokens",
        min=1,
        help="Tokens to generate (default: 256 for a local GGUF; with --base-url, the "
        "server's own).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ChatFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--chat-format",
        help="phi3, chatml, llama3, gemma or mistral-instruct instead of the model's own template.",
    ),
]


TemperatureOpt = Annotated[float, typer.Option("--temperature", "-t", min=0.0, max=2.0)]
SeedOpt = Annotated[int, typer.Option("--seed", help="Sampling seed (-1: random).")]
IndexOpt = Annotated[
    Path,
    typer.Option("--index", help="Index directory (with --dsn: the index's name; required)."),
]
IndexesOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--index",
        help="Index directory, or with --dsn its name (required; repeat it for --strategy "
        "route/agentic).",
    ),
]
# Pipeline options default to None ("not given"): the RagSpec's default applies, so the same
# flags build the same spec on every command; the help names that default (a test checks it).
ModeOpt = Annotated[
    str | None,
    typer.Option(
        "--mode",
        help="Search mode: dense | bm25 | hybrid | auto (the index's sides) (default: hybrid).",
        show_default=False,
    ),
]
KOpt = Annotated[
    int | None,
    typer.Option(
        "-k", "--k", min=1, help="Sources retrieved per search (default: 4).", show_default=False
    ),
]
RerankOpt = Annotated[
    str | None,
    typer.Option(
        "--rerank",
        help="none | llm (a local GGUF: --model) | a local CrossEncoder directory (default: none).",
        show_default=False,
    ),
]
EmbeddingOpt = Annotated[
    str | None,
    typer.Option(
        "--embedding",
        help="The local embedding model folder the index was built with (when not the "
        "bundled MiniLM: an index never loads a model its manifest names).",
    ),
]
MinSimilarityOpt = Annotated[
    float | None,
    typer.Option(
        "--min-similarity",
        help="Drop sources less similar than this (default 0.3 when the index has dense "
        "vectors; a bm25-only index has no similarity to filter on).",
    ),
]
StrategyOpt = Annotated[
    str | None,
    typer.Option(
        "--strategy",
        help="plain | rewrite | multi-query | hyde | multi-hop | route | agentic "
        "(several --index: route or agentic) (default: plain).",
        show_default=False,
    ),
]
SearchStrategyOpt = Annotated[
    str | None,
    typer.Option(
        "--strategy",
        help="plain | rewrite | multi-query | hyde: the model (--model, or --base-url) writes "
        "the queries (default: plain).",
        show_default=False,
    ),
]
EvalStrategyOpt = Annotated[
    str | None,
    typer.Option(
        "--strategy",
        help="plain | rewrite | multi-query | hyde | multi-hop: measure the strategy's "
        "retrieval (--model writes its queries) (default: plain).",
        show_default=False,
    ),
]
ServedIndexesOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--index",
        help="Index directory (with --dsn its name): enables the rag pipeline and the "
        "knowledge_base tool (which, without --index, searches the --spec's index); repeat it "
        "for --strategy route/agentic (knowledge_base searches one: several are then an error).",
    ),
]
SpecOpt = Annotated[
    Path | None,
    typer.Option(
        "--spec",
        help="Run the pipeline spec in this YAML/JSON file (from --print-spec); pipeline "
        "options beside it are an error (edit the file instead); --api-key may be given.",
    ),
]
PrintSpecOpt = Annotated[
    bool,
    typer.Option("--print-spec", help="Print the pipeline spec (JSON) instead of running it."),
]

#: Parameters that are not part of a pipeline: they may be given beside ``--spec``.
NOT_PIPELINE = frozenset({"spec_file", "show_spec", "as_json", "api_key"})


def report_error(exc: OrchestratorError) -> None:
    """Print an expected error and its fix (as text: brackets in it are not markup)."""
    err_console.print(f"[bold red]error:[/] {escape(exc.message)}")
    if exc.fix:
        err_console.print(f"[yellow]fix:[/] {escape(exc.fix)}")


def traced_command(context: typer.Context, *, no_trace: bool, otlp: str | None) -> None:
    """Trace the command about to run (the library decides which commands record runs) until
    its context closes; a bad ``--otlp`` or tracing setting is an error, a store that cannot
    be opened a warning."""
    from orchestrator.tracing import command_tracing

    def warn(message: str) -> None:
        err_console.print(f"[yellow]warning:[/] {escape(message)}")

    tracing = command_tracing(context.invoked_subcommand, no_trace=no_trace, otlp=otlp, warn=warn)
    try:
        context.with_resource(tracing)
    except OrchestratorError as exc:
        report_error(exc)
        raise typer.Exit(2) from None


def guarded(fn: F) -> F:
    """Turn expected errors into a red message with the fix and exit code 2 (no traceback);
    the run being traced records the error and its fix."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OrchestratorError as exc:
            from orchestrator.tracing import record_error

            record_error(exc)
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
            from orchestrator.extras import missing_extra

            report_error(missing_extra(exc))
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def warnings_on_stderr(wanted: type[Warning]) -> Iterator[None]:
    """Show warnings of the ``wanted`` kind as one plain line on stderr, each time, instead of
    Python's format with a source line: they are meant for the person at the terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", wanted)
        shown = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            if issubclass(category, wanted):
                err_console.print(f"[yellow]warning:[/] {escape(str(message))}")
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def pipeline_spec(
    kind: str,
    spec_file: Path | None,
    *,
    context: typer.Context | None = None,
    inputs: tuple[str, ...] = (),
    **options: Any,
) -> RagSpec | AgentSpec | StorySpec:
    """The spec a command runs: ``--spec FILE`` as written (only ``--api-key`` may join it:
    a spec file never holds a key; any pipeline option given beside it is an error naming
    it), else its ``options`` through :func:`spec_from_options`. ``inputs``: the command's
    parameters that are not pipeline options (the question, output switches); ``context``:
    the command's, which knows the flags given."""
    from orchestrator.agents.pipelines import load_spec, spec_from_options
    from orchestrator.tracing import annotate

    if spec_file is None:
        spec = spec_from_options(kind, **options)
    else:
        given = given_flags(context, NOT_PIPELINE | set(inputs))
        if given:
            raise OptionError(
                f"--spec runs {spec_file} as written; {', '.join(given)} cannot change it",
                fix="edit the file (write one with --print-spec), or leave out --spec",
            )
        spec = load_spec(spec_file, kind, api_key=options.get("api_key"))
    strategy = getattr(spec, "strategy", None)
    annotate(pipeline=f"{spec.kind}:{strategy}" if strategy else spec.kind)
    return spec


def given_flags(
    context: typer.Context | None,
    exempt: Collection[str] = (),
    only: Collection[str] | None = None,
) -> list[str]:
    """The command's flags given on the command line or by the environment (of ``only``, when
    given), but not those in ``exempt``."""
    if context is None:
        return []
    flags = []
    for param in context.command.params:
        name = param.name or ""
        source = context.get_parameter_source(name)
        given = source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")
        if given and name not in exempt and (only is None or name in only):
            flags.append(param.opts[0] if param.opts else name)
    return flags


def print_spec(spec: RagSpec | AgentSpec | StorySpec) -> None:
    """The spec as JSON on stdout (``--print-spec``), paths absolute so it runs from any
    folder; never the API key nor a database password (stderr says how to give it)."""
    from orchestrator.agents.pipelines import resolve_paths, to_dict
    from orchestrator.retrieval.location import PASSWORD_HELP

    spec = resolve_paths(spec, Path.cwd())
    sys.stdout.write(json.dumps(to_dict(spec), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    indexes = spec.indexes if spec.kind == "rag" else [getattr(spec, "index", None)]
    if any(index is not None and index.hides_password for index in indexes):
        err_console.print(f"[yellow]note:[/] the DSN's password is not printed: {PASSWORD_HELP}")
