"""``eval``: measure retrieval (trec_eval measures) and RAG answers (Ragas), run suites.

    orchestrator eval retrieval --dataset BEIR_DIR [--mode hybrid] [--rerank llm [-m M.gguf]]
    orchestrator eval rag --dataset QA.jsonl --index DIR [--metrics ...] [-m M.gguf] [--json]
    orchestrator eval SUITE.yaml [--out DIR] [--baseline PREVIOUS.json] [--fail-below map=0.3]
                                 [-m M.gguf]

``--model`` / ``-m`` names the GGUF as in every other command (default: $ORCHESTRATOR_MODEL or
the embedded model): the model that reranks with ``--rerank llm``, and in RAG the one that
answers.

``eval`` is a command group whose unknown first argument, when it is a YAML file, runs the
``suite`` subcommand on it: ``eval SUITE.yaml`` is ``eval suite SUITE.yaml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from orchestrator.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    DsnOpt,
    JsonOpt,
    ModelOpt,
    console,
    err_console,
    guarded,
    index_location,
    print_json,
)
from orchestrator.cli.rag_strategies import EvalStrategyOpt
from orchestrator.cli.ray_options import RayOpt, RayWorkersOpt, check_ray_workers
from orchestrator.errors import DataError, OptionError

ModeOpt = Annotated[str, typer.Option("--mode", help="dense | bm25 | hybrid.")]
RerankOpt = Annotated[
    str, typer.Option("--rerank", help="none | llm | a local CrossEncoder directory.")
]
MODES = ("dense", "bm25", "hybrid")


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


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        from orchestrator.errors import unknown_option

        raise unknown_option(mode, MODES, where="--mode")


def _table(title: str, mean: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("mean", justify="right")
    for name, value in mean.items():
        table.add_row(name, "n/a" if value is None else f"{value:.4f}")
    console.print(table)


@eval_app.command("retrieval")
@guarded
def retrieval(
    dataset: Annotated[Path, typer.Option("--dataset", help="BEIR directory.")],
    mode: ModeOpt = "hybrid",
    rerank: RerankOpt = "none",
    index: Annotated[
        Path | None, typer.Option("--index", help="Index of the corpus (default: built, cached).")
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
    as_json: JsonOpt = False,
    dsn: DsnOpt = None,
    ray: RayOpt = None,
    ray_workers: RayWorkersOpt = None,
    strategy: EvalStrategyOpt = "plain",
) -> None:
    """Retrieve for every judged query of a BEIR dataset; print trec_eval measures. With
    --dsn, --index names the corpus's index in that PostgreSQL database (build it first).
    --strategy measures a RAG strategy's retrieval; --model then writes its queries."""
    from orchestrator.chains.strategies import strategy_name
    from orchestrator.cli.rag_strategies import query_strategy_retriever
    from orchestrator.evals.metrics import parse_measure
    from orchestrator.evals.retrieval import ensure_index, evaluate_retriever
    from orchestrator.evals.runner import index_modes, rerank_spec
    from orchestrator.retrieval import load_beir, open_retriever
    from orchestrator.retrieval.progress import progress_bar

    _check_mode(mode)
    check_ray_workers(ray, ray_workers)
    chosen = strategy_name(strategy)
    if model is not None and rerank != "llm" and chosen == "plain":
        raise OptionError(
            "--model chooses the GGUF of --rerank llm or --strategy; without them no model is used",
            fix="add --rerank llm or --strategy, or leave out --model",
        )
    if chosen != "plain" and ray is not None:
        raise OptionError(
            "--strategy runs the model in this process; --ray retrieves on Ray workers",
            fix="leave out --ray to measure a strategy",
        )
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    for name in names:
        parse_measure(name)
    data = load_beir(dataset, split)
    reranker = rerank_spec(Path.cwd(), rerank, model)
    if dsn is not None and index is None:
        raise OptionError(
            "--dsn needs --index NAME: the corpus's index in that database",
            fix=f"build it: orchestrator index {dataset} --index NAME --dsn DSN",
        )
    if dsn is None:
        target = str(ensure_index([dataset], index, index_modes(mode), progress=not as_json))
    else:
        target, dsn = index_location(index, dsn)
    retriever = open_retriever(target, mode=mode, rerank=reranker, k=k, dsn=dsn)
    allowed = ("plain", "rewrite", "multi_query", "hyde", "multi_hop")
    retriever = query_strategy_retriever(retriever, strategy, model, allowed)
    with progress_bar(not as_json) as task:
        result = evaluate_retriever(
            retriever,
            data,
            name=mode if chosen == "plain" else f"{mode}+{chosen}",
            metrics=names,
            k=k,
            run_file=run_file,
            progress=task(f"retrieving ({mode})", len(data.queries)),
            retrieve=_ray_retrieve(ray, ray_workers, target, mode, k, rerank, model, dsn),
        )
    if as_json:
        print_json(result.mean)
        return
    shown = mode if chosen == "plain" else f"{mode} · {chosen}"
    _table(f"{dataset} · {shown} · {len(result.per_query)} queries", result.mean)
    if result.run_file:
        console.print(f"[dim]run written to {result.run_file}[/]")


