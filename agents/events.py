"""What an agent run reports while it runs: step events, the verbose printer, JSON traces.

Events are plain dicts (``{"type": "action", ...}``) so applications can forward them as JSON.
Types, in order of a run: ``start``; per step ``action`` then ``observation`` (or
``parse_error``); ``limit`` when a limit ends the loop; ``final`` last, carrying the result.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from orchestrator.errors import DataError

STOP_REASONS = (
    "final_answer",
    "max_iterations",
    "max_execution_time",
    "repeated_action",
    "repeated_output",
    "context_overflow",
    "return_direct",
)


@dataclass
class StepRecord:
    """One step as the model saw it: what it thought and did, and what came back."""

    thought: str
    action: str | None
    action_input: str | None
    observation: str
    raw: str
    parse_error: bool = False
    seconds: float = 0.0

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AgentTrace:
    """A whole run, saved as JSON so it can be inspected or diffed later."""

    input: str
    tools: list[str]
    model: str
    grammar: bool
    step_mode: str = "parser"
    """How steps were constrained: ``grammar``, ``json_schema`` or ``parser``."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    steps: list[StepRecord] = field(default_factory=list)
    output: str = ""
    final_raw: str = ""
    stopped_because: str = ""
    seconds: float = 0.0

    @property
    def parse_errors(self) -> int:
        return sum(1 for s in self.steps if s.parse_error)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["parse_errors"] = self.parse_errors
        return data

    def save(self, path: str | Path) -> Path:
        """Write the trace; a directory gets ``agent-<time>-<run id>.json`` inside it."""
        target = Path(path)
        if target.is_dir() or not target.suffix:
            target.mkdir(parents=True, exist_ok=True)
            stamp = self.started_at.replace(":", "").replace("-", "")[:15]
            target = target / f"agent-{stamp}-{self.run_id}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), "utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> AgentTrace:
        """Read a trace written by :meth:`save` (JSON only; nothing is unpickled)."""
        try:
            data = json.loads(Path(path).read_text("utf-8"))
            data.pop("parse_errors", None)
            steps = [StepRecord(**s) for s in data.pop("steps")]
            return cls(**data, steps=steps)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise DataError(
                f"{path} is not an agent trace: {exc}",
                fix="pass a file written by AgentTrace.save or AgentExecutor(trace_dir=...)",
            ) from None


class Timer:
    """Seconds since construction (monotonic)."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return round(time.monotonic() - self.start, 3)


class VerbosePrinter:
    """Prints each event as it happens, coloured like LangChain's executor."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        out = self.console.print
        if kind == "start":
            out("\n[bold]> Entering new AgentExecutor chain...[/]")
            if event.get("step_mode"):
                out(f"[dim](steps: {event['step_mode']})[/]")
        elif kind == "action":
            out(f"[cyan]Thought: {escape(event['thought'])}[/]")
            out(f"[bold yellow]Action:[/] {escape(event['action'])}")
            out(f"[bold yellow]Action Input:[/] {escape(event['action_input'])}")
        elif kind == "observation":
            out(f"[green]Observation: {escape(event['observation'])}[/]")
        elif kind == "parse_error":
            out(f"[red]Could not parse: {escape(event['raw'].strip())}[/]")
            out(f"[red]Observation: {escape(event['observation'])}[/]")
        elif kind == "limit":
            again = (
                f" {event['action']}({event['action_input']!r}) again" if "action" in event else ""
            )
            out(
                f"[magenta]Stopping ({event['reason']}{escape(again)}): "
                "asking for a final answer without tools[/]"
            )
        elif kind == "final":
            if event.get("thought"):
                out(f"[cyan]Thought: {escape(event['thought'])}[/]")
            out(f"[bold green]Final Answer: {escape(event['output'])}[/]")
            why = event["stopped_because"]
            out(f"\n[bold]> Finished chain.[/] [dim](stopped because: {why})[/]")
