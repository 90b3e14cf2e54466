"""Agent metrics: did the agent call the right tools with the right arguments, reach the goal,
and at what cost in steps and tokens.

A task set is JSONL with Ragas' field names::

    {"id": "calc-1", "input": "What is 37593 * 67?", "reference": "2518731",
     "reference_tool_calls": [{"name": "calculator", "args": {"expression": "37593 * 67"}}]}

``reference_tool_calls`` is optional; ``args`` is an object, or a string for a tool that takes
one text input. Any agent that answers ``invoke({"input": ...})`` with ``output`` and ``steps``
(``AgentExecutor``: ``orchestrator agent`` and an agent spec) or ``invoke({"question": ...})``
with ``answer`` and ``steps`` (``AgenticRAG``: the ``agentic`` RAG strategy) is measured.

Metrics (``AGENT_METRICS``):

- ``tool_call_accuracy``: Ragas' ``ToolCallAccuracy`` (non-LLM): the tools called in the
  expected order, each call's arguments matched exactly (whitespace collapsed; a plain-text
  input matches a reference with one argument, whatever that argument's name);
- ``goal_accuracy``: Ragas' ``AgentGoalAccuracyWithReference`` on the judge (grammar-constrained
  like every verdict of :class:`~orchestrator.evals.judge.LlamaJudge`): 1 if the run's end
  state is the reference outcome;
- ``answer_match``: the non-LLM baseline: 1 if the reference appears in the final answer
  (case and whitespace folded);
- ``num_steps`` and ``num_tokens``: the tool steps and the generated tokens of the task (the
  model's reported usage, through LangChain's ``UsageMetadataCallbackHandler``; a model that
  reports none: the steps' text counted with its tokenizer). Reported, never gated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.aio import blocking
from orchestrator.errors import DataError, OptionError, unknown_option
from orchestrator.evals.items import score_means

AGENT_METRICS = ("tool_call_accuracy", "goal_accuracy", "answer_match", "num_steps", "num_tokens")
LLM_AGENT_METRICS = ("goal_accuracy",)
_FIELDS = ("id", "input", "reference", "reference_tool_calls")


@dataclass(frozen=True)
class AgentTask:
    """One task: the input, the expected outcome and, optionally, the expected tool calls."""

    id: str
    input: str
    reference: str
    reference_tool_calls: list[dict[str, Any]] | None = None


def _calls(value: Any, where: str) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    ok = isinstance(value, list) and all(
        isinstance(c, dict) and isinstance(c.get("name"), str) and set(c) <= {"name", "args"}
        for c in value
    )
    if not ok:
        raise DataError(
            f"{where}: 'reference_tool_calls' must be a list of {{name, args}} objects",
            fix='e.g. [{"name": "calculator", "args": {"expression": "2 + 2"}}]',
        )
    return [{"name": c["name"], "args": c.get("args", {})} for c in value]


def load_tasks(path: str | Path) -> list[AgentTask]:
    """Read a task set; a malformed line, an unknown field or an empty file names the line."""
    from orchestrator.evals.qa import jsonl_objects

    file = Path(path)
    tasks: list[AgentTask] = []
    for where, row in jsonl_objects(file):
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object", fix="one object per line")
        for key in row:
            if key not in _FIELDS:
                error = unknown_option(key, _FIELDS, where=where)
                raise DataError(error.message, fix=error.fix)
        for key in ("input", "reference"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise DataError(f"{where}: '{key}' is missing or empty", fix=f"add '{key}'")
        calls = _calls(row.get("reference_tool_calls"), where)
        tasks.append(
            AgentTask(str(row.get("id", len(tasks) + 1)), row["input"], row["reference"], calls)
        )
    if not tasks:
        raise DataError(
            f"{file}: the task set is empty", fix='add {"input": ..., "reference": ...}'
        )
    return tasks


def _fold(text: str) -> str:
    return " ".join(str(text).split())


def _args(value: Any) -> dict[str, Any]:
    """A call's arguments as an object (a plain-text input is ``{"input": text}``)."""
    if isinstance(value, dict):
        return {k: _fold(v) if isinstance(v, str) else v for k, v in value.items()}
    text = str(value).strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return _args(parsed)
    return {"input": _fold(text)}


