"""An agent task set run as a one-configuration suite: the ``results.json`` payload
``orchestrator eval agent`` writes (and reports, per-item files and ``eval compare`` read).

The agent is the one an :class:`~orchestrator.agents.pipelines.AgentSpec` names: the ReAct
``AgentExecutor`` of ``orchestrator agent``, with the same tools and limits.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path
from typing import Any

from orchestrator.errors import OptionError
from orchestrator.evals.agents import (
    LLM_AGENT_METRICS,
    check_agent_metrics,
    evaluate_agent,
    load_tasks,
)


def _agent(spec: Any) -> tuple[Any, Any]:
    """The executor an agent spec names, and its model."""
    from orchestrator.agents.pipelines import AgentSpec, build

    if not isinstance(spec, AgentSpec):
        raise OptionError(
            f"eval agent measures an agent spec, not a {getattr(spec, 'kind', '?')} spec",
            fix="pass --tools (and --model), or --spec FILE naming an agent spec (kind: agent); "
            "an AgenticRAG is measured with evals.agents.evaluate_agent",
        )
    executor = build(spec)
    return executor, executor.agent.llm


def agent_results(
    dataset: str | Path,
    spec: Any,
    metrics: list[str],
    *,
    judge_model: str | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Run every task of ``dataset`` on the agent ``spec`` names and score it."""
    from orchestrator.agents.pipelines import to_dict
    from orchestrator.evals.cache import model_digest
    from orchestrator.evals.items import spec_digest
    from orchestrator.models import capabilities

    tasks = load_tasks(dataset)
    judge = None
    if any(m in LLM_AGENT_METRICS for m in metrics):
        from orchestrator.evals.judge import LlamaJudge

        judge = LlamaJudge(model_path=judge_model)
    check_agent_metrics(metrics, judge)
    started = dt.datetime.now(dt.UTC)
    agent, llm = _agent(spec)
    settings = to_dict(spec)
    result = evaluate_agent(
        agent, tasks, metrics, judge=judge, name="cli", settings=settings,
        count_tokens=capabilities(llm).count_tokens, progress=progress,
    ).to_json()  # fmt: skip
    result["spec_sha256"] = spec_digest(settings)
    result["model_sha256"] = model_digest(spec.model)
    return {
        "suite": "eval-agent",
        "kind": "agent",
        "dataset": str(Path(dataset).resolve()),
        "metrics": list(metrics),
        "thresholds": {},
        "created": started.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "configurations": [result],
    }
