"""``eval agent``: an agent's tool use, goal and cost on a task set; ``eval generate``: a
question set written from an index.

    orchestrator eval agent --dataset TASKS.jsonl [--tools calculator,...] [-m M.gguf]
                            [--metrics ...] [--judge-model J.gguf] [--out DIR] [--json]
    orchestrator eval generate --index DIR -n 50 [-m M.gguf] [--out QA.jsonl]

The measuring is ``orchestrator.evals.agents`` / ``evals.agent_runs``, the writing
``orchestrator.evals.generate``; this module reads options and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    JsonOpt,
    ModelOpt,
    SpecOpt,
    console,
    err_console,
    guarded,
    pipeline_spec,
    print_json,
)
from orchestrator.cli.eval_compare import OutDirOpt, mean_table, write_run

AgentMetricsHelp = (
    "Comma separated: tool_call_accuracy, goal_accuracy (judged), answer_match, num_steps, "
    "num_tokens."
)


@guarded
def agent(
    context: typer.Context,
    dataset: Annotated[Path, typer.Option("--dataset", help="JSONL task set.")],
    tools: Annotated[
        str | None, typer.Option("--tools", help="Comma separated tools (default: calculator).")
    ] = None,
    index: Annotated[
        Path | None, typer.Option("--index", help="The knowledge_base tool's index.")
    ] = None,
    metrics: Annotated[str, typer.Option("--metrics", help=AgentMetricsHelp)] = (
        "tool_call_accuracy,answer_match,num_steps,num_tokens"
    ),
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="Steps per task.")] = 5,
    model: ModelOpt = None,
    judge_model: Annotated[
        str | None, typer.Option("--judge-model", help="GGUF judging (default: embedded).")
    ] = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    spec_file: SpecOpt = None,
    out: OutDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run an agent (as `orchestrator agent` builds it) on every task and measure its tool
    calls against the expected ones, its goal (judged), its answer, steps and tokens."""
    from orchestrator.evals.agent_runs import agent_results
    from orchestrator.evals.agents import check_agent_metrics

    names = [m.strip() for m in metrics.split(",") if m.strip()]
    check_agent_metrics(names, judge=True)
    spec: Any = pipeline_spec(
        "agent", spec_file, context=context,
        inputs=("dataset", "metrics", "judge_model", "out"),
        tools=tools, index=index, max_iterations=max_steps, model=model, base_url=base_url,
        api_key=api_key,
    )  # fmt: skip
    results = agent_results(dataset, spec, names, judge_model=judge_model)
    write_run(results, out)
    result = results["configurations"][0]
    if as_json:
        print_json({k: result[k] for k in ("mean", "samples", "failed")})
        return
    mean_table(f"{dataset} · {len(result['samples'])} tasks", result["mean"])
    for failure in result["failed"]:
        err_console.print(
            f"[yellow]not scored[/] {failure['id']} {failure['metric']}: {failure['reason']}"
        )


@guarded
def generate(
    index: Annotated[Path, typer.Option("--index", help="Index to write questions from.")],
    count: Annotated[int, typer.Option("-n", "--count", min=1, help="Questions to write.")] = 50,
    out: Annotated[Path, typer.Option("--out", help="The question set (JSONL) to write.")] = Path(
        "generated_qa.jsonl"
    ),
    two_passage: Annotated[
        float,
        typer.Option("--two-passage", min=0, max=1, help="Share of two-passage questions."),
    ] = 0.3,
    seed: Annotated[int, typer.Option("--seed", help="Which passages are drawn.")] = 0,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=32, help="Tokens per generated row.")
    ] = 256,
    as_json: JsonOpt = False,
) -> None:
    """Write question / reference answer / reference contexts rows from an index's passages
    (single- and two-passage questions, each generated under a JSON grammar, duplicates
    dropped), as a question set `eval rag --dataset` reads."""
    from orchestrator.evals.generate import generate_dataset
    from orchestrator.models import ModelSpec

    spec = ModelSpec(model=model, base_url=base_url, api_key=api_key)
    report = generate_dataset(
        index, count, out, model=spec, two_passage=two_passage, seed=seed,
        max_tokens=max_tokens, progress=not as_json,
    )  # fmt: skip
    if as_json:
        print_json(report)
        return
    console.print(
        f"wrote {report['written']} questions ({report['two_passage']} two-passage) to "
        f"{report['path']}; dropped {report['duplicates']} duplicates, {report['failed']} "
        "that did not parse or were empty"
    )
