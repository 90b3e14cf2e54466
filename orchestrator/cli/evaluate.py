"""``eval``: measure retrieval (trec_eval measures) and RAG answers (Ragas), run suites.

    orchestrator eval retrieval --dataset BEIR_DIR [--mode hybrid] [--rerank llm [-m M.gguf]]
    orchestrator eval rag --dataset QA.jsonl --index DIR [--metrics ...] [-m M.gguf] [--json]
    orchestrator eval SUITE.yaml [--out DIR] [--baseline PREVIOUS.json] [--fail-below map=0.3]
                                 [--fail-drop map=0.02] [--repeat N] [--no-cache] [-m M.gguf]
    orchestrator eval compare RUN_A RUN_B [--json] [--fail-drop map=0.02]
    orchestrator eval agent --dataset TASKS.jsonl [--tools ...]   (orchestrator/cli/eval_agent.py)
    orchestrator eval generate --index DIR -n 50 [--out QA.jsonl]

``eval retrieval`` and ``eval rag`` are one-configuration suites: the same flags give the
same spec as ``orchestrator rag`` (``--print-spec``), which the suite runner
(``orchestrator.evals.runner``) builds and scores. ``--model`` / ``-m`` is the GGUF that
reranks with ``--rerank llm``, writes a strategy's queries, and in RAG answers.

``eval`` is a command group whose unknown first argument, when it is a YAML file, runs the
``suite`` subcommand on it: ``eval SUITE.yaml`` is ``eval suite SUITE.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from orchestrator.cli import eval_agent
from orchestrator.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    DsnOpt,
    EmbeddingOpt,
    EvalStrategyOpt,
    JsonOpt,
    KOpt,
    MaxTokensOpt,
    MinSimilarityOpt,
    ModelOpt,
    ModeOpt,
    PrintSpecOpt,
    RerankOpt,
    SpecOpt,
    StrategyOpt,
    console,
    err_console,
    guarded,
    pipeline_spec,
    print_json,
    print_spec,
)
from orchestrator.cli.eval_compare import (
    FailDropOpt,
    NoCacheOpt,
    OutDirOpt,
    RepeatOpt,
    SeedOpt,
    compare,
    mean_table,
    ray_plan,
    write_run,
)
from orchestrator.cli.ray_options import RayOpt, RayWorkersOpt, check_ray_workers
from orchestrator.errors import OptionError

MetricsHelp = (
    "Comma separated: Ragas metrics, the book's citation_recall, citation_precision, fluency, "
    "perceived_utility, and their non-LLM baselines (citation_recall_lexical, "
    "citation_precision_lexical, fluency_perplexity); an unknown name lists them all."
)


class EvalGroup(TyperGroup):
    """A group where ``eval PATH.yaml ...`` means ``eval suite PATH.yaml ...``."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        first = args[0] if args else ""
        if first not in self.commands and first.endswith((".yaml", ".yml")):
            return "suite", self.commands["suite"], args
        return super().resolve_command(ctx, args)


eval_app = typer.Typer(
    cls=EvalGroup,
    no_args_is_help=True,
    help="Evaluate retrieval and RAG: eval retrieval | eval rag | eval SUITE.yaml.",
)


eval_app.command("compare")(compare)
eval_app.command("agent")(eval_agent.agent)
eval_app.command("generate")(eval_agent.generate)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


