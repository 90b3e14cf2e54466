"""How much of the tuned defaults' Cranfield score is tuning: a grid search, and nested
cross-validation that chooses EVERY setting on training queries only.

1. The grid on all 225 queries (optimistic: the shipped defaults were picked this way):
   BM25 (stop list, k1, b, idf; 36 settings) by bm25-only MAP, then the hybrid settings
   (fusion, dense weight, feedback; 102 settings) with that BM25.
2. Nested k-fold cross-validation (each k of ``--folds``): for each fold, the BM25 settings
   AND then the hybrid settings are chosen by MAP on the other folds' queries, and the choice
   is scored on the held-out fold. Every query is held out once; the pooled mean over the 225
   held-out scores estimates settings chosen without seeing the queries they are scored on.
3. The shipped defaults (``BM25Params()``, ``AnalyzerConfig()``, ``SearchConfig()``) on all
   queries, for comparison.

Runs are computed once per (BM25, hybrid) setting over all queries and scored per query, so
choosing on a subset is a mean over those queries (nothing is re-run per fold).

Usage: python benchmarks/retrieval_tune.py [--folds 2 5] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from typing import Any

from retrieval_common import (
    CACHE,
    CRANFIELD,
    CachedQueries,
    cranfield_index,
    doc_run,
    fmt,
    machine,
    mean,
    per_query,
)

from orchestrator.retrieval import load_beir, open_retriever
from orchestrator.retrieval.analyzer import Analyzer, AnalyzerConfig
from orchestrator.retrieval.bm25 import BM25Index, BM25Params

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

PerQuery = dict[str, dict[str, float]]


class Grid:
    """Per-query scores of every setting, computed on first use and kept."""

    def __init__(self, path: Any, data: Any) -> None:
        self.path, self.data = path, data
        self.store = open_retriever(path, mode="hybrid").searcher.store
        self.store.embedder = CachedQueries(self.store.embedder)
        self.bm25: dict[int, PerQuery] = {}
        self.hybrid: dict[tuple[int, int], PerQuery] = {}
        self.loaded = -1

    def _use_bm25(self, i: int) -> None:
        if self.loaded != i:
            config = BM25_GRID[i]
            analyzer = Analyzer(AnalyzerConfig(stopwords=config["stopwords"]))
            params = BM25Params(k1=config["k1"], b=config["b"], idf=config["idf"])
            bm25 = BM25Index(analyzer, params)
            bm25.add([c.text for c in self.store.chunks])
            self.store.bm25, self.loaded = bm25, i

    def _score(self, mode: str, **options: Any) -> PerQuery:
        retriever = open_retriever(self.path, mode=mode, **options)
        return per_query(self.data.qrels, doc_run(retriever, self.data.queries))

    def bm25_scores(self, i: int) -> PerQuery:
        if i not in self.bm25:
            self._use_bm25(i)
            self.bm25[i] = self._score("bm25", feedback_docs=0)
        return self.bm25[i]

    def hybrid_scores(self, i: int, j: int) -> PerQuery:
        if (i, j) not in self.hybrid:
            self._use_bm25(i)
            self.hybrid[i, j] = self._score("hybrid", **SEARCH_GRID[j])
        return self.hybrid[i, j]


def best(scores: dict[int, PerQuery], qids: set[str]) -> int:
    """The setting with the highest MAP on ``qids`` (the first one on a tie)."""
    return max(scores, key=lambda i: (mean(scores[i], qids)["map"], -i))


def choose(grid: Grid, bm25_n: int, search_n: int, qids: set[str]) -> tuple[int, int]:
    """BM25 settings, then hybrid settings with them, each by MAP on ``qids`` only."""
    i = best({i: grid.bm25_scores(i) for i in range(bm25_n)}, qids)
    j = best({j: grid.hybrid_scores(i, j) for j in range(search_n)}, qids)
    return i, j


def folds_of(qids: list[str], k: int) -> list[set[str]]:
    """``k`` folds by position in numeric query-id order (deterministic, interleaved)."""
    ordered = sorted(qids, key=lambda q: (len(q), q))
    return [set(ordered[f::k]) for f in range(k)]


def nested_cv(grid: Grid, bm25_n: int, search_n: int, every: set[str], k: int) -> dict:
    """Nested ``k``-fold CV: each fold's settings chosen on the other folds, scored on it."""
    held_out: PerQuery = {}
    chosen = []
    for n, test in enumerate(folds_of(sorted(every), k)):
        i, j = choose(grid, bm25_n, search_n, every - test)
        scores = grid.hybrid_scores(i, j)
        held_out.update({q: scores[q] for q in test})
        chosen.append(
            {"fold": n, "queries": len(test), "bm25": BM25_GRID[i], "search": SEARCH_GRID[j]}
            | {"test": mean(scores, test)}
        )
        print(f"{k} folds, fold {n}: bm25 {BM25_GRID[i]} search {SEARCH_GRID[j]}", flush=True)
    pooled = mean(held_out)
    print(f"{f'nested {k}-fold CV (held-out queries)':44s} {fmt(pooled)}", flush=True)
    return {"pooled": pooled, "per_fold": chosen}


def defaults_row(path: Any, data: Any) -> dict[str, float]:
    """The shipped defaults on all queries: the index's own BM25 and the default search
    settings (run before :class:`Grid` swaps the open store's BM25)."""
    retriever = open_retriever(path, mode="hybrid")
    return mean(per_query(data.qrels, doc_run(retriever, data.queries)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, nargs="+", default=[2, 5])
    parser.add_argument("--quick", action="store_true", help="2 BM25 x 4 hybrid settings")
    args = parser.parse_args()
    print(machine(), flush=True)
    data = load_beir(CRANFIELD)
    path, _ = cranfield_index()
    defaults = defaults_row(path, data)
    print(f"{'shipped defaults, all queries':44s} {fmt(defaults)}", flush=True)
    bm25_n, search_n = (2, 4) if args.quick else (len(BM25_GRID), len(SEARCH_GRID))
    grid = Grid(path, data)
    start = time.perf_counter()
    every = set(data.qrels)
    i_all, j_all = choose(grid, bm25_n, search_n, every)
    tuned_all = mean(grid.hybrid_scores(i_all, j_all))
    print(f"{'grid optimum on all queries (optimistic)':44s} {fmt(tuned_all)}", flush=True)
    nested = {k: nested_cv(grid, bm25_n, search_n, every, k) for k in args.folds}
    report = {
        "machine": machine(),
        "seconds": time.perf_counter() - start,
        "settings_run": {"bm25": len(grid.bm25), "hybrid": len(grid.hybrid)},
        "defaults_all_queries": defaults,
        "grid_optimum_all_queries": {
            "bm25": BM25_GRID[i_all],
            "search": SEARCH_GRID[j_all],
            "scores": tuned_all,
        },
        "nested_cv": nested,
    }
    out = CACHE / "retrieval_tune.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
