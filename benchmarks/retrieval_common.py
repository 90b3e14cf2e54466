"""Shared helpers for the retrieval benchmarks: Cranfield paths, runs, trec_eval measures."""

from __future__ import annotations

import os
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


def cranfield_index(rebuild: bool = False) -> tuple[Path, dict[str, float]]:
    """The Cranfield index (built once and cached), and its build timings."""
    from orchestrator.retrieval import build_index

    path = CACHE / "cranfield-index"
    stats: dict[str, float] = {}
    if rebuild or not (path / "manifest.json").exists():
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        start = time.perf_counter()
        store = build_index([CRANFIELD], path, progress=True)
        stats = {"build_s": time.perf_counter() - start, "chunks": float(len(store.chunks))}
    _keyword_defaults(path)
    return path, stats


def _keyword_defaults(path: Path) -> None:
    """Bring a cached index's BM25 side to the current defaults (no re-embedding)."""
    from orchestrator.retrieval import IndexStore
    from orchestrator.retrieval.analyzer import AnalyzerConfig
    from orchestrator.retrieval.bm25 import BM25Params

    store = IndexStore.open(path)
    wanted = {"analyzer": AnalyzerConfig().to_json(), "params": BM25Params().to_json()}
    if store.manifest["bm25"] != wanted:
        store.rebuild_keyword(AnalyzerConfig(), BM25Params())
        store.save()


def doc_run(
    retriever: Any, queries: dict[str, str], depth: int = 100
) -> dict[str, dict[str, float]]:
    """A document-level run {qid: {doc_id: score}}, a document scoring its best chunk."""
    from orchestrator.retrieval import doc_ranking

    qids = list(queries)
    results = retriever.search_many([queries[q] for q in qids], depth * 3)
    return {q: dict(doc_ranking(docs)[:depth]) for q, docs in zip(qids, results, strict=True)}


def evaluate(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]
) -> dict[str, float]:
    """Mean trec_eval measures (queries with no retrieved document count as 0)."""
    import pytrec_eval

    evaluator = pytrec_eval.RelevanceEvaluator(qrels, set(MEASURES))
    per_query = evaluator.evaluate({q: run.get(q) or {"__none__": 0.0} for q in qrels})
    return {m: sum(v[m] for v in per_query.values()) / len(per_query) for m in MEASURES}


def fmt(metrics: dict[str, float]) -> str:
    return "  ".join(f"{LABELS[m]} {metrics[m]:.4f}" for m in MEASURES)
