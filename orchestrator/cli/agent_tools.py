"""``orchestrator agent --mode tools``: the tool-calling agent's steps, approvals and result.

The library runs the agent and decides what a decision may be
(:func:`~orchestrator.agents.tool_agent.run_agent`,
:func:`~orchestrator.agents.tool_agent.check_decision`); this module only prints the steps
and asks the person at the terminal: approve, edit the arguments (JSON), or reject with a
reason. Without a terminal a run waiting for approval stops and says how to resume it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import typer

from orchestrator.cli.common import console, print_json
from orchestrator.errors import OptionError


def run_tool_agent(
    spec: Any,
    question: str | None,
    thread: str | None,
    resume: bool,
    as_json: bool,
    on_close: Callable[[Any], Any],
) -> None:
    """Build the agent of ``spec``, run it on ``thread`` and print the result."""
    from orchestrator.agents.pipelines import build

    agent = build(spec, on_close=on_close)
    interactive = sys.stdin.isatty() and not as_json
    result = agent.run(
        question,
        thread_id=thread,
        resume=resume,
        decide=_Reviewer(agent.agent.orchestrator_tools) if interactive else None,
        on_event=None if as_json else _print_event,
    )
    if as_json:
        print_json(result)
        return
    if result["pending"]:
        names = ", ".join(p["action"] for p in result["pending"])
        console.print(
            f"[yellow]waiting for approval of {names}[/]: run `orchestrator agent --mode tools "
            f"--thread {result['thread_id']} --resume` in a terminal to decide",
            markup=True,
        )
    else:
        console.print(f"[bold]Answer:[/] {result['output']}", highlight=False)
    console.print(
        f"[dim]stopped because {result['stopped_because']}; thread {result['thread_id']}[/]"
    )


def _print_event(event: dict[str, Any]) -> None:
    if event["type"] == "action":
        args = json.dumps(event["args"], ensure_ascii=False)
        console.print(f"[cyan]Action:[/] {event['action']} {args}", highlight=False)
    elif event["type"] == "observation":
        console.print(f"[green]Observation:[/] {event['observation']}", highlight=False)


class _Reviewer:
    """Asks at the terminal for each pending call, until the answer is one it accepts."""

    def __init__(self, tools: dict[str, Any]) -> None:
        self.tools = tools

    def __call__(self, call: Any) -> dict[str, Any]:
        from orchestrator.agents.tool_agent import check_decision

        args = json.dumps(call.args, ensure_ascii=False)
        console.print(f"[bold yellow]Approve?[/] {call.name} {args}", highlight=False)
        while True:
            decision = self._ask(call, args)
            if decision is None:
                continue
            try:
                return check_decision(call, decision, self.tools)
            except OptionError as exc:
                console.print(f"[red]{exc}[/] ({exc.fix})", highlight=False)

    def _ask(self, call: Any, args: str) -> dict[str, Any] | None:
        letters = {d[0]: d for d in call.allowed}
        shown = "/".join(f"{d[0]}={d}" for d in call.allowed)
        choice = typer.prompt(f"Decision [{shown}]").strip().lower()[:1]
        kind = letters.get(choice)
        if kind == "edit":
            text = typer.prompt("New arguments (JSON)", default=args)
            try:
                new_args = json.loads(text)
            except json.JSONDecodeError as exc:
                console.print(f"[red]not JSON: {exc}[/]", highlight=False)
                return None
            return {"type": "edit", "edited_action": {"name": call.name, "args": new_args}}
        if kind == "reject":
            return {"type": "reject", "message": typer.prompt("Reason")}
        return {"type": kind or choice}
