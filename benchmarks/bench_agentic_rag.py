"""Agentic RAG vs the plain RAG chain on the two-hop set (issue 13), embedded model.

    python benchmarks/bench_agentic_rag.py [--k 2] [--max-iterations 4]

Both run on one hybrid index of ``benchmarks/data/two_hop`` (12 questions, each needing two
documents), in one run, with SmolLM2-135M (the embedded GGUF) as a greedy chat model. Per
strategy: answer accuracy (the answer contains the expected words), questions with both
supporting documents among the passages read (plain: its sources; agentic: every passage its
searches returned), the mean share of supporting documents read, searches per question,
citations per answer that name a passage read, citations flagged as never retrieved, stop
reasons, and seconds per question.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from retrieval_common import MODES, ROOT, machine

TWO_HOP = ROOT / "benchmarks" / "data" / "two_hop"


def run(name: str, runnable: Any, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for q in questions:
        started = time.perf_counter()
        out = runnable.invoke({"question": q["question"]})
        read = out["sources"]
        support = set(q["supporting"])
        found = support & {r["doc_id"] for r in read}
        rows.append(
            {
                "id": q["id"],
                "correct": q["answer"].lower() in out["answer"].lower(),
                "both": found == support,
                "found": len(found) / len(support),
                "searches": len(out.get("hops", [None])),
                "citations": len(out["citations"]),
                "invalid": len(out.get("invalid_citations", [])),
                "stop": out.get("stop_reason", "answered"),
                "seconds": time.perf_counter() - started,
                "queries": [q2["query"] for q2 in out.get("queries", [])],
                "answer": out["answer"][:160],
            }
        )
    return rows


def row(name: str, rows: list[dict[str, Any]]) -> str:
    n = len(rows)
    stops = Counter(r["stop"] for r in rows)
    return (
        f"| {name} | {sum(r['correct'] for r in rows)}/{n} | {sum(r['both'] for r in rows)}/{n} "
        f"| {sum(r['found'] for r in rows) / n:.2f} | {sum(r['searches'] for r in rows) / n:.1f} "
        f"| {sum(r['citations'] for r in rows) / n:.1f} | {sum(r['invalid'] for r in rows)} "
        f"| {', '.join(f'{s} {c}' for s, c in stops.items())} "
        f"| {sum(r['seconds'] for r in rows) / n:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, default=2, help="passages per retrieval")
    parser.add_argument("--max-iterations", type=int, default=4)
    args = parser.parse_args()

    from orchestrator import ChatLlamaCpp
    from orchestrator.agents import agentic_rag
    from orchestrator.chains.rag import rag_chain
    from orchestrator.retrieval import build_index, open_retriever

    questions = [json.loads(line) for line in (TWO_HOP / "questions.jsonl").open()]
    llm = ChatLlamaCpp(temperature=0.0, seed=0, max_tokens=128)
    llm.invoke("warm up", max_tokens=1)
    with tempfile.TemporaryDirectory() as tmp:
        build_index([TWO_HOP / "corpus.jsonl"], Path(tmp) / "index", modes=MODES)
        retriever = open_retriever(Path(tmp) / "index", mode="hybrid", k=args.k)
        description = "Short documents about places, people and things. Input: keywords."
        strategies = {
            "plain": rag_chain(llm, retriever),
            "agentic": agentic_rag(
                {"documents": (retriever, description)},
                llm,
                k=args.k,
                max_iterations=args.max_iterations,
            ),
        }
        print(machine())
        print(
            f"two-hop set: {len(questions)} questions, k={args.k}, "
            f"max_iterations={args.max_iterations}\n"
        )
        print(
            "| strategy | answer accuracy | both supporting docs read | supporting docs read "
            "| searches / q | citations / answer | flagged citations | stop reasons | s / q |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        details = {}
        for name, runnable in strategies.items():
            details[name] = run(name, runnable, questions)
            print(row(name, details[name]), flush=True)
    print("\nper question:")
    for name, rows in details.items():
        for r in rows:
            print(name, json.dumps(r)[:400])
    print(f"\n{machine()}")


if __name__ == "__main__":
    main()
