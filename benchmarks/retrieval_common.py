"""Shared helpers for the retrieval benchmarks: Cranfield, its index, runs and measures.

Runs and scores go through the product's own code (``orchestrator.evals.retrieval.retrieve_run``
and ``orchestrator.evals.evaluate_run``, trec_eval's measures by pytrec_eval), so a benchmark
figure is what ``orchestrator eval retrieval`` reports for the same settings. The index is the
evaluator's cached one (``ensure_index``), keyed by the data and the retrieval code, so every
script (and ``orchestrator eval``) measures the same index and a stale one is never reused.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ORCHESTRATOR_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
CRANFIELD = Path(os.environ.get("CRANFIELD_DIR", ROOT.parent / "shared" / "data" / "cranfield"))
CACHE = Path(os.environ.get("ORCHESTRATOR_BENCH_CACHE", Path.home() / ".cache" / "orch-bench"))
MEASURES = ("map", "ndcg_cut_10", "recall_100", "recip_rank")
LABELS = {"map": "MAP", "ndcg_cut_10": "nDCG@10", "recall_100": "R@100", "recip_rank": "MRR"}
MODES = ("dense", "bm25")


def machine() -> str:
    """The machine and its load, printed with every figure (the dev machine is shared)."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    threads = os.environ.get("ORCHESTRATOR_THREADS")
    return f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load}, threads {threads}"


def cranfield_index() -> tuple[Path, dict[str, float]]:
    """The cached Cranfield index (dense + bm25, default settings), and the build time when
    this call built it."""
    from orchestrator.evals.retrieval import cached_index_dir, ensure_index

    cached = (cached_index_dir([CRANFIELD], MODES) / "manifest.json").is_file()
    start = time.perf_counter()
    path = ensure_index([CRANFIELD], None, MODES, progress=not cached)
    return path, {} if cached else {"build_s": time.perf_counter() - start}


def doc_run(
    retriever: Any, queries: dict[str, str], depth: int = 100
) -> dict[str, dict[str, float]]:
    """A document-level run {qid: {doc_id: score}}, a document scoring its best chunk."""
    from orchestrator.evals.retrieval import retrieve_run

    return retrieve_run(retriever, queries, k=depth, batch_size=64)


def per_query(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """trec_eval's measures per judged query (a query with no document retrieved scores 0)."""
    from orchestrator.evals import evaluate_run

    return evaluate_run(qrels, run, MEASURES, complete=True)["per_query"]  # type: ignore[no-any-return]


def mean(values: dict[str, dict[str, float]], qids: Any = None) -> dict[str, float]:
    """Mean of each measure over ``qids`` (default: every query in ``values``)."""
    chosen = list(values) if qids is None else [q for q in values if q in qids]
    return {m: sum(values[q][m] for q in chosen) / len(chosen) for m in MEASURES}


def evaluate(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]
) -> dict[str, float]:
    """Mean trec_eval measures over every judged query."""
    return mean(per_query(qrels, run))


def fmt(metrics: dict[str, float]) -> str:
    return "  ".join(f"{LABELS[m]} {metrics[m]:.4f}" for m in MEASURES)


class CachedQueries:
    """Wraps an index's embedder so each query text is embedded once per process (grids
    re-run the same 225 queries hundreds of times; the vectors are the same each time)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.cache = inner, {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed_documents(self, texts: list[str]) -> Any:
        import numpy as np

        missing = [t for t in texts if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.inner.embed_documents(missing), strict=True))
        return np.stack([self.cache[t] for t in texts])