def _configuration(
    context: typer.Context, spec_file: Path | None, inputs: tuple[str, ...], **options: Any
) -> Any:
    """The command's pipeline as a suite configuration: with ``--index`` or ``--spec``, the
    spec itself, built as ``orchestrator rag`` builds it from the same flags (the API key
    travels apart, never into results); without, the options (the index is built from the
    dataset, or the samples carry their answers)."""
    from typing import get_args

    from orchestrator.agents.pipelines.specs import SearchMode
    from orchestrator.errors import unknown_option
    from orchestrator.evals.suite import PipelineConfig

    if options["mode"] not in (None, *get_args(SearchMode)):
        raise unknown_option(options["mode"], get_args(SearchMode), where="--mode")
    if options["index"] is not None or spec_file is not None:
        spec: Any = pipeline_spec("rag", spec_file, context=context, inputs=inputs, **options)
        return PipelineConfig(name="cli", spec=spec)
    if options["dsn"] is not None:
        raise OptionError(
            "--dsn needs --index NAME: the index's name in that database",
            fix="build it: orchestrator index DOCS --index NAME --dsn DSN",
        )
    given = {k: v for k, v in options.items() if v is not None and k not in ("index", "dsn")}
    return PipelineConfig(name="cli", **given)


def _run(suite: Any, as_json: bool, ray: str | None, workers: int | None, **kw: Any) -> Any:
    """The one configuration's results, run by the suite runner."""
    from orchestrator.evals.runner import run_suite

    plan = ray_plan(ray, workers)
    return run_suite(suite, Path.cwd(), None, progress=not as_json, ray=plan, **kw)


@eval_app.command("retrieval")
@guarded
def retrieval(
    context: typer.Context,
    dataset: Annotated[Path, typer.Option("--dataset", help="BEIR directory.")],
    mode: ModeOpt = None,
    rerank: RerankOpt = None,
    index: Annotated[
        Path | None,
        typer.Option(
            "--index",
            help="Index of the corpus (default: built, cached); with --dsn "
            "its name in that database (build it first).",
        ),
    ] = None,
    metrics: Annotated[
        str, typer.Option("--metrics", help="trec_eval measures, comma separated.")
    ] = "map,ndcg_cut_10,recip_rank,P_10,recall_100",
    k: Annotated[int, typer.Option("--k", min=1, help="Documents retrieved per query.")] = 100,
    split: Annotated[str, typer.Option("--split", help="qrels split.")] = "test",
    run_file: Annotated[
        Path | None, typer.Option("--run-file", help="Write the run here (TREC format).")
    ] = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    dsn: DsnOpt = None,
    ray: RayOpt = None,
    ray_workers: RayWorkersOpt = None,
    strategy: EvalStrategyOpt = None,
    embedding: EmbeddingOpt = None,
    spec_file: SpecOpt = None,
    show_spec: PrintSpecOpt = False,
    out: OutDirOpt = None,
    repeat: RepeatOpt = 1,
) -> None:
    """Retrieve for every judged query of a BEIR dataset; print trec_eval measures.
    --strategy measures a RAG strategy's retrieval; --model then writes its queries.
    --spec FILE measures that RAG spec's retrieval (its k becomes --k); --print-spec prints
    the spec measured (with --index or --spec)."""
    from orchestrator.evals.metrics import parse_measure
    from orchestrator.evals.suite import Suite, check_dataset

    check_ray_workers(ray, ray_workers)
    check_dataset(dataset, "retrieval")
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    for name in names:
        parse_measure(name)
    if show_spec and index is None and spec_file is None:
        raise OptionError("--print-spec prints the spec of an index", fix="add --index DIR")
    config = _configuration(
        context, spec_file, _RETRIEVAL_INPUTS, index=index, dsn=dsn, mode=mode, rerank=rerank,
        model=model, base_url=base_url, strategy=strategy, embedding=embedding,
    )  # fmt: skip
    if show_spec:
        print_spec(config.spec.model_copy(update={"k": k}))
        return
    suite = Suite(
        name="eval-retrieval", dataset=str(dataset), split=split, metrics=names, k=k,
        configurations=[config],
    )  # fmt: skip
    if model is not None:
        suite.check_model_used("")
    results = _run(
        suite, as_json, ray, ray_workers, models={"api_key": api_key}, run_file=run_file,
        repeat=repeat,
    )  # fmt: skip
    write_run(results, out)
    result = results["configurations"][0]
    if as_json:
        print_json(result["mean"])
        return
    used = result["settings"]
    shown = " · ".join([used["mode"]] + [used["strategy"]] * (used["strategy"] != "plain"))
    mean_table(f"{dataset} · {shown} · {len(result['per_query'])} queries", result["mean"])
    if result["run_file"]:
        console.print(f"[dim]run written to {result['run_file']}[/]")


