"""Run a suite: every configuration over the dataset, with progress bars; then gate it.

``run_suite`` returns the ``results.json`` payload; ``gate`` checks it against thresholds and a
previous run (the baseline) and lists what failed, so a CI can exit non-zero on it.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import DataError, OptionError
from orchestrator.evals.suite import JudgeConfig, PipelineConfig, Suite, resolve
from orchestrator.retrieval.progress import progress_bar

if TYPE_CHECKING:
    from orchestrator.evals.distributed import RayPlan
    from orchestrator.remote import Endpoint

#: Measures where more is not better; never gated.
_UNGATED_PREFIX = "num_"


def rerank_spec(base: Path, value: str | None, model: str | None = None) -> Any:
    """What ``open_retriever(rerank=...)`` gets: ``"llm"`` with a ``model`` is an LLM reranker
    on that GGUF (else the default model); a CrossEncoder path is made absolute."""
    if value == "llm" and model is not None:
        from orchestrator.retrieval.rerank import LLMReranker

        reranker = LLMReranker(model_path=model)
        reranker.llm  # noqa: B018  (checks the GGUF now, not at the first query)
        return reranker
    return value if value in (None, "none", "llm") else resolve(base, value)


def run_suite(
    suite: Suite,
    base: Path,
    out_dir: Path,
    *,
    progress: bool = True,
    served: Endpoint | None = None,
    ray: RayPlan | None = None,
) -> dict[str, Any]:
    """Evaluate every configuration of ``suite``; TREC runs go to ``out_dir/runs``. With
    ``served``, a RAG suite's models (answering and judging) are names on that server. With
    ``ray``, queries, answers and judgements run on Ray workers (``evals.distributed``)."""
    if ray is not None:
        ray.start()
    started = dt.datetime.now(dt.UTC)
    with progress_bar(progress) as task:
        if suite.kind == "retrieval":
            configs = _run_retrieval(suite, base, out_dir, task, progress, ray)
        else:
            configs = _run_rag(suite, base, task, progress, served, ray)
    return {
        "suite": suite.name,
        "kind": suite.kind,
        "dataset": resolve(base, suite.dataset),
        "metrics": list(suite.metrics),
        "thresholds": dict(suite.thresholds),
        "created": started.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "configurations": configs,
    }


def _run_retrieval(
    suite: Suite, base: Path, out_dir: Path, task: Any, progress: bool, ray: RayPlan | None = None
) -> list[dict[str, Any]]:
    from orchestrator.evals.retrieval import ensure_index, evaluate_retriever
    from orchestrator.retrieval import load_beir, open_retriever

    dataset_dir = resolve(base, suite.dataset)
    assert dataset_dir is not None
    dataset = load_beir(dataset_dir, suite.split)
    # One cached index serves every configuration: it holds the parts any of them needs.
    modes = tuple(sorted({m for c in suite.configurations for m in index_modes(c.mode)}))
    out = []
    for config in suite.configurations:
        index = ensure_index([dataset_dir], resolve(base, config.index), modes, progress=progress)
        retriever = open_retriever(
            index,
            mode=config.mode,
            rerank=rerank_spec(base, config.rerank, resolve(base, config.model)),
            k=suite.k,
            **config.options,
        )
        judged = sum(1 for q in dataset.queries if dataset.qrels.get(q))
        result = evaluate_retriever(
            retriever,
            dataset,
            name=config.name,
            metrics=suite.metrics,
            k=suite.k,
            run_file=out_dir / "runs" / f"{config.name}.trec",
            progress=task(f"{config.name} ({config.mode})", judged),
            settings=_settings(config, index=str(index)),
            retrieve=_ray_retrieve(ray, suite, base, config, index),
        )
        out.append(result.to_json())
    return out


def _run_rag(
    suite: Suite,
    base: Path,
    task: Any,
    progress: bool,
    served: Endpoint | None = None,
    ray: RayPlan | None = None,
) -> list[dict[str, Any]]:
    from orchestrator.evals.qa import answer_samples, load_qa
    from orchestrator.evals.rag import evaluate_rag

    dataset = resolve(base, suite.dataset)
    assert dataset is not None
    samples = load_qa(dataset)
    chosen = list(suite.metrics)
    judge, embeddings = rag_components(chosen, suite.judge, base, served)
    out = []
    for config in suite.configurations:
        answered = samples
        settings = _settings(config)
        if any(s.response is None or s.retrieved_contexts is None for s in samples):
            chain, index = rag_pipeline(
                config, base, suite.documents, progress=progress, served=served
            )
            settings["index"] = str(index)
            answering = task(f"{config.name}: answering", len(samples))
            if ray is not None:
                from orchestrator.evals.distributed import ray_answer

                answered = ray_answer(
                    ray, samples, config, index, base, served=served, progress=answering
                )
            else:
                answered = answer_samples(samples, chain, progress=answering)
        result = evaluate_rag(
            answered,
            chosen,
            judge=judge,
            embeddings=embeddings,
            timeout=suite.judge.timeout,
            name=config.name,
            progress=task(f"{config.name}: judging", len(samples)),
            settings=settings,
            score_many=_ray_scorer(ray, chosen, suite.judge, base, served),
        )
        out.append(result.to_json())
    return out


def _ray_retrieve(
    ray: RayPlan | None, suite: Suite, base: Path, config: PipelineConfig, index: Path
) -> Any:
    """The Ray stand-in for ``retrieve_run`` a configuration needs (None: serial)."""
    if ray is None:
        return None
    from orchestrator.evals.distributed import RetrieverRecipe, ray_retrieve

    model = resolve(base, config.model)
    recipe = RetrieverRecipe(
        index=str(Path(index).resolve()),
        mode=config.mode,
        k=suite.k,
        rerank=config.rerank,
        model=str(Path(model).resolve()) if model else None,
        base=str(base.resolve()),
        options=dict(config.options),
    )
    return ray_retrieve(ray, recipe)


def _ray_scorer(
    ray: RayPlan | None, metrics: Sequence[str], judge: JudgeConfig, base: Path, served: Any
) -> Any:
    """The Ray ``score_many`` for ``evaluate_rag`` (None: serial)."""
    if ray is None:
        return None
    from orchestrator.evals.distributed import ray_scorer

    return ray_scorer(ray, metrics, judge, base, served=served, timeout=judge.timeout)


def index_modes(mode: str) -> tuple[str, ...]:
    """The index parts a retrieval mode needs (a hybrid index serves every mode)."""
    return {"dense": ("dense",), "bm25": ("bm25",)}.get(mode, ("dense", "bm25"))


def _settings(config: PipelineConfig, **extra: Any) -> dict[str, Any]:
    data = config.model_dump(exclude_none=True)
    data.pop("name", None)
    return {**data, **extra}


def _judge(cfg: JudgeConfig, base: Path, served: Endpoint | None = None) -> Any:
    from orchestrator.evals.judge import LlamaJudge

    if served is not None:  # the judge is the named model on the server (default: its only one)
        return LlamaJudge(
            llm=served.chat_model(cfg.model, temperature=0.0, seed=0),
            max_tokens=cfg.max_tokens,
            max_items=cfg.max_items,
            max_chars=cfg.max_chars,
        )
    return LlamaJudge(
        model_path=resolve(base, cfg.model),
        max_tokens=cfg.max_tokens,
        max_items=cfg.max_items,
        max_chars=cfg.max_chars,
    )


def _embeddings() -> Any:
    from orchestrator.evals.judge import local_embeddings

    return local_embeddings()


def rag_components(
    metrics: Sequence[str],
    judge: JudgeConfig,
    base: Path | None = None,
    served: Endpoint | None = None,
) -> tuple[Any, Any]:
    """The judge and embeddings the chosen metrics need (None where not needed); a relative
    judge model path is taken from ``base`` (default: the working directory); with
    ``served``, the judge's model is a name on that server."""
    from orchestrator.evals.rag import RAG_METRICS

    needs_llm = any(RAG_METRICS[m].uses_llm for m in metrics)
    needs_emb = any(RAG_METRICS[m].uses_embeddings for m in metrics)
    return (
        _judge(judge, base or Path.cwd(), served) if needs_llm else None,
        _embeddings() if needs_emb else None,
    )


