"""Evaluation on Ray: ``eval retrieval|rag|SUITE.yaml --ray``.

Three loops of the evaluators run item by item on Ray workers through
:func:`orchestrator.scale.map_items` (actors that build their heavy parts once):

- retrieval: batches of queries (the serial path's batches of 16, so query embeddings are
  computed in the same calls), each worker holding the open index (and its LLM reranker);
- RAG answering: samples, each worker holding the RAG chain (one GGUF per worker);
- RAG judging: samples, each worker holding the judge and the embeddings.

What a worker builds is described by the configuration's pipeline spec (picklable data:
absolute index and model paths, mode, strategy) or the judge's configuration, never by the
driver's loaded objects. Every item is one independent call with the
serial path's settings (greedy decoding, ``seed=0`` per call), so its result is the serial
run's, whatever worker runs it and in whatever order; results come back in input order.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import OptionError
from orchestrator.scale import connect, map_items

if TYPE_CHECKING:
    from orchestrator.agents.pipelines import RagSpec
    from orchestrator.evals.qa import QASample
    from orchestrator.evals.suite import JudgeConfig

Scored = tuple[dict[str, float], dict[str, str]]


@dataclass(frozen=True)
class RayPlan:
    """``--ray ADDRESS`` and ``--ray-workers N``: where evaluation items run."""

    address: str = "auto"
    workers: int | None = None

    def start(self) -> None:
        """Connect now, so a wrong address fails before any model is loaded."""
        connect(self.address)

    def map(
        self,
        make: Callable[[], Callable[[Any], Any]],
        items: Sequence[Any],
        progress: Callable[[int], None] | None = None,
        weight: Callable[[Any], int] = lambda item: 1,
    ) -> list[Any]:
        self.start()
        return map_items(make, items, workers=self.workers, progress=progress, weight=weight)


# -- retrieval --------------------------------------------------------------------------------


def _query_worker(spec: RagSpec, k: int) -> Callable[[list[tuple[str, str]]], Any]:
    from orchestrator.evals.retrieval import retrieve_run, spec_retriever

    retriever = spec_retriever(spec)
    return lambda batch: retrieve_run(retriever, dict(batch), k=k, batch_size=len(batch))


def ray_retrieve(plan: RayPlan, spec: RagSpec) -> Callable[..., dict[str, Any]]:
    """A stand-in for :func:`~orchestrator.evals.retrieval.retrieve_run` (same signature)
    that retrieves on Ray workers, each opening the retriever of ``spec`` (the serial run's,
    :func:`~orchestrator.evals.retrieval.spec_retriever`)."""
    if spec.strategy != "plain":
        raise OptionError(
            "--ray spreads plain retrieval; a RAG strategy's query transforms run serially",
            fix="leave out --ray, or evaluate the plain strategy",
        )

    def run(
        retriever: Any,
        queries: Mapping[str, str],
        *,
        k: int = 100,
        corpus_ids: Collection[str] | None = None,
        batch_size: int = 16,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, dict[str, float]]:
        from orchestrator.evals.retrieval import check_known

        items = list(queries.items())
        batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
        make = functools.partial(_query_worker, spec, k)
        out: dict[str, dict[str, float]] = {}
        for part in plan.map(make, batches, progress, weight=len):
            out.update(part)
        for qid, scores in out.items():
            check_known(qid, scores, corpus_ids)
        return out

    return run


# -- RAG ----------------------------------------------------------------------------------------


def _answer_worker(spec: RagSpec) -> Callable[[QASample], QASample]:
    from orchestrator.agents.pipelines import build
    from orchestrator.evals.qa import answer_samples

    chain = build(spec)
    return lambda sample: answer_samples([sample], chain)[0]


def ray_answer(
    plan: RayPlan,
    samples: Sequence[QASample],
    spec: RagSpec,
    *,
    progress: Callable[[int], None] | None = None,
) -> list[QASample]:
    """:func:`~orchestrator.evals.qa.answer_samples` on Ray: each worker builds the
    pipeline of ``spec`` (whose paths are absolute: a worker's working directory is not
    ours)."""
    return plan.map(functools.partial(_answer_worker, spec), list(samples), progress)


class _JudgeWorker:
    """A worker's judge, embeddings and metrics, built once; scores one sample per call on
    its own event loop."""

    def __init__(
        self, metrics: Sequence[str], judge: JudgeConfig, models: Mapping[str, Any]
    ) -> None:
        from orchestrator.evals.rag import RAG_METRICS
        from orchestrator.evals.runner import rag_components

        self.judge, embeddings = rag_components(metrics, judge, Path.cwd(), models)
        self.built = {n: RAG_METRICS[n].build(self.judge, embeddings) for n in metrics}
        self.timeout = judge.timeout
        self.loop = asyncio.new_event_loop()

    def __call__(self, sample: QASample) -> Scored:
        from orchestrator.evals.rag import score_sample

        job = score_sample(sample, self.built, self.judge, self.timeout)
        return self.loop.run_until_complete(job)


def ray_scorer(
    plan: RayPlan,
    metrics: Sequence[str],
    judge: JudgeConfig,
    base: Path,
    *,
    models: Mapping[str, Any] | None = None,
) -> Callable[[Sequence[QASample], Callable[[int], None] | None], list[Scored]]:
    """What :func:`~orchestrator.evals.rag.evaluate_rag` takes as ``score_many``: scores
    (and reasons for the scores that could not be computed) per sample, judged on Ray by
    the judge ``judge`` names (a local GGUF path made absolute against ``base``)."""
    from orchestrator.evals.runner import model_path

    judge = judge.model_copy(update={"model": model_path(base, judge.model, judge.base_url)})
    make = functools.partial(_JudgeWorker, list(metrics), judge, dict(models or {}))

    def score(
        samples: Sequence[QASample], progress: Callable[[int], None] | None = None
    ) -> list[Scored]:
        return plan.map(make, list(samples), progress)

    return score
