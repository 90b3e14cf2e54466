"""Time to evaluate Cranfield (225 queries, top 100) per retrieval mode, and metric cost.

    python benchmarks/eval_cranfield.py [--repeat 3]     (data: $CRANFIELD_DIR or ../shared)

Prints a Markdown table: per mode, seconds to retrieve all queries and score the run (the
suite's work once the index exists), the means, and the cost of scoring alone:
``evaluate_run`` (pytrec_eval plus this project's checks) next to a bare
``pytrec_eval.RelevanceEvaluator`` on the same run. The index is the evaluator's cached one
(the same as ``benchmarks/retrieval_*.py`` and ``orchestrator eval retrieval`` use).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

from retrieval_common import CRANFIELD, MODES, cranfield_index, machine

METRICS = ["map", "ndcg_cut_10", "recip_rank", "P_10", "recall_100"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="metric timing repetitions")
    args = parser.parse_args()

    import pytrec_eval

    from orchestrator.evals import evaluate_run
    from orchestrator.evals.retrieval import evaluate_retriever
    from orchestrator.retrieval import load_beir, open_retriever

    print(machine())
    dataset = load_beir(CRANFIELD)
    index, build = cranfield_index()
    built = f"built in {build['build_s']:.1f} s" if build else "cached"
    print(f"index: {built} ({index}, modes {', '.join(MODES)})\n")
    print(
        "| mode | queries | retrieve + score (s) | ms / query | MAP | nDCG@10 | "
        "evaluate_run (ms) | bare pytrec_eval (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for mode in ("bm25", "dense", "hybrid"):
        retriever = open_retriever(index, mode=mode, k=100)
        retriever.search_many(["warm up"], 1)  # model load is not evaluation time
        started = time.perf_counter()
        result = evaluate_retriever(retriever, dataset, name=mode, metrics=METRICS, k=100)
        total = time.perf_counter() - started
        bare = pytrec_eval.RelevanceEvaluator(dataset.qrels, set(METRICS))
        ours = _best_of(
            args.repeat, partial(evaluate_run, dataset.qrels, result.run, METRICS, complete=True)
        )
        ref = _best_of(args.repeat, partial(bare.evaluate, result.run))
        n = len(result.per_query)
        print(
            f"| {mode} | {n} | {total:.1f} | {1000 * total / n:.0f} | "
            f"{result.mean['map']:.4f} | {result.mean['ndcg_cut_10']:.4f} | "
            f"{1000 * ours:.0f} | {1000 * ref:.0f} |",
            flush=True,
        )
    print(f"\n{machine()}")


def _best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


if __name__ == "__main__":
    main()