def rag_pipeline(
    config: PipelineConfig,
    base: Path,
    documents: Sequence[str] = (),
    *,
    progress: bool = False,
    served: Endpoint | None = None,
) -> tuple[Any, Path]:
    """The RAG chain a configuration names: index (given or built from ``documents``) + model
    (a GGUF, or with ``served`` the model of that name on the server)."""
    from orchestrator.chains.rag import rag_chain
    from orchestrator.evals.retrieval import ensure_index
    from orchestrator.llama.chat import ChatLlamaCpp
    from orchestrator.retrieval import open_retriever

    if served is not None and config.rerank == "llm":
        raise OptionError(
            f"configuration {config.name!r}: rerank: llm scores with a local GGUF in process; "
            f"it cannot use the model served at {served.base_url}",
            fix="use rerank: none or a CrossEncoder directory, or leave out --base-url",
        )
    documents = [resolve(base, d) or d for d in documents]
    index = ensure_index(
        documents, resolve(base, config.index), index_modes(config.mode), progress=progress
    )
    retriever = open_retriever(
        index,
        mode=config.mode,
        rerank=rerank_spec(base, config.rerank, None if served else resolve(base, config.model)),
        k=config.k,
        **config.options,
    )
    llm: Any
    if served is not None:
        llm = served.chat_model(config.model, temperature=0.0, seed=0, max_tokens=config.max_tokens)
    else:
        llm = ChatLlamaCpp(
            model_path=resolve(base, config.model),
            temperature=0.0,
            seed=0,
            max_tokens=config.max_tokens,
        )
    return rag_chain(llm, retriever, prompt=prompt_template(config.prompt), k=config.k), index


