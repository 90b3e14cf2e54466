"""Prompting techniques side by side (issue 13): accuracy and time on a small question set.

    python benchmarks/bench_techniques.py [--data benchmarks/data/techniques.jsonl]
        [--max-tokens 96] [--samples 1 5 10] [--per-kind N] [--out results.json]

One model (the embedded SmolLM2-135M unless ``--model``), one run, every question through:
``plain``, ``few-shot`` and ``cot`` (greedy: temperature 0), and ``self-consistency`` with
N = 1, 5 and 10 samples (temperature 0.7, seeds 0..N-1). Sample ``i`` has seed ``i`` in every
run, so the N = 1 and N = 5 votes are taken over the first 1 and 5 of the N = 10 samples
(the samples those runs draw); their time is the time of those samples, read from the
callbacks. The first ``--prefix-checks`` questions also run N = 5 on its own, and the script
fails if its samples differ from the first five of N = 10.

Scores (``normalize_answer`` on both sides): ``contains``: the gold answer (or an alias) is a
run of whole words of the answer; ``exact``: the answer is the gold answer. Times are wall
seconds per question, model load excluded (a warm-up call runs first).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

from orchestrator.chains.techniques import (
    ChainOfThought,
    FewShotAnswer,
    PlainAnswer,
    SelfConsistency,
    normalize_answer,
    vote,
)

DATA = Path(__file__).parent / "data" / "techniques.jsonl"


class CallClock(BaseCallbackHandler):
    """The time at which each model call ended (for the time of a prefix of samples)."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends.append(time.perf_counter())


def load(path: Path, per_kind: int | None) -> list[dict[str, Any]]:
    """The questions; with ``per_kind``, the first that many of each kind (a fixed subset)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if per_kind is None:
        return rows
    kinds = dict.fromkeys(row["kind"] for row in rows)
    return [row for kind in kinds for row in [r for r in rows if r["kind"] == kind][:per_kind]]


def scores(answer: str, row: dict[str, Any]) -> dict[str, bool]:
    got = normalize_answer(answer).split()
    golds = [normalize_answer(g).split() for g in [row["answer"], *row.get("aliases", [])]]
    contains = any(
        g and any(got[i : i + len(g)] == g for i in range(len(got) - len(g) + 1)) for g in golds
    )
    return {"contains": contains, "exact": any(got == g for g in golds)}


def timed(runnable: Any, question: str) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    result = runnable.invoke(question)
    return result, time.perf_counter() - started


def run_question(
    row: dict[str, Any], runnables: dict[str, Any], sc: SelfConsistency, ns: list[int]
) -> dict[str, Any]:
    """Every technique on one question: {technique: {answer, seconds, contains, exact}}."""
    out: dict[str, Any] = {}
    for name, runnable in runnables.items():
        result, seconds = timed(runnable, row["question"])
        out[name] = {
            "answer": result["answer"],
            "seconds": seconds,
            **scores(result["answer"], row),
        }
    clock = CallClock()
    started = time.perf_counter()
    result = sc.invoke(row["question"], {"callbacks": [clock]})
    samples = result["samples"]
    for n in ns:  # two calls per sample; sample n ends with call 2n
        chosen = vote(samples[:n])
        seconds = clock.ends[2 * n - 1] - started
        out[f"self-consistency N={n}"] = {
            "answer": chosen["answer"],
            "votes": chosen["votes"],
            "seconds": seconds,
            **scores(chosen["answer"], row),
        }
    out["_samples"] = [s["answer"] for s in samples]
    return out


def check_prefix(
    llm: Any, rows: list[dict[str, Any]], results: list[dict[str, Any]], n: int
) -> int:
    """Run N = ``n`` alone on the given rows; its samples must be the first ``n`` of the
    largest N's."""
    for row, result in zip(rows, results, strict=False):
        alone = SelfConsistency(llm=llm, samples=n, temperature=0.7).invoke(row["question"])
        if [s["answer"] for s in alone["samples"]] != result["_samples"][:n]:
            sys.exit(f"prefix check failed on {row['id']}: N={n} alone drew other samples")
    return len(rows)


def summary(rows: list[dict[str, Any]], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = [k for k in results[0] if not k.startswith("_")]
    table = []
    for name in names:
        per = [r[name] for r in results]
        kinds = {}
        for kind in ("arithmetic", "fact"):
            chosen = [
                r[name]["contains"]
                for r, row in zip(results, rows, strict=True)
                if row["kind"] == kind
            ]
            kinds[kind] = sum(chosen) / len(chosen) if chosen else float("nan")
        table.append(
            {
                "technique": name,
                "contains": sum(p["contains"] for p in per) / len(per),
                "exact": sum(p["exact"] for p in per) / len(per),
                **kinds,
                "mean_s": statistics.mean(p["seconds"] for p in per),
                "total_s": sum(p["seconds"] for p in per),
            }
        )
    return table


def markdown(table: list[dict[str, Any]], n: int) -> str:
    lines = [
        f"| technique ({n} questions) | contains | exact | arithmetic | fact | s/question "
        "| total s |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in table:
        lines.append(
            f"| {t['technique']} | {t['contains']:.3f} | {t['exact']:.3f} | "
            f"{t['arithmetic']:.3f} | {t['fact']:.3f} | {t['mean_s']:.2f} | {t['total_s']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", default=None, help="GGUF file (default: embedded)")
    parser.add_argument("--max-tokens", type=int, default=96, help="answer / reasoning tokens")
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--per-kind", type=int, default=None, help="first N of each kind only")
    parser.add_argument("--prefix-checks", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="per-question results (JSON)")
    args = parser.parse_args()

    from orchestrator import ChatLlamaCpp

    llm = ChatLlamaCpp(model_path=args.model, temperature=0.0, seed=0, max_tokens=args.max_tokens)
    llm.invoke("Hello.", max_tokens=4)  # load the model before anything is timed
    rows = load(args.data, args.per_kind)
    runnables = {
        "plain": PlainAnswer(llm=llm),
        "few-shot": FewShotAnswer(llm=llm),
        "cot": ChainOfThought(llm=llm),
    }
    sc = SelfConsistency(llm=llm, samples=max(args.samples), temperature=0.7)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    started = time.perf_counter()
    results = []
    for i, row in enumerate(rows, 1):
        results.append(run_question(row, runnables, sc, sorted(args.samples)))
        print(
            f"[{i}/{len(rows)}] {row['id']} done, {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    ns = sorted(args.samples)
    check_n = ns[-2] if len(ns) > 1 else ns[0]
    checked = check_prefix(llm, rows[: args.prefix_checks], results, check_n)
    print(f"load average at end: {os.getloadavg()}; wall {time.perf_counter() - started:.0f} s")
    print(
        f"prefix check: N={check_n} alone drew the first {check_n} samples of N={ns[-1]} "
        f"on {checked} question(s)"
    )
    print(markdown(summary(rows, results), len(rows)))
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "results": results}, indent=1))


if __name__ == "__main__":
    main()
