"""Run any retriever over a BEIR dataset, score the run with trec_eval's measures, save it.

The retriever is anything with ``search_many(queries, k)`` or ``invoke(query, k=N)`` returning
LangChain ``Document``s whose metadata holds ``doc_id`` and ``score`` (higher is better).
Retrievers return chunks; a document's score is its best chunk's score (the document-level run
that BEIR's qrels judge), by the core's one rule (``orchestrator.retrieval.retriever``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import DataError
from orchestrator.evals.items import TOP_IDS
from orchestrator.evals.metrics import evaluate_run, precision_recall_points, rank_documents
from orchestrator.evals.trec import write_run

DEFAULT_METRICS = ("map", "ndcg_cut_10", "recip_rank", "P_10", "recall_100")

Progress = Callable[[int], None]


@dataclass
class RetrievalEvaluation:
    """A scored run: what a report needs, plus where the TREC run file was written."""

    name: str
    run: dict[str, dict[str, float]]
    per_query: dict[str, dict[str, float]]
    mean: dict[str, float]
    pr_curve: list[tuple[float, float]]
    seconds: float
    run_file: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "retrieval",
            "settings": self.settings,
            "mean": self.mean,
            "per_query": self.per_query,
            "top": {qid: rank_documents(scores)[:TOP_IDS] for qid, scores in self.run.items()},
            "pr_curve": [list(p) for p in self.pr_curve],
            "seconds": round(self.seconds, 3),
            "run_file": str(self.run_file) if self.run_file else None,
        }


#: The strategies whose retrieval the evaluators measure (the others choose between indexes).
MEASURED_STRATEGIES = ("plain", "rewrite", "multi_query", "hyde", "multi_hop")


def spec_retriever(spec: Any) -> Any:
    """The retriever a RAG spec's retrieval is measured with (``eval retrieval``, retrieval
    suites, their Ray workers): the pipeline's search half
    (:func:`orchestrator.agents.pipelines.search.search_retriever`: no answering floor, the
    strategy's query transform written greedily by the spec's model)."""
    from orchestrator.agents.pipelines.search import search_retriever

    return search_retriever(spec, strategies=MEASURED_STRATEGIES)


def retrieve_run(
    retriever: Any,
    queries: Mapping[str, str],
    *,
    k: int = 100,
    corpus_ids: Collection[str] | None = None,
    batch_size: int = 16,
    progress: Progress | None = None,
) -> dict[str, dict[str, float]]:
    """The top ``k`` documents per query as a run ``{qid: {doc_id: score}}``: ``k`` times
    :data:`~orchestrator.retrieval.retriever.CHUNKS_PER_DOC` chunks are fetched and folded by
    :func:`~orchestrator.retrieval.retriever.doc_ranking` (a document scores its best chunk).

    With ``corpus_ids``, a retrieved document outside the corpus is an error: the index was
    built from other documents than the dataset judges.
    """
    from orchestrator.retrieval import search_many
    from orchestrator.retrieval.retriever import CHUNKS_PER_DOC, doc_ranking

    run: dict[str, dict[str, float]] = {}
    items = list(queries.items())
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        results = search_many(retriever, [text for _, text in batch], k * CHUNKS_PER_DOC)
        for (qid, _), docs in zip(batch, results, strict=True):
            run[qid] = dict(doc_ranking(docs, query=qid)[:k])
            check_known(qid, run[qid], corpus_ids)
        if progress:
            progress(len(batch))
    return run


def check_known(qid: str, scores: Mapping[str, float], corpus_ids: Collection[str] | None) -> None:
    """A retrieved document outside ``corpus_ids`` is an error: the index holds other documents
    than the dataset judges (also checked on Ray results, ``evals.distributed``)."""
    if corpus_ids is None:
        return
    unknown = [doc for doc in scores if doc not in corpus_ids]
    if unknown:
        raise DataError(
            f"the retriever returned document {unknown[0]!r} for query {qid!r}, which is not in "
            f"the dataset's corpus ({len(unknown)} such documents for this query)",
            fix="build the index from the same dataset: orchestrator index BEIR_DIR --index DIR",
        )


def evaluate_retriever(
    retriever: Any,
    dataset: Any,
    *,
    name: str = "retriever",
    metrics: Sequence[str] = DEFAULT_METRICS,
    k: int = 100,
    run_file: str | Path | None = None,
    progress: Progress | None = None,
    settings: Mapping[str, Any] | None = None,
    retrieve: Callable[..., dict[str, dict[str, float]]] | None = None,
) -> RetrievalEvaluation:
    """Retrieve for every judged query of ``dataset`` (a ``BeirDataset``) and score the run.
    ``retrieve`` replaces :func:`retrieve_run` (same signature), e.g. by its Ray form
    (``evals.distributed.ray_retrieve``).

    Every judged query counts, and one that retrieved nothing scores 0. A TREC file cannot
    hold an empty ranking, so on the written run this equals ``trec_eval -c`` (plain
    ``trec_eval`` would skip such a query and report a higher mean).
    """
    queries = {qid: text for qid, text in dataset.queries.items() if dataset.qrels.get(qid)}
    if not queries:
        raise DataError(
            f"{getattr(dataset, 'path', 'the dataset')}: no query has relevance judgements",
            fix="check the qrels split (qrels/test.tsv) and that its query ids match queries.jsonl",
        )
    started = time.perf_counter()
    run = (retrieve or retrieve_run)(
        retriever, queries, k=k, corpus_ids=set(dataset.corpus), progress=progress
    )
    seconds = time.perf_counter() - started
    scored = evaluate_run(dataset.qrels, run, metrics, complete=True)
    written = write_run(run, run_file, tag=_tag(name)) if run_file else None
    return RetrievalEvaluation(
        name=name,
        run=run,
        per_query=scored["per_query"],
        mean=scored["mean"],
        pr_curve=precision_recall_points(dataset.qrels, run),
        seconds=seconds,
        run_file=written,
        settings=dict(settings or {}),
    )


def _tag(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "run"


def cached_index_dir(sources: Sequence[str | Path], modes: Sequence[str]) -> Path:
    """Where an index built from ``sources`` is kept between runs (a dataset may be read-only).

    ``$ORCHESTRATOR_CACHE`` (default ``~/.cache/orchestrator``) / ``eval-indexes`` / a name
    derived from the sources' absolute paths, sizes and modification times, the modes, the
    index format version and the retrieval code.
    """
    parts = []
    for source in sources:
        path = Path(source).expanduser().resolve()
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.exists()]
        parts.append(f"{path}:{stats}")
    key = f"{parts}|{sorted(modes)}|format {_index_format()}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    base = Path(os.environ.get("ORCHESTRATOR_CACHE", "~/.cache/orchestrator")).expanduser()
    first = Path(sources[0]).expanduser().resolve().name if sources else "index"
    return base / "eval-indexes" / f"{first}-{digest}"


def _index_format() -> str:
    """The index format version and a digest of the retrieval code that builds indexes, so a
    cached index from older code (other chunking, analyzer or embedding) is never reused."""
    try:
        from orchestrator.retrieval import storage
    except ImportError:
        return "?"
    code = hashlib.sha256()
    for module in sorted(Path(storage.__file__).parent.glob("*.py")):
        code.update(module.read_bytes())
    return f"{getattr(storage, 'FORMAT_VERSION', '?')}/{code.hexdigest()[:8]}"


def ensure_index(
    sources: Sequence[str | Path],
    index_dir: str | Path | None = None,
    modes: Sequence[str] = ("dense", "bm25"),
    *,
    progress: bool = False,
) -> Path:
    """``index_dir`` if given, else an index of ``sources`` (files, directories or a BEIR
    directory), built once and cached (see :func:`cached_index_dir`)."""
    if index_dir is not None:
        path = Path(index_dir).expanduser()
        if not (path / "manifest.json").is_file():
            raise DataError(
                f"{path} holds no index",
                fix=f"build it: orchestrator index {' '.join(map(str, sources))} --index {path}",
            )
        return path
    if not sources:
        raise DataError(
            "no index and no documents to build one from",
            fix="give an index directory, or the documents to index",
        )
    from orchestrator.retrieval import build_index

    path = cached_index_dir(sources, modes)
    if (path / "manifest.json").is_file():
        return path
    # Build beside the cache entry, then rename: an interrupted build leaves no half index.
    scratch = path.with_name(f"{path.name}.building-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    build_index([Path(s) for s in sources], scratch, modes=tuple(modes), progress=progress)
    shutil.rmtree(path, ignore_errors=True)
    scratch.rename(path)
    return path
