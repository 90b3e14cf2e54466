"""``orchestrator replay RUN_ID [--span ID]``: run a recorded model call, or every model call of
a recorded run, again on the same GGUF and say whether the output is identical. The replay is
the library's (``orchestrator.tracing.replay``); this module parses options and prints.

Exit status: 0 identical, 1 different or not every call could be replayed, 2 an error."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from orchestrator.cli.common import JsonOpt, console, guarded, print_json
from orchestrator.cli.logs import StoreOpt

if TYPE_CHECKING:
    from orchestrator.tracing.replay import Difference, ReplayReport

VERDICT_STYLE = {"identical": "green", "different": "red", "fed back": "dim",
                 "not replayed": "yellow", "incomplete": "yellow"}  # fmt: skip
SHOWN = 120


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)


@guarded
def replay(
    run_id: Annotated[str, typer.Argument(help="The run's id (or its first characters).")],
    span: Annotated[
        str | None,
        typer.Option("--span", help="Replay only this model call (its span id or a prefix)."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            "-m",
            help="Replay on this GGUF instead of the recorded file (a changed file is named).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """Re-run a recorded model call, or a whole chain or agent run with its recorded retrieval
    and tool results fed back, on the same GGUF; print "identical" or the first differing
    step and token. A model file or llama.cpp build other than the recorded one is named."""
    from orchestrator.tracing.replay import replay_run, replay_span
    from orchestrator.tracing.store import TraceStore

    path = str(model.expanduser().resolve()) if model is not None else None
    with TraceStore(store) as traces:
        run = traces.run(run_id)
        if span is None:
            report = replay_run(traces, run.run_id, model_path=path)
        else:
            report = replay_span(traces, span, run_id=run.run_id, model_path=path)
    if as_json:
        print_json(report.to_dict())
    else:
        _print(report)
    if not report.identical:
        raise typer.Exit(1)


def _short(value: object) -> str:
    text = str(value)
    return escape(text if len(text) <= SHOWN else text[: SHOWN - 1] + "…")


def _difference(found: Difference) -> str:
    if found.token_index is not None:
        was, now = _short(repr(found.expected_token)), _short(repr(found.got_token))
        return f"{found.what} differs at token {found.token_index}: expected {was}, got {now}"
    return f"{found.what} differs: expected {_short(found.expected)}, got {_short(found.got)}"


def _print(report: ReplayReport) -> None:
    target = f"span {report.span_id} of run" if report.span_id else "run"
    console.print(f"[bold]replay of {target} {report.run_id}[/]")
    for step in report.steps:
        style = VERDICT_STYLE.get(step.verdict, "white")
        line = f"  step {step.step}  {escape(step.name)}  [{style}]{step.verdict}[/]"
        if step.difference is not None:
            line += f"  {_difference(step.difference)}"
        if step.note:
            line += f"  [dim]({escape(step.note)})[/]"
        console.print(line)
    first = report.first_difference
    style = VERDICT_STYLE.get(report.verdict, "white")
    summary = f"[{style}]{report.verdict}[/]"
    if first is not None:
        summary += f": first at step {first.step} ({escape(first.name)}), {_difference(first)}"
        for label, text in (("expected", first.expected), ("got", first.got)):
            console.print(f"  {label}: {_short(text)}")
    console.print(summary)
    console.print(f"build: {escape(report.build)}")
    for path in report.model_files:
        console.print(f"model file: {escape(path)}")
    for change in report.model_changes:
        console.print(f"[red]{escape(change)}[/]")
    if report.build_change:
        console.print(f"[red]{escape(report.build_change)}[/]")
    for line in report.missing:
        console.print(f"[yellow]not in the record:[/] {escape(line)}")