def tool_calls(steps: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The tool calls of a run's steps (parse errors and non-tool steps left out)."""
    return [
        {"name": s["action"], "args": _args(s.get("action_input") or "")}
        for s in steps
        if s.get("action") and not s.get("parse_error")
    ]


def _matched(actual: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """A plain-text input takes the name of the reference's one argument."""
    if set(actual) == {"input"} and len(reference) == 1:
        return {next(iter(reference)): actual["input"]}
    return actual


def _ragas_messages(task: AgentTask, run: Mapping[str, Any]) -> list[Any]:
    from ragas.messages import AIMessage, HumanMessage, ToolCall, ToolMessage

    references = [_args(c["args"]) for c in task.reference_tool_calls or []]
    messages: list[Any] = [HumanMessage(content=task.input)]
    for i, (call, step) in enumerate(zip(run["tool_calls"], run["steps_done"], strict=True)):
        args = _matched(call["args"], references[i]) if i < len(references) else call["args"]
        thought = str(step.get("thought") or "")
        messages.append(
            AIMessage(content=thought, tool_calls=[ToolCall(name=call["name"], args=args)])
        )
        messages.append(ToolMessage(content=str(step.get("observation") or "")))
    messages.append(AIMessage(content=run["output"]))
    return messages


async def _score(task: AgentTask, run: Mapping[str, Any], metric: str, judge: Any) -> float:
    from orchestrator.evals.judge import import_ragas

    import_ragas()
    from ragas.messages import ToolCall
    from ragas.metrics.collections import AgentGoalAccuracyWithReference, ToolCallAccuracy

    if metric == "tool_call_accuracy":
        if task.reference_tool_calls is None:
            raise DataError("the task has no reference_tool_calls", fix="add them to the task")
        refs = [ToolCall(name=c["name"], args=_args(c["args"])) for c in task.reference_tool_calls]
        result = await ToolCallAccuracy().ascore(
            user_input=_ragas_messages(task, run), reference_tool_calls=refs
        )
    else:
        metric_ = AgentGoalAccuracyWithReference(llm=judge)
        result = await metric_.ascore(
            user_input=_ragas_messages(task, run), reference=task.reference
        )
    return float(result.value)


def run_task(
    agent: Any, task: AgentTask, count_tokens: Callable[[str], int] | None = None
) -> dict[str, Any]:
    """Run ``agent`` on ``task``: its answer, steps, tool calls and generated tokens."""
    from langchain_core.callbacks import UsageMetadataCallbackHandler

    usage = UsageMetadataCallbackHandler()
    key = "question" if "AgenticRAG" in type(agent).__name__ else "input"
    result = agent.invoke({key: task.input}, {"callbacks": [usage]})
    steps = list(result.get("steps") or [])
    output = str(result.get("output", result.get("answer", "")))
    tokens = sum(int(u.get("output_tokens", 0)) for u in usage.usage_metadata.values())
    if not tokens and count_tokens is not None:
        texts = [
            f"{s.get('thought', '')} {s.get('action', '')} {s.get('action_input', '')}"
            for s in steps
        ]
        tokens = sum(count_tokens(t) for t in [*texts, output] if t.strip())
    return {
        "output": output,
        "steps_done": steps,
        "tool_calls": tool_calls(steps),
        "tokens": tokens,
        "stopped_because": result.get("stopped_because", result.get("stop_reason")),
    }


@dataclass
class AgentEvaluation:
    """Per-task rows (``samples``, as a RAG evaluation's), means, failures."""

    name: str
    metrics: list[str]
    samples: list[dict[str, Any]]
    failed: list[dict[str, str]]
    seconds: float
    judge: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> dict[str, float | None]:
        return score_means(self.samples, self.metrics)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": "agent", "settings": self.settings, "judge": self.judge,
            "mean": self.mean, "samples": self.samples, "failed": self.failed,
            "seconds": round(self.seconds, 3),
        }  # fmt: skip


def check_agent_metrics(names: Sequence[str], judge: Any) -> list[str]:
    for name in names:
        if name not in AGENT_METRICS:
            raise unknown_option(name, AGENT_METRICS, where="agent metrics")
    if judge is None and any(n in LLM_AGENT_METRICS for n in names):
        raise OptionError("goal_accuracy needs a judge model", fix="pass judge=LlamaJudge(...)")
    return list(dict.fromkeys(names))


def evaluate_agent(
    agent: Any,
    tasks: Sequence[AgentTask],
    metrics: Sequence[str] = ("tool_call_accuracy", "answer_match", "num_steps", "num_tokens"),
    *,
    judge: Any = None,
    name: str = "agent",
    count_tokens: Callable[[str], int] | None = None,
    settings: Mapping[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> AgentEvaluation:
    """Run ``agent`` on every task, one at a time, and score the runs (see the module
    docstring). A score that cannot be computed is in ``failed`` with its reason."""
    chosen = check_agent_metrics(metrics, judge)
    started = time.perf_counter()
    rows, failed = [], []
    for task in tasks:
        run = run_task(agent, task, count_tokens)
        scores, reasons = _scores_now(task, run, chosen, judge)
        rows.append({
            "id": task.id, "input": task.input, "reference": task.reference,
            "output": run["output"], "tool_calls": run["tool_calls"],
            "steps": run["steps_done"], "stopped_because": run["stopped_because"],
            "scores": scores,
        })  # fmt: skip
        failed += [{"id": task.id, "metric": m, "reason": r} for m, r in reasons.items()]
        if progress:
            progress(1)
    model = (
        getattr(judge, "model_name", None) if any(m in LLM_AGENT_METRICS for m in chosen) else None
    )
    return AgentEvaluation(
        name, chosen, rows, failed, time.perf_counter() - started, model, dict(settings or {})
    )


async def _scores(
    task: AgentTask, run: Mapping[str, Any], metrics: Sequence[str], judge: Any
) -> tuple[dict[str, float], dict[str, str]]:
    scores: dict[str, float] = {}
    reasons: dict[str, str] = {}
    for metric in metrics:
        if metric == "num_steps":
            scores[metric] = float(len(run["steps_done"]))
        elif metric == "num_tokens":
            scores[metric] = float(run["tokens"])
        elif metric == "answer_match":
            found = _fold(task.reference).lower() in _fold(run["output"]).lower()
            scores[metric] = float(found)
        else:
            try:
                scores[metric] = min(max(await _score(task, run, metric, judge), 0.0), 1.0)
            except DataError as exc:
                reasons[metric] = exc.message
            except Exception as exc:  # a metric's own failure is reported, not raised
                reasons[metric] = f"{type(exc).__name__}: {exc}"
    return scores, reasons


#: :func:`_scores` for the synchronous loop of :func:`evaluate_agent`.
_scores_now = blocking(_scores)
