"""Score RAG answers with Ragas: LLM-judged metrics on a local judge, and non-LLM baselines.

Metrics are looked up by name in :data:`RAG_METRICS` (unknown names are errors built from
it). Each sample is scored under its own time budget, its metrics together: as many of its
judge prompts at a time as the judge takes (a local judge's batched engine decodes them in the
same steps), so a sample never takes longer than it would metric by metric, and its budget
covers its own work only. A score that
cannot be computed (missing field, judge timeout, undefined value) is recorded in ``failed``
with its reason and left out of that metric's mean: never a silent NaN in an average.

The judges' scores are only as good as the judge: the embedded 135M model wires the path, but
its verdicts mean little. Use a larger GGUF as judge (``judge_model=``, ``--judge-model``).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.aio import blocking
from orchestrator.errors import DataError, OptionError, OrchestratorError, unknown_option
from orchestrator.evals.qa import QASample, to_evaluation_dataset
from orchestrator.models.together import gather_together

#: Scores every sample elsewhere (Ray): ``(samples, progress) -> [(scores, reasons)]``.
Scored = tuple[dict[str, float], dict[str, str]]
"""One sample's scores, and the reasons for the metrics not scored."""
ScoreMany = Callable[[Sequence[QASample], Callable[[int], None] | None], list[Scored]]


@dataclass(frozen=True)
class RagMetric:
    """A named Ragas metric: the sample fields it needs and how to build and call it."""

    needs: tuple[str, ...]
    build: Callable[[Any, Any], Any]
    uses_llm: bool = False
    uses_embeddings: bool = False
    legacy: bool = False


def _collections() -> Any:
    from orchestrator.evals.judge import import_ragas

    import_ragas()
    import ragas.metrics.collections as collections

    return collections


def _legacy(name: str) -> Any:
    from orchestrator.evals.judge import import_ragas

    import_ragas()
    # (``ragas.metrics._context_precision`` as an attribute is a metric instance, not the module)
    module = importlib.import_module(f"ragas.metrics._context_{name}")
    cls = {"precision": "NonLLMContextPrecisionWithReference", "recall": "NonLLMContextRecall"}
    return getattr(module, cls[name])()


def _citation(kind: str, judge: Any) -> Any:
    from orchestrator.evals.citations import build_citation_metric

    return build_citation_metric(f"citation_{kind}", judge)


def _quality(name: str, judge: Any) -> Any:
    from orchestrator.evals.quality import build_quality_metric

    return build_quality_metric(name, judge)


_Q, _A, _R = "user_input", "response", "reference"
_C, _RC = "retrieved_contexts", "reference_contexts"

#: Metric name -> definition. LLM metrics need a judge; non-LLM ones are the baseline.
RAG_METRICS: dict[str, RagMetric] = {
    "faithfulness": RagMetric(
        (_Q, _A, _C), lambda j, e: _collections().Faithfulness(llm=j), uses_llm=True
    ),
    # strictness=1: a greedy local judge would generate the same question every time.
    "answer_relevancy": RagMetric(
        (_Q, _A),
        lambda j, e: _collections().AnswerRelevancy(llm=j, embeddings=e, strictness=1),
        uses_llm=True,
        uses_embeddings=True,
    ),
    "context_precision": RagMetric(
        (_Q, _R, _C), lambda j, e: _collections().ContextPrecision(llm=j), uses_llm=True
    ),
    "context_recall": RagMetric(
        (_Q, _C, _R), lambda j, e: _collections().ContextRecall(llm=j), uses_llm=True
    ),
    "non_llm_context_precision": RagMetric(
        (_C, _RC), lambda j, e: _legacy("precision"), legacy=True
    ),
    "non_llm_context_recall": RagMetric((_C, _RC), lambda j, e: _legacy("recall"), legacy=True),
    "string_similarity": RagMetric((_R, _A), lambda j, e: _collections().NonLLMStringSimilarity()),
    "bleu": RagMetric((_R, _A), lambda j, e: _collections().BleuScore()),
    "rouge": RagMetric((_R, _A), lambda j, e: _collections().RougeScore()),
    "chrf": RagMetric((_R, _A), lambda j, e: _collections().CHRFScore()),
    "semantic_similarity": RagMetric(
        (_R, _A), lambda j, e: _collections().SemanticSimilarity(embeddings=e), uses_embeddings=True
    ),
    # The book's answer metrics (ALCE citations; Liu et al. fluency and perceived utility):
    # evals/citations.py and evals/quality.py, each with its non-LLM baseline where one exists.
    "citation_recall": RagMetric((_A, _C), lambda j, e: _citation("recall", j), uses_llm=True),
    "citation_precision": RagMetric(
        (_A, _C), lambda j, e: _citation("precision", j), uses_llm=True
    ),
    "citation_recall_lexical": RagMetric((_A, _C), lambda j, e: _citation("recall_lexical", j)),
    "citation_precision_lexical": RagMetric(
        (_A, _C), lambda j, e: _citation("precision_lexical", j)
    ),
    "fluency": RagMetric((_A,), lambda j, e: _quality("fluency", j), uses_llm=True),
    "fluency_perplexity": RagMetric((_A,), lambda j, e: _quality("fluency_perplexity", j)),
    "perceived_utility": RagMetric(
        (_Q, _A), lambda j, e: _quality("perceived_utility", j), uses_llm=True
    ),
}
LLM_METRICS = tuple(n for n, m in RAG_METRICS.items() if m.uses_llm)
NON_LLM_METRICS = tuple(n for n, m in RAG_METRICS.items() if not m.uses_llm)


