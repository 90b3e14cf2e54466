"""Retrieval quality on Cranfield (BEIR layout): MAP, nDCG@10, Recall@100, MRR per pipeline.

Document-level runs (a document scores its best chunk), top 100 per query, every judged query
counted, scored by ``orchestrator.evals.evaluate_run`` (trec_eval's measures via pytrec_eval):
the "hybrid (default)" row is what ``orchestrator eval retrieval --dataset CRANFIELD`` prints.
The LLM rerank stage is slow on CPU, so it is measured on the first ``--rerank-queries``
queries, next to the same pipeline without rerank on the same queries.

Usage: python benchmarks/retrieval_cranfield.py [--rerank-queries 30] [--skip-pipelines]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from retrieval_common import CACHE, CRANFIELD, cranfield_index, doc_run, evaluate, fmt, machine

from orchestrator.retrieval import load_beir, open_retriever

PIPELINES: dict[str, dict[str, Any]] = {
    "bm25": {"mode": "bm25", "feedback_docs": 0},
    "bm25 + feedback": {"mode": "bm25"},
    "dense": {"mode": "dense", "feedback_docs": 0},
    "dense + feedback": {"mode": "dense"},
    "hybrid rrf": {"mode": "hybrid", "fusion": "rrf", "dense_weight": 0.5, "feedback_docs": 0},
    "hybrid weighted": {"mode": "hybrid", "feedback_docs": 0},
    "hybrid (default: weighted + feedback)": {"mode": "hybrid"},
}


def run_pipeline(path: Any, queries: dict[str, str], options: dict[str, Any]) -> tuple:
    options = dict(options)
    retriever = open_retriever(path, mode=options.pop("mode"), **options)
    start = time.perf_counter()
    run = doc_run(retriever, queries)
    return run, (time.perf_counter() - start) / len(queries) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rerank-queries", type=int, default=30)
    parser.add_argument("--rerank-depth", type=int, default=10)
    parser.add_argument("--skip-pipelines", action="store_true", help="Only the rerank part.")
    args = parser.parse_args()
    print(machine(), flush=True)
    data = load_beir(CRANFIELD)
    path, build = cranfield_index()
    report: dict[str, Any] = {"machine": machine(), "build": build, "index": str(path)}
    report |= {"queries": len(data.queries), "pipelines": {}}
    for name, options in {} if args.skip_pipelines else PIPELINES.items():
        run, ms = run_pipeline(path, data.queries, options)
        metrics = evaluate(data.qrels, run)
        report["pipelines"][name] = {**metrics, "ms_per_query_batched": ms}
        print(f"{name:40s} {fmt(metrics)}  {ms:.1f} ms/q", flush=True)
    if args.rerank_queries:
        subset = dict(list(data.queries.items())[: args.rerank_queries])
        qrels = {q: data.qrels[q] for q in subset}
        for name, rerank in (("hybrid", None), ("hybrid + llm rerank", "llm")):
            options = {"mode": "hybrid", "rerank": rerank, "rerank_depth": args.rerank_depth}
            run, ms = run_pipeline(path, subset, options)
            metrics = evaluate(qrels, run)
            report[f"subset {name}"] = {**metrics, "ms_per_query": ms, "queries": len(subset)}
            print(f"{name + f' ({len(subset)} q)':40s} {fmt(metrics)}  {ms:.0f} ms/q", flush=True)
    print(machine(), flush=True)
    out = CACHE / "retrieval_cranfield.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() else {}
    if args.skip_pipelines:
        report = {**previous, **{k: v for k, v in report.items() if k.startswith("subset")}}
    elif not args.rerank_queries:
        report |= {k: v for k, v in previous.items() if k.startswith("subset")}
    out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
