"""RAG strategies (issue 13) with the embedded model: Cranfield ranking, two-hop answering.

    python benchmarks/bench_rag_strategies.py cranfield [--queries 100]
    python benchmarks/bench_rag_strategies.py two-hop [--k 2] [--max-hops 3]

``cranfield``: MAP and nDCG@10 of ``plain`` (the hybrid pipeline), ``rewrite``,
``multi_query`` and ``hyde`` on the same judged queries (the first ``--queries`` in file order;
0 = all 225), in one run, through the evaluator (``orchestrator.evals.retrieval`` with
``StrategyRetriever``, i.e. what ``orchestrator eval retrieval --strategy`` reports), plus
seconds per query (model calls included) and how many queries each strategy won or lost
against plain on average precision.

``two-hop``: ``plain`` vs ``multi_hop`` on ``benchmarks/data/two_hop`` (12 questions, each
needing two documents), with plain at ``k`` and at ``k * max_hops`` (the most sources
multi_hop can gather, so that more sources alone is not credited to the strategy): answer
accuracy (the answer contains the expected words), the share of questions with both
supporting documents among the sources, the mean share of supporting documents found,
sources per answer, stop reasons and seconds per question.

The model is SmolLM2-135M (the embedded GGUF) as a greedy chat model (temperature 0, seed 0);
the Cranfield index is the evaluators' cached one, the two-hop index is built per run (both
MiniLM int8 + BM25, searched hybrid).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from retrieval_common import CRANFIELD, MODES, ROOT, cranfield_index, machine

TWO_HOP = ROOT / "benchmarks" / "data" / "two_hop"
STRATEGIES = ("plain", "rewrite", "multi_query", "hyde")


def chat_llm() -> Any:
    from orchestrator import ChatLlamaCpp

    return ChatLlamaCpp(temperature=0.0, seed=0, max_tokens=256)


def cranfield(n_queries: int, strategies: tuple[str, ...] = STRATEGIES) -> None:
    from orchestrator.agents.pipelines.search import StrategyRetriever
    from orchestrator.chains.strategies import rag_strategy
    from orchestrator.evals.retrieval import evaluate_retriever
    from orchestrator.retrieval import load_beir, open_retriever

    data = load_beir(CRANFIELD)
    judged = [qid for qid in data.queries if data.qrels.get(qid)]
    chosen = judged[:n_queries] if n_queries else judged
    subset = SimpleNamespace(
        path=data.path,
        corpus=data.corpus,
        qrels={q: data.qrels[q] for q in chosen},
        queries={q: data.queries[q] for q in chosen},
    )
    index, _ = cranfield_index()
    base = open_retriever(index, mode="hybrid", k=100)
    base.search_many(["warm up"], 1)
    llm = chat_llm()
    llm.invoke("warm up", max_tokens=1)
    print(machine())
    print(f"Cranfield, {len(chosen)} of {len(judged)} judged queries (first in file order)\n")
    print("| strategy | MAP | nDCG@10 | s / query | AP better / worse than plain |")
    print("|---|---|---|---|---|")
    plain_ap: dict[str, float] = {}
    samples: dict[str, Any] = {}
    for name in strategies:
        retriever = base if name == "plain" else StrategyRetriever(rag_strategy(name, llm, base))
        started = time.perf_counter()
        result = evaluate_retriever(
            retriever, subset, name=name, metrics=["map", "ndcg_cut_10"], k=100
        )
        seconds = (time.perf_counter() - started) / len(chosen)
        ap = {q: m["map"] for q, m in result.per_query.items()}
        if name == "plain":
            plain_ap, versus = ap, "-"
        else:
            better = sum(ap[q] > plain_ap[q] + 1e-9 for q in ap)
            worse = sum(ap[q] < plain_ap[q] - 1e-9 for q in ap)
            versus = f"{better} / {worse}"
        print(
            f"| {name} | {result.mean['map']:.4f} | {result.mean['ndcg_cut_10']:.4f} | "
            f"{seconds:.2f} | {versus} |",
            flush=True,
        )
        traces = getattr(retriever, "traces", {})
        samples[name] = list(traces.items())[:2]
    print("\nqueries written for the first two questions:")
    print(json.dumps(samples, indent=1)[:3000])
    print(f"\n{machine()}")


def two_hop(k: int, max_hops: int) -> None:
    import tempfile

    from orchestrator.chains.strategies import rag_strategy
    from orchestrator.retrieval import build_index, open_retriever

    questions = [json.loads(line) for line in (TWO_HOP / "questions.jsonl").open()]
    llm = chat_llm()
    llm.invoke("warm up", max_tokens=1)
    with tempfile.TemporaryDirectory() as tmp:
        build_index([TWO_HOP / "corpus.jsonl"], Path(tmp) / "index", modes=MODES)
        index = Path(tmp) / "index"
        print(machine())
        print(f"two-hop set: {len(questions)} questions, k = sources per retrieval\n")
        print(
            "| strategy | answer accuracy | both supporting docs | supporting docs found | "
            "sources / answer | s / question | stop reasons |"
        )
        print("|---|---|---|---|---|---|---|")
        details: dict[str, list[Any]] = {}
        runs = (
            ("plain", k, {}),
            ("plain", k * max_hops, {}),  # as many sources as multi_hop may gather
            ("multi_hop", k, {"max_hops": max_hops}),
        )
        for name, depth, options in runs:
            retriever = open_retriever(index, mode="hybrid", k=depth)
            chain = rag_strategy(name, llm, retriever, **options)
            label = f"{name}, k={depth}"
            rows, stops = [], Counter()
            started = time.perf_counter()
            for q in questions:
                out = chain.invoke(q["question"])
                found = {s["doc_id"] for s in out["sources"]}
                support = set(q["supporting"])
                rows.append(
                    {
                        "id": q["id"],
                        "correct": q["answer"].lower() in out["answer"].lower(),
                        "both": support <= found,
                        "found": len(support & found) / len(support),
                        "sources": len(out["sources"]),
                        "queries": out.get("queries"),
                        "answer": out["answer"][:160],
                    }
                )
                stops[out.get("stop_reason", "-")] += 1
            seconds = (time.perf_counter() - started) / len(questions)
            n = len(rows)
            print(
                f"| {label} | {sum(r['correct'] for r in rows)}/{n} | "
                f"{sum(r['both'] for r in rows)}/{n} | "
                f"{sum(r['found'] for r in rows) / n:.2f} | "
                f"{sum(r['sources'] for r in rows) / n:.1f} | {seconds:.1f} | "
                f"{', '.join(f'{s} {c}' for s, c in stops.items())} |",
                flush=True,
            )
            details[label] = rows
    print("\nper question:")
    for name, rows in details.items():
        for r in rows:
            print(name, json.dumps(r)[:400])
    print(f"\n{machine()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    cran = sub.add_parser("cranfield")
    cran.add_argument("--queries", type=int, default=100, help="first N judged (0 = all)")
    cran.add_argument(
        "--strategies", default=",".join(STRATEGIES), help="comma-separated, plain first"
    )
    hop = sub.add_parser("two-hop")
    hop.add_argument("--k", type=int, default=2, help="sources per retrieval")
    hop.add_argument("--max-hops", type=int, default=3)
    args = parser.parse_args()
    if args.what == "cranfield":
        cranfield(args.queries, tuple(args.strategies.split(",")))
    else:
        two_hop(args.k, args.max_hops)


if __name__ == "__main__":
    main()