#: Options of the eval commands that are not the pipeline's: they may be given beside --spec.
_RETRIEVAL_INPUTS = ("dataset", "metrics", "k", "split", "run_file", "ray", "ray_workers")
_RAG_INPUTS = ("dataset", "metrics", "judge_model", "judge_max_tokens", "timeout", "ray",
               "ray_workers")  # fmt: skip


@eval_app.command("rag")
@guarded
def rag(
    context: typer.Context,
    dataset: Annotated[Path, typer.Option("--dataset", help="JSONL question set.")],
    index: Annotated[
        Path | None,
        typer.Option(
            "--index",
            help="Index answering samples without response (with --dsn: "
            "its name in that database).",
        ),
    ] = None,
    metrics: Annotated[str, typer.Option("--metrics", help=MetricsHelp)] = (
        "faithfulness,answer_relevancy,context_precision,context_recall"
    ),
    mode: ModeOpt = None,
    rerank: RerankOpt = None,
    strategy: StrategyOpt = None,
    min_similarity: MinSimilarityOpt = None,
    embedding: EmbeddingOpt = None,
    model: ModelOpt = None,
    judge_model: Annotated[
        str | None, typer.Option("--judge-model", help="GGUF judging (default: embedded).")
    ] = None,
    k: KOpt = None,
    max_tokens: MaxTokensOpt = None,
    judge_max_tokens: Annotated[int, typer.Option("--judge-max-tokens", min=16)] = 384,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds per sample.")] = 300,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    dsn: DsnOpt = None,
    as_json: JsonOpt = False,
    ray: RayOpt = None,
    ray_workers: RayWorkersOpt = None,
    spec_file: SpecOpt = None,
    show_spec: PrintSpecOpt = False,
    out: OutDirOpt = None,
    repeat: RepeatOpt = 1,
    no_cache: NoCacheOpt = False,
) -> None:
    """Answer (where needed, as `orchestrator rag` would) and score a question set with Ragas
    on a local judge (with --base-url: --model answers and --judge-model judges on that
    server, default its model). --json samples carry the sources they were answered from.
    The same flags give the same spec as `orchestrator rag` (--print-spec prints it);
    --spec FILE answers with that RAG spec, as `orchestrator rag --spec FILE` does."""
    from orchestrator.evals.rag import check_metrics
    from orchestrator.evals.suite import JudgeConfig, Suite, check_dataset

    check_ray_workers(ray, ray_workers)
    check_dataset(dataset, "rag")
    chosen = check_metrics([m.strip() for m in metrics.split(",") if m.strip()])
    config = _configuration(
        context, spec_file, _RAG_INPUTS, index=index, dsn=dsn, mode=mode, rerank=rerank,
        strategy=strategy, k=k, model=model, base_url=base_url, max_tokens=max_tokens,
        min_similarity=min_similarity, embedding=embedding,
    )  # fmt: skip
    if show_spec:
        if config.spec is None:
            raise OptionError("--print-spec prints the spec of an index", fix="add --index DIR")
        print_spec(config.spec)
        return
    judge = JudgeConfig(
        model=judge_model, base_url=base_url, max_tokens=judge_max_tokens, timeout=timeout
    )
    suite = Suite(name="eval-rag", dataset=str(dataset), metrics=chosen, judge=judge,
                  configurations=[config])  # fmt: skip
    payload = _run(
        suite, as_json, ray, ray_workers, models={"api_key": api_key}, repeat=repeat,
        cache=not no_cache,
    )  # fmt: skip
    write_run(payload, out)
    result = payload["configurations"][0]
    if as_json:
        keys = ("mean", "scored", "judge", "samples", "failed", "spread", "cache")
        print_json({k: result[k] for k in keys if k in result})
        return
    mean_table(f"{dataset} · {len(result['samples'])} samples", result["mean"])
    for failure in result["failed"]:
        err_console.print(
            f"[yellow]not scored[/] {failure['id']} {failure['metric']}: {failure['reason']}"
        )
    if result["judge"] is not None:
        from orchestrator.evals.report import JUDGE_NOTE

        console.print(f"[dim]{JUDGE_NOTE}[/]")


