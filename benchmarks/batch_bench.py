"""Calls made together on the batched engine (issue 20, point 3). Not a test: prints markdown
tables for docs/benchmarks.md.

1. ``batch``: ``ChatLlamaCpp.batch`` of 16 prompts vs 16 ``invoke`` one after another, same
   model and prompts, rounds interleaved (which goes first alternates), the KV cache emptied
   before each; wall time ratio and generated tokens/s (goal: >= 3x).
2. ``self-consistency``: ``SelfConsistency(samples=5)`` with its samples drawn together vs one
   after another (``max_concurrency: 1``, the five chains in turn), interleaved; whether the
   results are the same.
3. ``suite``: the Ragas example suite (``evals/examples/rag.yaml``) run with ``n_parallel=1``
   (one call at a time everywhere) vs the default, after a warm-up that builds its indexes and
   loads both engines; whether the results are the same.

Run: ``python benchmarks/batch_bench.py all --rounds 3`` (or one of ``batch``,
``self-consistency``, ``suite``; ``--parallel N`` sets ``n_parallel``, default the model's).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator import ChatLlamaCpp
from orchestrator.chains.techniques import SelfConsistency

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "Write a short story about a lighthouse keeper.", "Explain how rain forms.",
    "Describe a walk in a forest.", "Why do cats purr?", "Write a poem about the sea.",
    "Explain what a computer does.", "Describe your favourite meal.", "How do birds fly?",
    "Write a letter to a friend.", "Explain how plants grow.", "Describe a busy market.",
    "Why is exercise healthy?", "Write a story about a dragon.", "Explain what a library is.",
    "Describe a winter morning.", "How does a bicycle work?",
]  # fmt: skip
QUESTION = "A farmer has 17 sheep and buys 25 more. How many sheep does he have?"


def model(args: argparse.Namespace, **options: Any) -> ChatLlamaCpp:
    """The embedded model, greedy unless ``options`` say otherwise, with ``--parallel``."""
    parallel = {"n_parallel": args.parallel} if args.parallel else {}
    settings = {"temperature": 0.0, "seed": 0, "max_tokens": args.max_tokens}
    llm = ChatLlamaCpp(**(settings | parallel | options))
    llm.warm_up()
    return llm


def output_tokens(messages: list[Any]) -> int:
    return sum(int((m.usage_metadata or {}).get("output_tokens", 0)) for m in messages)


def interleaved(
    rounds: int, first: Callable[[], Any], second: Callable[[], Any], reset: Callable[[], None]
) -> tuple[list[tuple[float, Any]], list[tuple[float, Any]]]:
    """``rounds`` timed runs of each, the order alternating, ``reset`` before every run."""
    runs: dict[int, list[tuple[float, Any]]] = {0: [], 1: []}
    for r in range(rounds):
        for which in (0, 1) if r % 2 == 0 else (1, 0):
            reset()
            started = time.perf_counter()
            out = (first, second)[which]()
            runs[which].append((time.perf_counter() - started, out))
    return runs[0], runs[1]


def bench_batch(args: argparse.Namespace) -> list[str]:
    llm = model(args)
    scheduler = llm.engine.scheduler
    scheduler.stats["largest_batch"] = 0
    alone, together = interleaved(
        args.rounds,
        lambda: [llm.invoke(p) for p in PROMPTS],
        lambda: llm.batch(list[Any](PROMPTS)),
        llm.engine.reset,
    )
    seconds_alone = [t for t, _ in alone]
    seconds_together = [t for t, _ in together]
    ratios = [a / b for a, b in zip(seconds_alone, seconds_together, strict=True)]
    tps_alone = [output_tokens(o) / t for t, o in alone]
    tps_together = [output_tokens(o) / t for t, o in together]
    texts = [[m.content for m in out] for _, out in alone + together]
    same = all(t == texts[0] for t in texts)
    return [
        f"### batch() of {len(PROMPTS)} prompts vs {len(PROMPTS)} invokes "
        f"({args.max_tokens} tokens, n_parallel={len(scheduler.slots)}, "
        f"largest batch {scheduler.stats['largest_batch']})",
        "",
        "| | wall s (median) | tokens/s (median) |",
        "| --- | --- | --- |",
        f"| 16 invokes in turn | {statistics.median(seconds_alone):.1f} | "
        f"{statistics.median(tps_alone):.1f} |",
        f"| batch() | {statistics.median(seconds_together):.1f} | "
        f"{statistics.median(tps_together):.1f} |",
        "",
        f"Speed-up (median of {args.rounds} interleaved ratios): "
        f"**{statistics.median(ratios):.2f}x** (rounds: {', '.join(f'{r:.2f}' for r in ratios)});"
        f" answers the same both ways: {'yes' if same else 'no'}.",
    ]


def bench_self_consistency(args: argparse.Namespace) -> list[str]:
    llm = model(args)
    technique = SelfConsistency(llm=llm, samples=5, base_seed=0, reasoning_tokens=args.max_tokens)
    alone, together = interleaved(
        args.rounds,
        lambda: technique.invoke(QUESTION, {"max_concurrency": 1}),
        lambda: technique.invoke(QUESTION),
        llm.engine.reset,
    )
    ratios = [a / b for (a, _), (b, _) in zip(alone, together, strict=True)]
    same = all(a == b for (_, a), (_, b) in zip(alone, together, strict=True))
    median = statistics.median
    return [
        f"### Self-consistency, 5 samples ({args.max_tokens} reasoning tokens each)",
        "",
        "| | wall s (median) |",
        "| --- | --- |",
        f"| 5 chains in turn | {median(t for t, _ in alone):.1f} |",
        f"| samples together | {median(t for t, _ in together):.1f} |",
        "",
        f"Speed-up (median of {args.rounds} interleaved ratios): **{median(ratios):.2f}x**; "
        f"results the same both ways: {'yes' if same else 'no'}.",
    ]


def bench_suite(args: argparse.Namespace) -> list[str]:
    from orchestrator.evals.runner import run_suite
    from orchestrator.evals.suite import load_suite

    suite, base = load_suite(ROOT / "evals" / "examples" / "rag.yaml")
    one = {"n_parallel": 1}
    default = {"n_parallel": args.parallel} if args.parallel else {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["ORCHESTRATOR_CACHE"] = cache  # indexes built once, by the warm-up
        warm_up(suite, base, [one, default])
        alone, together = interleaved(
            args.rounds,
            lambda: run_suite(suite, base, None, progress=False, models=one),
            lambda: run_suite(suite, base, None, progress=False, models=default),
            lambda: None,
        )
    ratios = [a / b for (a, _), (b, _) in zip(alone, together, strict=True)]
    changed = [d for (_, a), (_, b) in zip(alone, together, strict=True) for d in _changed(a, b)]
    median = statistics.median
    questions = len((base / suite.dataset).read_text().splitlines())
    return [
        f"### Ragas example suite ({questions} questions x {len(suite.configurations)} "
        f"configurations x {len(suite.metrics)} metrics)",
        "",
        "| | wall s (median) |",
        "| --- | --- |",
        f"| n_parallel=1 | {median(t for t, _ in alone):.0f} |",
        f"| n_parallel={args.parallel or 'default'} | {median(t for t, _ in together):.0f} |",
        "",
        f"Speed-up (median of {args.rounds} interleaved ratios): **{median(ratios):.2f}x**; "
        f"results the same both ways: {'no' if changed else 'yes'}.",
        *changed,
    ]


def warm_up(suite: Any, base: Path, models: list[dict[str, Any]]) -> None:
    """One question, one cheap metric, each ``models``: builds the indexes the suite's
    configurations search and loads each engine, so no timed run pays for them."""
    from orchestrator.evals.runner import run_suite

    first = (base / suite.dataset).read_text().splitlines()[0]
    with tempfile.TemporaryDirectory() as folder:
        dataset = Path(folder) / "one.jsonl"
        dataset.write_text(first + "\n")
        small = suite.model_copy(update={"dataset": str(dataset), "metrics": ["rouge"]})
        for fields in models:
            run_suite(small, base, None, progress=False, models=fields)


def _changed(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """What must not change and did: a sample's record (answer, scores) or a failure."""
    lines = []
    for a, b in zip(first["configurations"], second["configurations"], strict=True):
        for x, y in zip(a["samples"], b["samples"], strict=True):
            keys = sorted(k for k in {*x, *y} if x.get(k) != y.get(k))
            if keys:
                lines.append(f"- {a['name']} / {x['id']}: {', '.join(keys)} differ")
        for run, mine, other in (("first", a, b), ("second", b, a)):
            for f in [f for f in mine["failed"] if f not in other["failed"]]:
                where = f"- {a['name']} / {f['id']}: {f['metric']}"
                lines.append(f"{where} failed only in the {run} run ({f['reason']})")
    return lines


BENCHMARKS = {
    "batch": bench_batch,
    "self-consistency": bench_self_consistency,
    "suite": bench_suite,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", choices=[*BENCHMARKS, "all"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--parallel", type=int, help="n_parallel (default: the model's)")
    args = parser.parse_args()
    chosen = list(BENCHMARKS) if args.which == "all" else [args.which]
    print(f"{platform.machine()}, {os.cpu_count()} CPUs; load average {os.getloadavg()}\n")
    for name in chosen:
        started = time.perf_counter()
        lines = BENCHMARKS[name](args)
        print("\n".join(lines), flush=True)
        print(f"\n({time.perf_counter() - started:.0f} s; load average {os.getloadavg()})\n")


if __name__ == "__main__":
    main()
