"""Time to evaluate Cranfield (225 queries, top 100) per retrieval mode, and metric cost.

    ORCHESTRATOR_THREADS=1 python benchmarks/eval_cranfield.py [--data ../shared/data/cranfield]

Prints a Markdown table: per mode, seconds to retrieve all queries and score the run (the
suite's work once the index exists), the means, and the cost of the metrics alone next to
pytrec_eval on the same run. The index is built once (cached) and its build time reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

METRICS = ["map", "ndcg_cut_10", "recip_rank", "P_10", "recall_100"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "cranfield"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--repeat", type=int, default=3, help="metric timing repetitions")
    args = parser.parse_args()

    import pytrec_eval
    from orchestrator.evals import evaluate_run
    from orchestrator.evals.retrieval import cached_index_dir, ensure_index, evaluate_retriever

    from orchestrator.retrieval import load_beir, open_retriever

    dataset = load_beir(args.data)
    modes = ("dense", "bm25")
    cached = (cached_index_dir([args.data], modes) / "manifest.json").is_file()
    started = time.perf_counter()
    index = ensure_index([args.data], None, modes)
    build = time.perf_counter() - started
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; "
        f"ORCHESTRATOR_THREADS={os.environ.get('ORCHESTRATOR_THREADS', 'default')}"
    )
    print(f"index: {'cached' if cached else f'built in {build:.1f} s'} ({index})\n")
    print(
        "| mode | queries | retrieve + score (s) | ms / query | MAP | nDCG@10 | "
        "metrics alone (ms) | pytrec_eval (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for mode in ("bm25", "dense", "hybrid"):
        retriever = open_retriever(index, mode=mode, k=100)
        retriever.search_many(["warm up"], 1)  # model load is not evaluation time
        started = time.perf_counter()
        result = evaluate_retriever(retriever, dataset, name=mode, metrics=METRICS, k=100)
        total = time.perf_counter() - started
        reference = pytrec_eval.RelevanceEvaluator(dataset.qrels, set(METRICS))
        ours = _best_of(args.repeat, partial(evaluate_run, dataset.qrels, result.run, METRICS))
        ref = _best_of(args.repeat, partial(reference.evaluate, result.run))
        n = len(result.per_query)
        print(
            f"| {mode} | {n} | {total:.1f} | {1000 * total / n:.0f} | "
            f"{result.mean['map']:.4f} | {result.mean['ndcg_cut_10']:.4f} | "
            f"{1000 * ours:.0f} | {1000 * ref:.0f} |"
        )


def _best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


if __name__ == "__main__":
    main()