@eval_app.command("rag")
@guarded
def rag(
    dataset: Annotated[Path, typer.Option("--dataset", help="JSONL question set.")],
    index: Annotated[
        Path | None, typer.Option("--index", help="Index answering samples without response.")
    ] = None,
    metrics: Annotated[
        str,
        typer.Option(
            "--metrics",
            help="Comma separated: Ragas metrics, the book's citation_recall, "
            "citation_precision, fluency, perceived_utility, and their non-LLM baselines "
            "(citation_recall_lexical, citation_precision_lexical, fluency_perplexity); an "
            "unknown name lists them all.",
        ),
    ] = "faithfulness,answer_relevancy,context_precision,context_recall",
    mode: ModeOpt = "hybrid",
    rerank: RerankOpt = "none",
    model: ModelOpt = None,
    judge_model: Annotated[
        str | None, typer.Option("--judge-model", help="GGUF judging (default: embedded).")
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Chunks given to the model.")] = 4,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 160,
    judge_max_tokens: Annotated[int, typer.Option("--judge-max-tokens", min=16)] = 384,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds per sample.")] = 300,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    ray: RayOpt = None,
    ray_workers: RayWorkersOpt = None,
) -> None:
    """Answer (where needed) and score a question set with Ragas on a local judge (with
    --base-url: --model answers and --judge-model judges on that server, default its model)."""
    from orchestrator.evals.qa import answer_samples, load_qa
    from orchestrator.evals.rag import check_metrics, evaluate_rag
    from orchestrator.evals.runner import rag_components, rag_pipeline
    from orchestrator.evals.suite import JudgeConfig, PipelineConfig
    from orchestrator.remote import Endpoint
    from orchestrator.retrieval.progress import progress_bar

    _check_mode(mode)
    served = Endpoint.resolve(base_url, api_key)
    chosen = check_metrics([m.strip() for m in metrics.split(",") if m.strip()])
    samples = load_qa(dataset)
    unanswered = any(s.response is None or s.retrieved_contexts is None for s in samples)
    if unanswered and index is None:
        raise OptionError(
            f"{dataset}: some samples have no response/retrieved_contexts",
            fix="give --index DIR so the RAG pipeline answers them",
        )
    judge_config = JudgeConfig(model=judge_model, max_tokens=judge_max_tokens)
    plan = _ray_plan(ray, ray_workers)
    judge, embeddings = rag_components(chosen, judge_config, served=served)
    with progress_bar(not as_json) as task:
        if unanswered:
            config = PipelineConfig(
                name="cli",
                index=str(index),
                mode=mode,  # type: ignore[arg-type]
                rerank=rerank,
                k=k,
                model=model,
                max_tokens=max_tokens,
            )
            chain, built = rag_pipeline(config, Path.cwd(), served=served)
            answering = task("answering", len(samples))
            if plan is not None:
                from orchestrator.evals.distributed import ray_answer

                samples = ray_answer(
                    plan, samples, config, built, Path.cwd(), served=served, progress=answering
                )
            else:
                samples = answer_samples(samples, chain, progress=answering)
        result = evaluate_rag(
            samples,
            chosen,
            judge=judge,
            embeddings=embeddings,
            timeout=timeout,
            progress=task("judging", len(samples)),
            score_many=_ray_scorer(plan, chosen, judge_config, served, timeout),
        )
    payload = result.to_json()
    if as_json:
        print_json({k: payload[k] for k in ("mean", "scored", "judge", "samples", "failed")})
        return
    _table(f"{dataset} · {len(samples)} samples", payload["mean"])
    for failure in payload["failed"]:
        err_console.print(
            f"[yellow]not scored[/] {failure['id']} {failure['metric']}: {failure['reason']}"
        )
    if judge is not None:
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
        float, typer.Option("--tolerance", min=0, help="Allowed drop below the baseline.")
    ] = 0.0,
    judge_model: Annotated[
        str | None, typer.Option("--judge-model", help="GGUF judging (overrides the suite's).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="GGUF answering (RAG) and reranking (rerank: llm) in every configuration "
            "(overrides the suite's; default: $ORCHESTRATOR_MODEL or embedded).",
        ),
    ] = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    ray: RayOpt = None,
    ray_workers: RayWorkersOpt = None,
) -> None:
    """Run a suite (results.json, report.md, report.html); exit 1 on a failed threshold or
    a regression against the baseline. With --base-url, a RAG suite's --model / --judge-model
    (and the suite's model names) are names of models on that server."""
    from orchestrator.evals.report import write_reports
    from orchestrator.evals.runner import gate, parse_fail_below, run_suite
    from orchestrator.evals.suite import load_suite
    from orchestrator.remote import Endpoint

    thresholds = parse_fail_below(fail_below or [])
    previous = _read_baseline(baseline) if baseline else None
    spec, base = load_suite(path)
    served = Endpoint.resolve(base_url, api_key) if spec.kind == "rag" else None
    if judge_model:
        chosen_judge = judge_model if served else str(Path(judge_model).resolve())
        judge = spec.judge.model_copy(update={"model": chosen_judge})
        spec = spec.model_copy(update={"judge": judge})
    if model:
        spec = _with_model(spec, path, model, served=served is not None)
    results = run_suite(
        spec, base, out, progress=not as_json, served=served, ray=_ray_plan(ray, ray_workers)
    )
    failures = gate(results, thresholds=thresholds, baseline=previous, tolerance=tolerance)
    paths = write_reports(results, out, failures)
    if as_json:
        print_json(
            {
                "suite": results["suite"],
                "passed": not failures,
                "failures": failures,
                "mean": {c["name"]: c["mean"] for c in results["configurations"]},
                "reports": {k: str(v) for k, v in paths.items()},
            }
        )
    else:
        for config in results["configurations"]:
            _table(f"{results['suite']} · {config['name']}", config["mean"])
        for failure in failures:
            err_console.print(f"[bold red]FAIL[/] {failure}")
        console.print(f"reports: {paths['markdown']}  {paths['html']}  {paths['results']}")
    if failures:
        raise typer.Exit(1)