def check_metrics(names: Sequence[str]) -> list[str]:
    """``names`` validated against :data:`RAG_METRICS` (duplicates dropped, order kept)."""
    if not names:
        raise OptionError("no RAG metric given", fix=f"choose from {', '.join(RAG_METRICS)}")
    for name in names:
        if name not in RAG_METRICS:
            error = unknown_option(name, RAG_METRICS, where="RAG metrics")
            if (error.fix or "").startswith("did you mean"):  # the whole table, not only the guess
                error = OptionError(
                    error.message, fix=f"{error.fix} known: {', '.join(RAG_METRICS)}"
                )
            raise error
    return list(dict.fromkeys(names))


@dataclass
class RagEvaluation:
    """Per-sample scores, means over the samples that could be scored, and the failures."""

    name: str
    metrics: list[str]
    samples: list[dict[str, Any]]
    failed: list[dict[str, str]]
    seconds: float
    judge: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    #: The samples as a Ragas ``EvaluationDataset`` (e.g. for ``ragas.evaluate``); not saved.
    dataset: Any = None

    @property
    def mean(self) -> dict[str, float | None]:
        from orchestrator.evals.items import score_means

        return score_means(self.samples, self.metrics)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "rag",
            "settings": self.settings,
            "judge": self.judge,
            "mean": self.mean,
            "scored": {m: sum(m in s["scores"] for s in self.samples) for m in self.metrics},
            "samples": self.samples,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
        }


async def _score_one(metric: Any, spec: RagMetric, sample: QASample) -> float:
    fields = sample.to_ragas()
    if spec.legacy:
        from ragas.dataset_schema import SingleTurnSample

        value = await metric.single_turn_ascore(SingleTurnSample(**fields))
    else:
        result = await metric.ascore(**{name: fields[name] for name in spec.needs})
        value = result.value
    return float(value)


def _missing(spec: RagMetric, sample: QASample) -> str | None:
    fields = sample.to_ragas()
    absent = [n for n in spec.needs if not fields.get(n)]
    if not absent:
        return None
    hint = " (give --index to generate them)" if set(absent) & {_A, _C} else ""
    return f"the sample has no {', '.join(absent)}{hint}"


async def score_sample(
    sample: QASample, built: dict[str, Any], judge: Any, timeout: float, *, limit: int = 1
) -> Scored:
    """One sample's scores on the ``built`` metrics and the reasons for those not computed
    (also what a Ray worker runs per sample, ``evals.distributed``). The metrics are scored
    ``limit`` at a time (their judge calls are independent), all within the one per-sample
    budget of ``timeout`` seconds from now, which the judge checks as it waits and streams."""
    started = time.monotonic()
    if judge is not None:
        judge.deadline = started + timeout
    try:
        jobs = [
            functools.partial(_outcome, RAG_METRICS[name], metric, sample, started, timeout)
            for name, metric in built.items()
        ]
        outcomes = await gather_together(jobs, limit=limit)
    finally:
        if judge is not None:
            judge.deadline = None
    scores = {n: value for n, (value, why) in zip(built, outcomes, strict=True) if why is None}
    reasons = {n: why for n, (_, why) in zip(built, outcomes, strict=True) if why is not None}
    return scores, reasons


async def _outcome(
    spec: RagMetric, metric: Any, sample: QASample, started: float, timeout: float
) -> tuple[float, str | None]:
    """One metric's score on ``sample`` (clipped to [0, 1]), or the reason there is none."""
    reason = _missing(spec, sample)
    if reason is not None:
        return math.nan, reason
    try:
        left = max(timeout - (time.monotonic() - started), 0.001)
        value = await asyncio.wait_for(_score_one(metric, spec, sample), left + 5.0)
    except TimeoutError:
        return math.nan, f"timed out after {timeout:g}s"
    except OrchestratorError as exc:
        return math.nan, exc.message
    except Exception as exc:  # a metric's own failure is reported, not raised
        return math.nan, f"{type(exc).__name__}: {exc}"
    reason = _check_value(value)
    return (math.nan, reason) if reason is not None else (min(max(value, 0.0), 1.0), None)


