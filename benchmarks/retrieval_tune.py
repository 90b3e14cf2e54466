"""Tune the hybrid pipeline's defaults on Cranfield, honestly: grid search, plus 2-fold
cross-validation (tune on odd query ids, score on even ones and vice versa) so the figures
say how much of the gain survives on queries the tuning did not see.

Usage: python benchmarks/retrieval_tune.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from typing import Any

import numpy as np
from retrieval_common import CACHE, CRANFIELD, cranfield_index, doc_run, evaluate

from orchestrator.retrieval import load_beir, open_retriever
from orchestrator.retrieval.analyzer import Analyzer, AnalyzerConfig
from orchestrator.retrieval.bm25 import BM25Index, BM25Params


class CachedQueries:
    """Wraps the index's embedder so each query is embedded once for the whole grid."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.cache = inner, {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.inner.embed_documents(missing), strict=True))
        return np.stack([self.cache[t] for t in texts])


def set_bm25(store: Any, stopwords: str, k1: float, b: float, idf: str) -> None:
    analyzer = Analyzer(AnalyzerConfig(stopwords=stopwords))
    bm25 = BM25Index(analyzer, BM25Params(k1=k1, b=b, idf=idf))
    bm25.add([c.text for c in store.chunks])
    store.bm25 = bm25


BM25_GRID = [
    {"stopwords": s, "k1": k1, "b": b, "idf": i}
    for s, k1, b, i in itertools.product(
        ("english", "lucene"), (0.9, 1.2, 1.5), (0.6, 0.75, 0.9), ("okapi", "lucene")
    )
]
SEARCH_GRID = [
    {
        "fusion": "weighted",
        "dense_weight": w,
        "feedback_docs": d,
        "feedback_terms": t,
        "feedback_query_weight": q,
        "feedback_vector_weight": v,
    }
    for w, d, t, q, v in itertools.product(
        (0.5, 0.6, 0.7, 0.8), (0, 3, 5, 8), (10, 20), (0.5, 0.7), (0.5, 1.0)
    )
    if d or (t, q, v) == (10, 0.5, 0.5)
] + [{"fusion": "rrf", "dense_weight": 0.5, "feedback_docs": d} for d in (0, 5)]


def scored(data: Any, run: dict[str, dict[str, float]], folds: dict[str, set[str]]) -> dict:
    row = {"all": evaluate(data.qrels, run)}
    for name, qids in folds.items():
        row[name] = evaluate({q: data.qrels[q] for q in qids}, run)
    return row


def cross_validate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for train, test in (("odd", "even"), ("even", "odd")):
        chosen = max(rows, key=lambda r: r[train]["map"])
        out.append({"tuned_on": train, "config": chosen["config"], "test": chosen[test]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    data = load_beir(CRANFIELD)
    path, _ = cranfield_index()
    store = open_retriever(path, mode="hybrid").searcher.store
    store.embedder = CachedQueries(store.embedder)
    folds = {
        "odd": {q for q in data.qrels if int(q) % 2},
        "even": {q for q in data.qrels if not int(q) % 2},
    }
    start = time.perf_counter()
    bm25_rows = []
    for config in BM25_GRID[:2] if args.quick else BM25_GRID:
        set_bm25(store, **config)
        run = doc_run(open_retriever(path, mode="bm25", feedback_docs=0), data.queries)
        bm25_rows.append({"config": config, **scored(data, run, folds)})
    best_bm25 = max(bm25_rows, key=lambda r: r["all"]["map"])
    set_bm25(store, **best_bm25["config"])
    search_rows = []
    for config in SEARCH_GRID[:4] if args.quick else SEARCH_GRID:
        run = doc_run(open_retriever(path, mode="hybrid", **config), data.queries)
        search_rows.append({"config": config, **scored(data, run, folds)})
    best = max(search_rows, key=lambda r: r["all"]["map"])
    cv = cross_validate(search_rows)
    report = {
        "seconds": time.perf_counter() - start,
        "bm25_best": best_bm25,
        "bm25_cv": cross_validate(bm25_rows),
        "hybrid_best": best,
        "hybrid_cv": cv,
        "hybrid_cv_mean": {m: sum(c["test"][m] for c in cv) / 2 for m in cv[0]["test"]},
    }
    out = CACHE / "retrieval_tune.json"
    out.write_text(json.dumps({"report": report, "bm25": bm25_rows, "hybrid": search_rows}))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