def _ray_plan(ray: str | None, workers: int | None) -> Any:
    """``--ray``/``--ray-workers`` as an ``evals.distributed.RayPlan``, connected now (a
    wrong address fails before any model loads); None without ``--ray``."""
    check_ray_workers(ray, workers)
    if ray is None:
        return None
    from orchestrator.evals.distributed import RayPlan

    plan = RayPlan(ray, workers)
    plan.start()
    return plan


def _ray_retrieve(
    ray: str | None,
    workers: int | None,
    target: str,
    mode: str,
    k: int,
    rerank: str,
    model: str | None,
    dsn: str | None,
) -> Any:
    """``eval retrieval --ray``: the Ray stand-in for ``retrieve_run`` (None without it)."""
    plan = _ray_plan(ray, workers)
    if plan is None:
        return None
    from orchestrator.evals.distributed import RetrieverRecipe, ray_retrieve

    local = dsn is None
    recipe = RetrieverRecipe(
        index=str(Path(target).resolve()) if local else target,
        mode=mode,
        k=k,
        rerank=rerank,
        model=str(Path(model).expanduser().resolve()) if model else None,
        base=str(Path.cwd()),
        dsn=dsn,
    )
    return ray_retrieve(plan, recipe)


def _ray_scorer(plan: Any, metrics: list[str], judge: Any, served: Any, timeout: float) -> Any:
    """``eval rag --ray``: judging on Ray (None without it)."""
    if plan is None:
        return None
    from orchestrator.evals.distributed import ray_scorer

    return ray_scorer(plan, metrics, judge, Path.cwd(), served=served, timeout=timeout)


def _with_model(spec: Any, path: Path, model: str, *, served: bool = False) -> Any:
    """``spec`` with every configuration's ``model`` set to ``model`` (an absolute path); an
    error when no configuration would use a model (a retrieval suite without rerank: llm)."""
    if spec.kind == "retrieval" and not any(c.rerank == "llm" for c in spec.configurations):
        raise OptionError(
            f"{path}: --model chooses the GGUF of rerank: llm, and no configuration reranks "
            "with the LLM",
            fix="leave out --model, or add rerank: llm to a configuration",
        )
    chosen = model if served else str(Path(model).expanduser().resolve())
    configs = [c.model_copy(update={"model": chosen}) for c in spec.configurations]
    return spec.model_copy(update={"configurations": configs})


def _read_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(
            f"{path}: not a readable results.json ({exc})",
            fix="pass the results.json of a previous suite run",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("configurations"), list):
        raise DataError(f"{path}: has no 'configurations'", fix="pass a suite's results.json")
    return data
