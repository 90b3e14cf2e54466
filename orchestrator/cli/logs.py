"""``orchestrator logs``: the run log that tracing records (list, ``show``, ``-q`` search,
``export``). The queries and rows are the library's (``orchestrator.tracing``); this module
parses options and prints."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from orchestrator.cli.common import JsonOpt, console, err_console, guarded, print_json
from orchestrator.errors import OptionError

if TYPE_CHECKING:
    from orchestrator.tracing.store import RunFilter, RunSummary, SpanView, TraceStore

StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Trace store file (default: $ORCHESTRATOR_HOME/traces.sqlite).",
        show_default=False,
    ),
]
CommandOpt = Annotated[str | None, typer.Option("--command", help="Only runs of this command.")]
PipelineOpt = Annotated[str | None, typer.Option("--pipeline", help="Only this pipeline.")]
ModelFilterOpt = Annotated[
    str | None, typer.Option("--model", help="Only runs whose model contains this.")
]
SessionOpt = Annotated[str | None, typer.Option("--session", help="Only this session/thread.")]
StatusOpt = Annotated[
    str | None, typer.Option("--status", help="running | ok | error | interrupted.")
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Started at or after: 30m, 2h, 7d or 2025-05-01.")
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Started at or before (as --since).")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, help="Runs shown at most.")]
STATUS_STYLE = {"ok": "green", "error": "red", "interrupted": "yellow", "running": "cyan"}

logs_app = typer.Typer(
    help="The run log: every run the CLI, the server or enabled Python code recorded.",
    invoke_without_command=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(logs_app, name="logs")


def _filter(limit: int | None, **given: Any) -> RunFilter:
    from orchestrator.tracing.store import STATUSES, RunFilter, parse_time

    status = given.get("status")
    if status is not None and status not in STATUSES:
        raise OptionError(
            f"--status {status!r} is not a status", fix=f"one of {', '.join(STATUSES)}"
        )
    since, until = (parse_time(given[k]) if given.get(k) else None for k in ("since", "until"))
    return RunFilter(
        command=given.get("command"), pipeline=given.get("pipeline"), model=given.get("model"),
        session=given.get("session"), status=status, since=since, until=until, limit=limit,
    )  # fmt: skip


def _open(path: Path | None) -> TraceStore:
    from orchestrator.tracing.store import TraceStore

    return TraceStore(path)


def _when(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds).strftime("%m-%d %H:%M")


def _tokens(run: RunSummary | SpanView) -> str:
    if run.input_tokens is None and run.output_tokens is None:
        return ""
    return f"{run.input_tokens or 0}→{run.output_tokens or 0}"


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _runs_table(runs: list[RunSummary], snippets: dict[str, str] | None = None) -> Table:
    table = Table(show_edge=False, header_style="bold")
    columns = ("run", "started", "command", "pipeline", "model", "session", "status", "tokens",
               "seconds")  # fmt: skip
    for column in (*columns, *(("match",) if snippets is not None else ())):
        fixed = column in ("run", "status", "tokens", "seconds")
        table.add_column(column, no_wrap=fixed, overflow="fold")
    for run in runs:
        seconds = "" if run.duration_s is None else f"{run.duration_s:.2f}"
        plain = [run.run_id[:8], _when(run.started), run.command or "", run.pipeline or run.name,
                 run.model or "", run.session or ""]  # fmt: skip
        cells = [*map(escape, plain), _status(run.status), _tokens(run), seconds]
        if snippets is not None:
            cells.append(escape(snippets.get(run.run_id, "")))
        table.add_row(*cells)
    return table


@logs_app.callback()
@guarded
def logs(
    context: typer.Context,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Search prompts and answers (FTS5).")
    ] = None,
    command: CommandOpt = None,
    pipeline: PipelineOpt = None,
    model: ModelFilterOpt = None,
    session: SessionOpt = None,
    status: StatusOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: LimitOpt = 20,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """List recorded runs, newest first (-q TEXT: the runs whose prompts or answers hold
    every word); `logs show RUN_ID` prints one as a tree."""
    if context.invoked_subcommand is not None:
        return
    where = _filter(limit, command=command, pipeline=pipeline, model=model, session=session,
                    status=status, since=since, until=until)  # fmt: skip
    with _open(store) as traces:
        if query is not None:
            hits = traces.search(query, where)
            if as_json:
                print_json([h.to_dict() for h in hits])
                return
            runs, snippets = [h.run for h in hits], {h.run.run_id: h.snippet for h in hits}
        else:
            runs, snippets = traces.runs(where), None
            if as_json:
                print_json([r.to_dict() for r in runs])
                return
    if not runs:
        err_console.print(f"no runs recorded in {traces.path} match" if traces.path.exists()
                          else f"no runs recorded yet ({traces.path} does not exist)")  # fmt: skip
        return
    console.print(_runs_table(runs, snippets))


def _label(span: SpanView) -> str:
    from orchestrator.tracing.view import span_facts

    parts = [f"[bold]{escape(span.name)}[/] [dim]{span.kind}[/]", f"{span.duration_s:.3f}s"]
    if span.status != "ok":
        parts.append(_status(span.status))
    parts += [escape(f) for f in span_facts(span)]
    text = " · ".join(parts)
    if span.error:
        text += f"\n[red]error:[/] {escape(span.error)}"
    if span.fix:
        text += f"\n[yellow]fix:[/] {escape(span.fix)}"
    return text


def _add(node: Tree, tree: dict[str | None, list[SpanView]], parent: str | None) -> None:
    for span in tree.get(parent, []):
        _add(node.add(_label(span)), tree, span.span_id)


@logs_app.command("show")
@guarded
def show(
    run_id: Annotated[str, typer.Argument(help="The run's id (or its first characters).")],
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """Print one run's spans as a tree: chains, model calls (tokens, time to first token),
    retrievals (query, documents, scores), tool calls, errors with their fix."""
    from orchestrator.tracing.view import span_tree

    with _open(store) as traces:
        run = traces.run(run_id)
        spans = traces.spans(run.run_id)
    if as_json:
        print_json({"run": run.to_dict(), "spans": [s.to_dict() for s in spans]})
        return
    seconds = "running" if run.duration_s is None else f"{run.duration_s:.3f}s"
    title = (f"[bold]run {run.run_id}[/] · {escape(run.command or '')} · "
             f"{escape(run.pipeline or run.name)} · {_status(run.status)} · {seconds}")  # fmt: skip
    root = Tree(title)
    tree = span_tree(spans)
    tops = tree.get(None, [])
    if len(tops) == 1 and tops[0].span_id == run.root_span:  # the run's own span: its children
        tree[None] = tree.get(run.root_span, [])
    _add(root, tree, None)
    console.print(root)
    for label, text in (("error", run.error), ("fix", run.fix)):
        if text:
            console.print(f"[{'red' if label == 'error' else 'yellow'}]{label}:[/] {escape(text)}")


@logs_app.command("export")
@guarded
def export(
    format: Annotated[str, typer.Option("--format", help="jsonl (eval rag --dataset).")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    command: CommandOpt = None,
    pipeline: PipelineOpt = None,
    model: ModelFilterOpt = None,
    session: SessionOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1)] = None,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """Write the recorded RAG runs (question, answer, retrieved passages) as a question set
    for `orchestrator eval rag --dataset`; the recorded answer stands in as `reference`."""
    from orchestrator.tracing.export import FORMATS, export_rows, write_jsonl

    if format not in FORMATS:
        raise OptionError(f"--format {format!r} is not known", fix=f"one of {', '.join(FORMATS)}")
    where = _filter(limit, command=command, pipeline=pipeline, model=model, session=session,
                    status="ok", since=since, until=until)  # fmt: skip
    with _open(store) as traces:
        rows = export_rows(traces, where)
    if output is None:
        write_jsonl(rows, sys.stdout)
        sys.stdout.flush()
    else:
        with output.open("w", encoding="utf-8") as handle:
            write_jsonl(rows, handle)
    if as_json and output is not None:
        print_json({"rows": len(rows), "output": str(output), "format": format})
    elif output is not None:
        console.print(f"wrote {len(rows)} row(s) to {output}")
