"""The eval gate on Cranfield (issue 23): false alarms of A/A runs, and planted drops caught.

Every repetition gates run B against run A as ``orchestrator eval SUITE --baseline A
--fail-drop map=SIZE`` does (``evals.gate``: paired permutation test per query, seeded, and
a drop of at least SIZE), on the 225 judged Cranfield queries, BM25 over one cached index:

- ``same``: A/A, the same configuration twice (deterministic: the runs agree query by query);
- ``sampled``: A/A of a seeded sampled query rewriter: each query word is dropped with
  probability ``--drop-words`` (seeds 2i and 2i+1: two draws of the same configuration);
- ``planted``: run A full BM25, run B a weakened retriever: the same rewriter (seed i) with
  its word-drop probability found by bisection so that MAP drops by ``--planted`` (0.05, within
  0.005): a real drop, which the gate should catch.

    python benchmarks/eval_gate.py                         # 20 repetitions of each
    python benchmarks/eval_gate.py --drop-words 0.25 --planted 0.05 --reps 5 --json
    python benchmarks/eval_gate.py --pairs RUN_A RUN_B [RUN_C RUN_D ...]  # saved runs, A/A

``--pairs`` gates saved ``--out`` directories pairwise (e.g. two suite runs of an LLM query
rewriter at temperature > 0 with different seeds).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.evals.gate import baseline_comparison, gate
from orchestrator.evals.items import load_items

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "cranfield"
METRICS = ["map", "ndcg_cut_10", "P_10"]


def _retriever(dataset: Path) -> tuple[Any, Any]:
    from orchestrator.evals.retrieval import ensure_index, spec_retriever
    from orchestrator.evals.runner import pipeline_spec
    from orchestrator.evals.suite import PipelineConfig
    from orchestrator.retrieval import load_beir

    index = ensure_index([dataset], None, ("bm25",))
    spec = pipeline_spec(PipelineConfig(name="bm25", mode="bm25"), ROOT, index, k=100)
    return spec_retriever(spec), load_beir(dataset, "test")


def rewrite(text: str, rng: random.Random, p: float) -> str:
    """The sampled rewriter: each word kept with probability 1 - p (at least one kept)."""
    words = text.split()
    kept = [w for w in words if rng.random() >= p]
    return " ".join(kept or words[:1])


def run(retriever: Any, beir: Any, p: float = 0.0, seed: int | None = None) -> dict[str, Any]:
    """One run as a results.json payload (one configuration, ``bm25``)."""
    from orchestrator.evals.retrieval import evaluate_retriever

    dataset = beir
    if seed is not None:
        rng = random.Random(seed)
        queries = {q: rewrite(t, rng, p) for q, t in sorted(beir.queries.items())}
        dataset = replace(beir, queries=queries)
    result = evaluate_retriever(retriever, dataset, name="bm25", metrics=METRICS, k=100)
    return {"kind": "retrieval", "metrics": METRICS, "configurations": [result.to_json()]}


def judged(a: dict[str, Any], b: dict[str, Any], size: float, seed: int) -> dict[str, Any]:
    comparisons = baseline_comparison(b, a, seed=seed)
    failures = gate(b, baseline=a, fail_drop={"map": size}, comparisons=comparisons)
    found = comparisons[0]["metrics"]["map"]
    keys = ("difference", "ci_low", "ci_high", "p_value", "mde")
    return {"failed": bool(failures), **{k: found[k] for k in keys}, "worse": len(found["worse"])}


def planted(
    retriever: Any, beir: Any, full: dict[str, Any], target: float, seed: int
) -> tuple[dict[str, Any], float, float]:
    """The weakened run whose MAP is ``target`` below ``full``'s (bisection on the word-drop
    probability, seed fixed), with that probability and the drop found."""
    base = full["configurations"][0]["mean"]["map"]
    low, high, p = 0.0, 0.9, 0.45
    for _ in range(8):
        p = (low + high) / 2
        weak = run(retriever, beir, p, seed)
        drop = base - weak["configurations"][0]["mean"]["map"]
        if abs(drop - target) <= 0.005:
            break
        low, high = (p, high) if drop < target else (low, p)
    return weak, p, drop


def repetitions(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    retriever, beir = _retriever(args.dataset)
    full = run(retriever, beir)
    out: dict[str, list[dict[str, Any]]] = {"same": [], "sampled": [], "planted": []}
    for i in range(args.reps):
        again = run(retriever, beir)
        out["same"].append(judged(full, again, args.fail_drop, i))
        a = run(retriever, beir, args.drop_words, 2 * i)
        b = run(retriever, beir, args.drop_words, 2 * i + 1)
        out["sampled"].append(judged(a, b, args.fail_drop, i))
        weak, p, drop = planted(retriever, beir, full, args.planted, 100 + i)
        found = judged(full, weak, args.fail_drop, i)
        out["planted"].append({**found, "drop_words": round(p, 4), "planted_drop": drop})
        print(f"rep {i + 1}/{args.reps} done", file=sys.stderr)
    return out


def pairs(paths: list[Path], size: float) -> list[dict[str, Any]]:
    """Gate saved runs pairwise: (A, B), (C, D), ..."""
    out = []
    for i, (a, b) in enumerate(zip(paths[::2], paths[1::2], strict=True)):
        results = [json.loads((p / "results.json").read_text()) for p in (a, b)]
        items = [load_items(p) for p in (a, b)]
        assert all(items), "saved runs hold per-item values"
        out.append({"a": str(a), "b": str(b), **judged(results[0], results[1], size, i)})
    return out


def summary(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    diffs = [r["difference"] for r in rows]
    return {
        "kind": name,
        "gate_failed": f"{sum(r['failed'] for r in rows)}/{len(rows)}",
        "difference_mean": statistics.fmean(diffs),
        "difference_range": [min(diffs), max(diffs)],
        "p_min": min(r["p_value"] for r in rows),
        "mde_mean": statistics.fmean(r["mde"] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DATA)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--drop-words", type=float, default=0.25, help="A/A rewriter")
    parser.add_argument("--planted", type=float, default=0.05, help="MAP drop to plant")
    parser.add_argument("--fail-drop", type=float, default=0.02)
    parser.add_argument("--pairs", type=Path, nargs="*")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    found = {"pairs": pairs(args.pairs, args.fail_drop)} if args.pairs else repetitions(args)
    report = {
        "summary": [summary(k, v) for k, v in found.items()],
        "seconds": round(time.perf_counter() - started, 1),
        "settings": {k: getattr(args, k) for k in ("reps", "drop_words", "planted", "fail_drop")},
    }
    if args.json:
        report["runs"] = found
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
