"""Run a suite: every configuration over the dataset, with progress bars; then gate it.

Each configuration is a pipeline spec (:func:`pipeline_spec`, through the library's one
options-to-spec function), built by :func:`orchestrator.agents.pipelines.build`: a RAG suite
scores the pipeline ``orchestrator rag`` and ``serve`` answer with (the same floor, strategy
and model), a retrieval suite the same spec's retriever and strategy (no answering floor:
ranking measures keep every hit). ``orchestrator eval rag`` / ``eval retrieval`` are
one-configuration suites run here.

``run_suite`` returns the ``results.json`` payload; ``gate`` checks it against thresholds and a
previous run (the baseline) and lists what failed, so a CI can exit non-zero on it.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import DataError, OptionError
from orchestrator.evals.cache import EvalCache, cached, counts_since, index_versions, model_digest
from orchestrator.evals.gate import gate, parse_fail_below
from orchestrator.evals.suite import JudgeConfig, PipelineConfig, Suite, check_dataset, resolve
from orchestrator.retrieval.progress import progress_bar

if TYPE_CHECKING:
    from orchestrator.agents.pipelines import RagSpec
    from orchestrator.evals.distributed import RayPlan
    from orchestrator.models import ModelSpec
    from orchestrator.retrieval import IndexSpec

__all__ = ["gate", "parse_fail_below", "pipeline_spec", "run_suite"]


def run_suite(
    suite: Suite,
    base: Path,
    out_dir: Path | None,
    *,
    progress: bool = True,
    ray: RayPlan | None = None,
    models: Mapping[str, Any] | None = None,
    run_file: Path | None = None,
    repeat: int = 1,
    cache: bool = True,
) -> dict[str, Any]:
    """Evaluate every configuration of ``suite``; TREC runs go to ``out_dir/runs`` (or, for a
    one-configuration suite, to ``run_file``). ``models``: :class:`ModelSpec` fields set on
    every configuration's model and the judge's (the CLI's ``--model``, ``--base-url``,
    ``--api-key``). With ``ray``, queries, answers and judgements run on Ray workers.
    ``repeat``: a sampled configuration (temperature > 0) runs that many times, with seeds
    base + i (:mod:`evals.repeat`). ``cache``: answers and verdicts come from, and go to, the
    evaluation cache (:mod:`evals.cache`; RAG suites, not on Ray)."""
    if ray is not None:
        ray.start()
    if repeat < 1:
        raise OptionError(f"--repeat {repeat}: runs at least once", fix="give --repeat 1 or more")
    started = dt.datetime.now(dt.UTC)
    store = EvalCache() if cache and ray is None and suite.kind == "rag" else None
    try:
        with progress_bar(progress) as task:
            run = _SuiteRun(suite, base, task, progress, ray, dict(models or {}), store)
            configs = []
            for config in suite.configurations:
                runs = out_dir / "runs" / f"{config.name}.trec" if out_dir else None
                configs.append(run.evaluate(config, run_file or runs, repeat))
    finally:
        if store is not None:
            store.close()
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


class _SuiteRun:
    """What the configurations of one run share: the dataset, the judge, the Ray plan."""

    def __init__(
        self,
        suite: Suite,
        base: Path,
        task: Any,
        progress: bool,
        ray: RayPlan | None,
        models: dict[str, Any],
        cache: EvalCache | None = None,
    ) -> None:
        self.suite, self.base, self.task, self.progress = suite, base, task, progress
        self.ray, self.models, self.cache = ray, models, cache
        self.dataset = resolve(base, suite.dataset) or suite.dataset
        check_dataset(self.dataset, suite.kind)
        from orchestrator.agents.pipelines.rag import check_model

        for config in suite.configurations:  # a wrong GGUF fails before any index is built
            check_model(self.model(config))
        if suite.kind == "retrieval":
            from orchestrator.retrieval import load_beir

            self.beir = load_beir(self.dataset, suite.split)
            # One cached index serves every configuration: it holds the parts any needs.
            self.modes = tuple(sorted({m for c in suite.configurations for m in index_modes(c)}))
        else:
            from orchestrator.evals.qa import load_qa

            self.samples = load_qa(self.dataset)
            # A served answering model (--base-url) judges there too (--judge-model names it).
            served = {"base_url": models["base_url"]} if models.get("base_url") else {}
            self.judge_config = suite.judge.model_copy(update=served)
            self.judge, self.embeddings = rag_components(
                suite.metrics, self.judge_config, base, models, cache=cache
            )

    def model(self, config: PipelineConfig) -> ModelSpec:
        """The configuration's model (a spec file's is checked when it is built)."""
        from orchestrator.models import ModelSpec

        path = None if config.spec else model_path(self.base, config.model, config.base_url)
        chosen = {k: v for k, v in self.models.items() if v is not None}
        return ModelSpec(model=path, base_url=config.base_url).model_copy(update=chosen)

    def spec(
        self, config: PipelineConfig, sources: Sequence[str], seed: int | None = None, **fields: Any
    ) -> RagSpec:
        """The configuration's spec over its index (a folder index is built from ``sources``
        and cached when the configuration names none); ``seed`` replaces its model's."""
        index = None
        if config.spec is None and config.dsn is None:
            from orchestrator.evals.retrieval import ensure_index

            modes = self.modes if self.suite.kind == "retrieval" else index_modes(config)
            found = resolve(self.base, config.index)
            index = ensure_index(sources, found, modes, progress=self.progress)
        models = self.models if seed is None else {**self.models, "seed": seed}
        return pipeline_spec(config, self.base, index, models=models, **fields)

    def evaluate(self, config: PipelineConfig, run_file: Path | None, repeat: int = 1) -> Any:
        """The configuration's result: with ``repeat`` > 1 and a sampled model, its runs with
        seeds base + i combined (:func:`evals.repeat.combine`)."""
        from orchestrator.evals.items import spec_digest
        from orchestrator.evals.repeat import combine, repeat_seeds

        before = self.cache.snapshot() if self.cache is not None else {}
        first = self._once(config, run_file, None)
        seeds = repeat_seeds(first["settings"], repeat)
        runs = [first, *(self._once(config, None, seed) for seed in seeds[1:])]
        result = combine(runs, seeds) if len(runs) > 1 else first
        result["spec_sha256"] = spec_digest(result["settings"])
        result["model_sha256"] = self._model_digest(result)
        if self.cache is not None:
            result["cache"] = counts_since(before, self.cache)
        return result

    def _once(self, config: PipelineConfig, run_file: Path | None, seed: int | None) -> Any:
        if self.suite.kind == "retrieval":
            return self._retrieval(config, run_file, seed)
        return self._rag(config, seed)

    def _model_digest(self, result: dict[str, Any]) -> str | None:
        """The SHA-256 of the GGUF the configuration used (None where it used none)."""
        from orchestrator.models import ModelSpec

        settings = result.get("settings", {})
        uses = (self.suite.kind == "rag" and "answered" in result) or (
            settings.get("strategy", "plain") != "plain" or settings.get("rerank") == "llm"
        )
        if not uses or not isinstance(settings.get("model"), dict):
            return None
        return model_digest(ModelSpec.from_dict(settings["model"]), self.cache)

    def _retrieval(
        self, config: PipelineConfig, run_file: Path | None, seed: int | None = None
    ) -> dict[str, Any]:
        from orchestrator.evals.retrieval import evaluate_retriever, spec_retriever

        spec = self.spec(config, [self.dataset], seed, k=self.suite.k)
        retrieve = None
        if self.ray is not None:
            from orchestrator.evals.distributed import ray_retrieve

            retrieve = ray_retrieve(self.ray, spec)
        judged = sum(1 for q in self.beir.queries if self.beir.qrels.get(q))
        result = evaluate_retriever(
            spec_retriever(spec),
            self.beir,
            name=config.name,
            metrics=self.suite.metrics,
            k=self.suite.k,
            run_file=run_file,
            progress=self.task(f"{config.name} ({spec.mode})", judged),
            settings=spec_settings(spec),
            retrieve=retrieve,
        )
        return result.to_json()

    def _rag(self, config: PipelineConfig, seed: int | None = None) -> dict[str, Any]:
        from orchestrator.evals.rag import evaluate_rag

        answered, settings = self.samples, config.model_dump(exclude_none=True, exclude={"name"})
        if not isinstance(config.spec, str | None):
            settings = spec_settings(config.spec)
        if any(s.response is None or s.retrieved_contexts is None for s in self.samples):
            documents = [resolve(self.base, d) or d for d in self.suite.documents]
            if not (documents or config.index or config.spec):
                raise DataError(
                    f"{self.dataset}: some samples have no response/retrieved_contexts",
                    fix="name the index that answers them (eval rag --index; in a suite: "
                    "index or documents)",
                )
            spec = self.spec(config, documents, seed)
            settings = spec_settings(spec)
            answered = self._answer(config.name, spec)
        result = evaluate_rag(
            answered,
            list(self.suite.metrics),
            judge=self.judge,
            embeddings=self.embeddings,
            timeout=self.suite.judge.timeout,
            name=config.name,
            progress=self.task(f"{config.name}: judging", len(self.samples)),
            settings=settings,
            score_many=self._scorer(),
        ).to_json()
        if answered is not self.samples:
            result["answered"] = True
        return result

    def _answer(self, name: str, spec: RagSpec) -> list[Any]:
        """The samples answered by the configuration's pipeline: as many at a time as its
        model decodes together (or on Ray workers)."""
        from orchestrator.agents.pipelines import build
        from orchestrator.agents.pipelines.rag import answer_model_spec
        from orchestrator.evals.qa import answer_samples
        from orchestrator.models import chat_model
        from orchestrator.models.together import parallel_calls

        model = answer_model_spec(spec)
        scope = {"indexes": index_versions(spec)} if self.cache is not None else {}
        llm = cached(chat_model(model), self.cache, "answers", model, scope)
        chain = build(spec, llm=llm)  # built here also with Ray: a bad index or model fails now
        answering = self.task(f"{name}: answering", len(self.samples))
        if self.ray is None:
            limit = parallel_calls(llm)
            return answer_samples(self.samples, chain, progress=answering, concurrency=limit)
        from orchestrator.evals.distributed import ray_answer

        return ray_answer(self.ray, self.samples, spec, progress=answering)

    def _scorer(self) -> Any:
        """The Ray ``score_many`` for ``evaluate_rag`` (None: serial)."""
        if self.ray is None:
            return None
        from orchestrator.evals.distributed import ray_scorer

        judge = self.judge_config
        return ray_scorer(self.ray, self.suite.metrics, judge, self.base, models=self.models)