def prompt_template(spec: str | None) -> Any:
    """``None``: the library's RAG prompt; a library name; or a template with the variables."""
    if spec is None:
        return None
    from orchestrator.prompts import PROMPTS, get_prompt

    if spec in PROMPTS:
        return get_prompt(spec)
    if "{context}" in spec and "{question}" in spec:
        return spec
    raise DataError(
        f"prompt {spec!r} is neither a library prompt nor a template",
        fix=f"use one of {sorted(PROMPTS)} or a template with {{context}} and {{question}}",
    )


def gate(
    results: Mapping[str, Any],
    *,
    thresholds: Mapping[str, float] | None = None,
    baseline: Mapping[str, Any] | None = None,
    tolerance: float = 0.0,
) -> list[str]:
    """What fails: a mean below its threshold, or below the baseline's by more than
    ``tolerance``. A metric no sample could be scored on fails its threshold too."""
    failures: list[str] = []
    limits = {**(results.get("thresholds") or {}), **(thresholds or {})}
    previous = {c["name"]: c["mean"] for c in (baseline or {}).get("configurations", [])}
    for config in results["configurations"]:
        name, mean = config["name"], config["mean"]
        for metric, limit in limits.items():
            value = mean.get(metric)
            if metric not in mean:
                failures.append(f"{name}: threshold on {metric!r}, which was not measured")
            elif value is None or value < limit:
                failures.append(f"{name}: {metric} = {_fmt(value)} is below {limit:g}")
        for metric, old in previous.get(name, {}).items():
            new = mean.get(metric)
            if old is None or metric.startswith(_UNGATED_PREFIX) or metric not in mean:
                continue
            if new is None or new < old - tolerance:
                failures.append(
                    f"{name}: {metric} regressed from {_fmt(old)} to {_fmt(new)} (baseline)"
                )
    return failures


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def parse_fail_below(items: list[str]) -> dict[str, float]:
    """``["map=0.3", "P_10=0.2"]`` -> ``{"map": 0.3, "P_10": 0.2}``."""
    from orchestrator.errors import OptionError

    out: dict[str, float] = {}
    for item in items:
        metric, sep, value = item.partition("=")
        try:
            out[metric.strip()] = float(value)
        except ValueError:
            sep = ""
        if sep and not math.isfinite(out.get(metric.strip(), 0.0)):
            raise OptionError(
                f"--fail-below {item!r}: the threshold must be a finite number",
                fix="e.g. map=0.25",
            )
        if not sep or not metric.strip():
            raise OptionError(f"--fail-below {item!r} is not METRIC=VALUE", fix="e.g. map=0.25")
    return out