def judge_parallel(judge: Any) -> int:
    """Judge prompts to make at a time with ``judge``: its ``parallel`` (``LlamaJudge``: as
    many as its model decodes together); 1 for another Ragas judge, which may not be
    re-entrant."""
    return max(1, int(getattr(judge, "parallel", 1)))


def _scoring(
    sample: QASample,
    built: dict[str, Any],
    judge: Any,
    timeout: float,
    limit: int,
    progress: Callable[[int], None] | None,
) -> Callable[[], Awaitable[Scored]]:
    """The job scoring ``sample`` (see :func:`score_sample`), which advances ``progress``."""

    async def job() -> Scored:
        scored = await score_sample(sample, built, judge, timeout, limit=limit)
        if progress:
            progress(1)
        return scored

    return job


#: Float rounding slack on the [0, 1] range (BLEU of identical texts is 1.0000000000000004).
_ROUNDING = 1e-9


def _check_value(value: float) -> str | None:
    if math.isnan(value):
        return "the score is undefined (NaN): the judge produced nothing to score"
    if not -_ROUNDING <= value <= 1.0 + _ROUNDING:
        return f"the score {value} is outside [0, 1]"
    return None


async def aevaluate_rag(
    samples: Sequence[QASample],
    metrics: Sequence[str],
    *,
    judge: Any = None,
    embeddings: Any = None,
    timeout: float = 300.0,
    name: str = "rag",
    progress: Callable[[int], None] | None = None,
    settings: dict[str, Any] | None = None,
    score_many: ScoreMany | None = None,
    concurrency: int = 1,
) -> RagEvaluation:
    """Score ``samples`` (already answered) with the named metrics, in the running loop.

    LLM metrics need ``judge`` (an ``InstructorBaseRagasLLM``, e.g. ``evals.judge.LlamaJudge``)
    and ``answer_relevancy`` / ``semantic_similarity`` need ``embeddings``; they are never
    defaulted here, so Ragas cannot fall back to a hosted model.

    The metrics of a sample are scored together, as many at a time as the judge takes (its
    ``parallel``; 1 for a judge that does not say), within the sample's budget of ``timeout``
    seconds. ``concurrency`` samples are scored at a time (default 1): more overlap samples
    too, but then a sample's budget also covers the time its neighbours take (the example
    suite on a busy 2-core machine, 4 samples at a time: the first four all ran past the
    300 s budget). The results are in sample order either way.
    """
    chosen = check_metrics(metrics)
    _check_components(chosen, judge, embeddings)
    if not samples:
        raise DataError("no sample to evaluate", fix="load a question set with evals.load_qa")
    dataset = to_evaluation_dataset(samples)  # validates every sample as Ragas reads it
    built = {n: RAG_METRICS[n].build(judge, embeddings) for n in chosen}
    started = time.perf_counter()
    if score_many is not None:  # e.g. ``evals.distributed.ray_scorer``: reports its progress
        results = score_many(samples, progress)
    else:
        limit = judge_parallel(judge) if judge is not None else 1
        results = await gather_together(
            [_scoring(s, built, judge, timeout, limit, progress) for s in samples],
            limit=concurrency,
        )
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    for sample, (scores, reasons) in zip(samples, results, strict=True):
        rows.append({**_describe(sample), "scores": scores})
        failed += [{"id": sample.id, "metric": m, "reason": r} for m, r in reasons.items()]
    return RagEvaluation(
        name=name,
        metrics=chosen,
        samples=rows,
        failed=failed,
        seconds=time.perf_counter() - started,
        judge=getattr(judge, "model_name", None)
        if any(RAG_METRICS[m].uses_llm for m in chosen)
        else None,
        settings=dict(settings or {}),
        dataset=dataset,
    )


#: :func:`aevaluate_rag` for synchronous callers, wherever they are called from (in a running
#: loop it runs on a worker thread; async code should rather ``await aevaluate_rag(...)``).
evaluate_rag = blocking(aevaluate_rag)


def _describe(sample: QASample) -> dict[str, Any]:
    return {
        "id": sample.id,
        "user_input": sample.user_input,
        "response": sample.response,
        "reference": sample.reference,
        "retrieved_contexts": sample.retrieved_contexts,
        **({"sources": sample.sources} if sample.sources else {}),
        **sample.trace,  # the strategy's queries etc., as `orchestrator rag --json` has them
    }


def _check_components(chosen: Sequence[str], judge: Any, embeddings: Any) -> None:
    if judge is None and any(RAG_METRICS[m].uses_llm for m in chosen):
        raise OptionError(
            f"metrics {[m for m in chosen if RAG_METRICS[m].uses_llm]} need a judge model",
            fix="pass judge=LlamaJudge(...) (CLI: the embedded model is the default judge)",
        )
    if embeddings is None and any(RAG_METRICS[m].uses_embeddings for m in chosen):
        raise OptionError(
            "answer_relevancy and semantic_similarity need embeddings",
            fix="pass embeddings=evals.judge.local_embeddings()",
        )