def index_modes(config: PipelineConfig | str) -> tuple[str, ...]:
    """The index parts a configuration's (or a retrieval mode's) search needs (a mode left
    unset is the RagSpec's default)."""
    from orchestrator.agents.pipelines import RagSpec
    from orchestrator.retrieval.index_rules import SIDES

    mode = config if isinstance(config, str) else config.mode
    return SIDES[mode or RagSpec.model_fields["mode"].default]


def model_path(base: Path, model: str | None, base_url: str | None) -> str | None:
    """A local GGUF made absolute against ``base``; a served model's name stays a name."""
    from orchestrator.models import ModelSpec, is_served

    return model if is_served(ModelSpec(base_url=base_url)) else resolve(base, model)


def pipeline_spec(
    config: PipelineConfig,
    base: Path,
    index: str | Path | IndexSpec | None,
    *,
    models: Mapping[str, Any] | None = None,
    **fields: Any,
) -> RagSpec:
    """The :class:`RagSpec` a configuration names, paths made absolute against ``base``;
    ``index`` is its folder index when it names no database; ``models`` set fields of the
    model (as in :func:`run_suite`); ``fields`` set the spec's own (``k`` in retrieval)."""
    from orchestrator.agents.pipelines import RagSpec, load_spec, resolve_paths, spec_from_options

    if isinstance(config.spec, RagSpec):  # an eval command's own spec, built as `rag` builds it
        spec = config.spec.model_copy(update=fields)
    elif config.spec is not None:
        loaded = load_spec(resolve(base, config.spec) or config.spec)
        if not isinstance(loaded, RagSpec):
            raise DataError(
                f"configuration {config.name!r}: {config.spec} is a {loaded.kind} spec",
                fix="name a RAG spec (kind: rag), e.g. from `orchestrator rag ... --print-spec`",
            )
        spec = loaded.model_copy(update=fields)
    else:
        options = {
            "index": config.index if config.dsn else index,
            "dsn": config.dsn,
            "model": config.model,
            "base_url": config.base_url,
            "max_tokens": config.max_tokens,
            "mode": config.mode,
            "k": config.k,
            "strategy": config.strategy,
            "strategy_options": config.strategy_options,
            "rerank": config.rerank,
            "min_similarity": config.min_similarity,
            "embedding": config.embedding,
            "search_options": config.options,
            "prompt": config.prompt,
            "temperature": config.temperature,
            "seed": config.seed,
        }
        # the suite's relative paths are the suite file's, as a spec file's are its own
        flags = spec_from_options("rag", **{**options, **fields})
        spec = resolve_paths(flags, base)  # type: ignore[assignment]
    chosen = {k: v for k, v in (models or {}).items() if v is not None}
    if chosen:
        spec = spec.model_copy(update={"model": spec.model.model_copy(update=chosen)})
    return spec