@eval_app.command("suite")
@guarded
def suite(
    path: Annotated[Path, typer.Argument(help="Suite YAML file.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for results and reports.")] = Path(
        "eval-results"
    ),
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="A previous results.json to compare with.")
    ] = None,
    fail_below: Annotated[
        list[str] | None, typer.Option("--fail-below", help="METRIC=VALUE (repeatable).")
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option(
            "--tolerance",
            min=0,
            help="Drop allowed against the baseline (metrics not in --fail-drop).",
        ),
    ] = 0.0,
    judge_model: Annotated[
        str | None, typer.Option("--judge-model", help="GGUF judging (overrides the suite's).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="GGUF answering (RAG), reranking (rerank: llm) and writing a strategy's "
            "queries in every configuration (overrides the suite's; default: "
            "$ORCHESTRATOR_MODEL or embedded).",
        ),
    ] = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    ray: RayOpt = None,
    ray_workers: RayWorkersOpt = None,
    fail_drop: FailDropOpt = None,
    repeat: RepeatOpt = 1,
    no_cache: NoCacheOpt = False,
    seed: SeedOpt = 0,
) -> None:
    """Run a suite (results.json, items.jsonl, report.md, report.html); exit 1 on a failed
    threshold or a regression against the baseline: a significant drop (paired test per
    item) whose 95% interval is beyond --fail-drop's size (or --tolerance). With --base-url,
    --model / --judge-model (and the suite's model names) name models on that server."""
    from orchestrator.evals.compare import parse_sizes
    from orchestrator.evals.gate import baseline_comparison
    from orchestrator.evals.items import read_results
    from orchestrator.evals.report import write_reports
    from orchestrator.evals.runner import gate, model_path, parse_fail_below, run_suite
    from orchestrator.evals.suite import load_suite

    cwd = Path.cwd()
    thresholds = parse_fail_below(fail_below or [])
    sizes = parse_sizes(fail_drop or [])
    previous = read_results(baseline) if baseline else None
    spec, base = load_suite(path)
    if judge_model:
        judge = spec.judge.model_copy(update={"model": model_path(cwd, judge_model, base_url)})
        spec = spec.model_copy(update={"judge": judge})
    if model:
        spec.check_model_used(f"{path}: ")
    models = {"model": model_path(cwd, model, base_url), "base_url": base_url}
    results = run_suite(
        spec, base, out, progress=not as_json, ray=ray_plan(ray, ray_workers),
        models={**models, "api_key": api_key}, repeat=repeat, cache=not no_cache,
    )  # fmt: skip
    if previous is not None:
        results["comparison"] = baseline_comparison(results, previous, seed=seed)
    failures = gate(
        results, thresholds=thresholds, baseline=previous, tolerance=tolerance,
        fail_drop=sizes, comparisons=results.get("comparison"),
    )  # fmt: skip
    paths = write_reports(results, out, failures, baseline=previous)
    if as_json:
        means = {c["name"]: c["mean"] for c in results["configurations"]}
        reports = {k: str(v) for k, v in paths.items()}
        print_json(
            {"suite": results["suite"], "passed": not failures, "failures": failures,
             "mean": means, "reports": reports, "comparison": results.get("comparison")}
        )  # fmt: skip
    else:
        for config in results["configurations"]:
            mean_table(f"{results['suite']} · {config['name']}", config["mean"])
        for failure in failures:
            err_console.print(f"[bold red]FAIL[/] {failure}")
        console.print(f"reports: {paths['markdown']}  {paths['html']}  {paths['results']}")
    if failures:
        raise typer.Exit(1)
