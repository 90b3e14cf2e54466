"""Evaluation on Ray: ``eval retrieval|rag|SUITE.yaml --ray``.

Three loops of the evaluators run item by item on Ray workers through
:func:`orchestrator.scale.map_items` (actors that build their heavy parts once):

- retrieval: batches of queries (the serial path's batches of 16, so query embeddings are
  computed in the same calls), each worker holding the open index (and its LLM reranker);
- RAG answering: samples, each worker holding the RAG chain (one GGUF per worker);
- RAG judging: samples, each worker holding the judge and the embeddings.

What a worker builds is described by a small picklable recipe (index path, mode, model
paths), never by the driver's loaded objects. Every item is one independent call with the
serial path's settings (greedy decoding, ``seed=0`` per call), so its result is the serial
run's, whatever worker runs it and in whatever order; results come back in input order.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import OptionError
from orchestrator.scale import connect, map_items

if TYPE_CHECKING:
    from orchestrator.evals.qa import QASample
    from orchestrator.evals.suite import JudgeConfig, PipelineConfig
    from orchestrator.remote import Endpoint

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


@dataclass(frozen=True)
class RetrieverRecipe:
    """What ``open_retriever`` gets in the serial run, for a worker to open the same."""

    index: str
    mode: str
    k: int
    rerank: str | None = None
    model: str | None = None
    base: str = "."
    dsn: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def open(self) -> Any:
        from orchestrator.evals.runner import rerank_spec
        from orchestrator.retrieval import open_retriever

        rerank = rerank_spec(Path(self.base), self.rerank, self.model)
        extra = {"dsn": self.dsn} if self.dsn else {}
        return open_retriever(
            self.index, mode=self.mode, rerank=rerank, k=self.k, **extra, **self.options
        )


def _query_worker(recipe: RetrieverRecipe, k: int) -> Callable[[list[tuple[str, str]]], Any]:
    from orchestrator.evals.retrieval import retrieve_run

    retriever = recipe.open()
    return lambda batch: retrieve_run(retriever, dict(batch), k=k, batch_size=len(batch))


def ray_retrieve(plan: RayPlan, recipe: RetrieverRecipe) -> Callable[..., dict[str, Any]]:
    """A stand-in for :func:`~orchestrator.evals.retrieval.retrieve_run` (same signature)
    that retrieves on Ray workers, each opening the retriever ``recipe`` describes."""

    def run(
        retriever: Any,
        queries: Mapping[str, str],
        *,
        k: int = 100,
        corpus_ids: Collection[str] | None = None,
        batch_size: int = 16,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, dict[str, float]]:
        from orchestrator.evals.retrieval import _check_known

        if hasattr(retriever, "strategy"):
            raise OptionError(
                "--ray spreads plain retrieval; a RAG strategy's query transforms run serially",
                fix="leave out --ray, or evaluate the plain strategy",
            )
        items = list(queries.items())
        batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
        make = functools.partial(_query_worker, recipe, k)
        out: dict[str, dict[str, float]] = {}
        for part in plan.map(make, batches, progress, weight=len):
            out.update(part)
        for qid, scores in out.items():
            _check_known(qid, scores, corpus_ids)
        return out

    return run


# -- RAG ----------------------------------------------------------------------------------------


def _answer_worker(
    config: PipelineConfig, base: Path, served: Endpoint | None
) -> Callable[[QASample], QASample]:
    from orchestrator.evals.qa import answer_samples
    from orchestrator.evals.runner import rag_pipeline

    chain, _ = rag_pipeline(config, base, served=served)
    return lambda sample: answer_samples([sample], chain)[0]


def ray_answer(
    plan: RayPlan,
    samples: Sequence[QASample],
    config: PipelineConfig,
    index: str | Path,
    base: Path,
    *,
    served: Endpoint | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[QASample]:
    """:func:`~orchestrator.evals.qa.answer_samples` on Ray: each worker builds the
    configuration's chain over the already built ``index`` (absolute paths: a worker's
    working directory is not ours)."""
    fixed = config.model_copy(update={"index": str(Path(index).resolve())})
    make = functools.partial(_answer_worker, fixed, base.resolve(), served)
    return plan.map(make, list(samples), progress)


class _JudgeWorker:
    """A worker's judge, embeddings and metrics, built once; scores one sample per call on
    its own event loop."""

    def __init__(
        self,
        metrics: Sequence[str],
        judge: JudgeConfig,
        base: Path,
        served: Endpoint | None,
        timeout: float,
    ) -> None:
        from orchestrator.evals.rag import RAG_METRICS
        from orchestrator.evals.runner import rag_components

        self.judge, embeddings = rag_components(metrics, judge, base, served)
        self.built = {n: RAG_METRICS[n].build(self.judge, embeddings) for n in metrics}
        self.timeout = timeout
        self.loop = asyncio.new_event_loop()

    def __call__(self, sample: QASample) -> Scored:
        from orchestrator.evals.rag import _score_sample

        job = _score_sample(sample, self.built, self.judge, self.timeout)
        return self.loop.run_until_complete(job)


def ray_scorer(
    plan: RayPlan,
    metrics: Sequence[str],
    judge: JudgeConfig,
    base: Path,
    *,
    served: Endpoint | None = None,
    timeout: float = 300.0,
) -> Callable[[Sequence[QASample], Callable[[int], None] | None], list[Scored]]:
    """What :func:`~orchestrator.evals.rag.evaluate_rag` takes as ``score_many``: scores
    (and reasons for the scores that could not be computed) per sample, judged on Ray."""
    judge = judge.model_copy(update={"model": _absolute(base, judge.model, served)})
    make = functools.partial(_JudgeWorker, list(metrics), judge, base.resolve(), served, timeout)

    def score(
        samples: Sequence[QASample], progress: Callable[[int], None] | None = None
    ) -> list[Scored]:
        return plan.map(make, list(samples), progress)

    return score


def _absolute(base: Path, model: str | None, served: Endpoint | None) -> str | None:
    """A local GGUF path made absolute (a served model's name stays a name)."""
    from orchestrator.evals.suite import resolve

    if model is None or served is not None:
        return model
    return str(Path(resolve(base, model) or model).resolve())