def spec_settings(spec: RagSpec) -> dict[str, Any]:
    """The spec as ``results.json`` records it (a database's password left out; a DSN
    written as ``${VAR}`` stays so)."""
    from orchestrator.agents.pipelines import to_dict
    from orchestrator.retrieval.postgres.connection import redact_dsn

    data = to_dict(spec)
    for index in data["indexes"]:
        if index.get("dsn") and "${" not in index["dsn"]:
            index["dsn"] = redact_dsn(index["dsn"])
    return data


def rag_components(
    metrics: Sequence[str],
    judge: JudgeConfig,
    base: Path | None = None,
    models: Mapping[str, Any] | None = None,
    *,
    cache: EvalCache | None = None,
) -> tuple[Any, Any]:
    """The judge and embeddings the chosen metrics need (None where not needed). The judge
    is the model ``judge`` names (a relative GGUF path from ``base``, default the working
    directory; with a ``base_url`` a served model), greedy; ``models`` may give its
    ``api_key`` and, as for the answering model, a local model's ``n_parallel``; with
    ``cache`` its verdicts are cached (:mod:`evals.cache`)."""
    from orchestrator.evals.rag import RAG_METRICS

    needs_llm = any(RAG_METRICS[m].uses_llm for m in metrics)
    needs_emb = any(RAG_METRICS[m].uses_embeddings for m in metrics)
    llm_judge = None
    if needs_llm:
        from orchestrator.evals.judge import LlamaJudge
        from orchestrator.models import ModelSpec, chat_model

        model = ModelSpec(
            model=model_path(base or Path.cwd(), judge.model, judge.base_url),
            base_url=judge.base_url,
            api_key=(models or {}).get("api_key"),
            n_parallel=(models or {}).get("n_parallel"),
            temperature=0.0,
            seed=0,
        )
        llm_judge = LlamaJudge(
            llm=cached(chat_model(model), cache, "verdicts", model),
            max_tokens=judge.max_tokens,
            max_items=judge.max_items,
            max_chars=judge.max_chars,
        )
    embeddings = None
    if needs_emb:
        from orchestrator.evals.judge import local_embeddings

        embeddings = local_embeddings()
    return llm_judge, embeddings
