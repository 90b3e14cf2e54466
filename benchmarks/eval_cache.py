"""A cached re-run of the RAG example suite against its first run (issue 23; goal >= 20x).

Both runs are ``orchestrator eval SUITE --out DIR --json`` in their own process (imports and
model loading counted in both), with one fresh ``$ORCHESTRATOR_HOME`` (so the first run starts
with an empty evaluation cache and the second finds everything) and the suite's index built
beforehand (an index is cached apart, ``$ORCHESTRATOR_CACHE``, and is not what is measured).

    ORCHESTRATOR_THREADS=1 python benchmarks/eval_cache.py            # evals/examples/rag.yaml
    python benchmarks/eval_cache.py --samples 3                        # the first 3 questions

Three runs: the first (empty cache), the second and the third (from the cache: the second also
makes any call the first did not finish, e.g. a judgement past its time budget). Prints the
wall times, the speedups over the first run, each run's cache hits and misses and scores not
computed, and whether the means equal the first run's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "evals" / "examples" / "rag.yaml"


def _suite(samples: int | None, folder: Path) -> Path:
    """The example suite, over its first ``samples`` questions when given."""
    if samples is None:
        return SUITE
    lines = (SUITE.parent / "rag_qa.jsonl").read_text().splitlines()[:samples]
    (folder / "qa.jsonl").write_text("\n".join(lines) + "\n")
    text = SUITE.read_text().replace("dataset: rag_qa.jsonl", f"dataset: {folder / 'qa.jsonl'}")
    text = text.replace("documents: [rag_docs]", f"documents: [{SUITE.parent / 'rag_docs'}]")
    path = folder / "suite.yaml"
    path.write_text(text)
    return path


def _prebuild(suite: Path) -> None:
    """Build (or find) the cached indexes the configurations use."""
    from orchestrator.evals.retrieval import ensure_index
    from orchestrator.evals.runner import index_modes
    from orchestrator.evals.suite import load_suite, resolve

    spec, base = load_suite(suite)
    documents = [resolve(base, d) or d for d in spec.documents]
    for config in spec.configurations:
        ensure_index(documents, None, index_modes(config))


def _run(suite: Path, out: Path, env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    subprocess.run(
        ["orchestrator", "eval", str(suite), "--out", str(out), "--json"],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    return seconds, json.loads((out / "results.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=None, help="first N questions only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eval-cache-") as scratch:
        folder = Path(scratch)
        suite = _suite(args.samples, folder)
        _prebuild(suite)
        env = {**os.environ, "ORCHESTRATOR_HOME": str(folder / "home")}
        runs = []
        for name in ("first", "second", "third"):
            seconds, results = _run(suite, folder / name, env)
            print(f"{name} run: {seconds:.1f} s", file=sys.stderr)
            runs.append((seconds, results))
    print(json.dumps(_summary(runs, args.samples), indent=2))


def _summary(runs: list[tuple[float, dict[str, Any]]], samples: int | None) -> dict[str, Any]:
    """Wall times, speedups over the first run, cache counts, failures, equal means."""
    configs = [r["configurations"] for _, r in runs]
    means = [{c["name"]: c["mean"] for c in r} for r in configs]
    return {
        "suite": str(SUITE),
        "samples": samples or "all",
        "seconds": [round(s, 1) for s, _ in runs],
        "speedup": [round(runs[0][0] / s, 1) for s, _ in runs[1:]],
        "cache": [{c["name"]: c.get("cache") for c in r} for r in configs],
        "not_scored": [
            [(f["id"], f["metric"], f["reason"][:60]) for c in r for f in c["failed"]]
            for r in configs
        ],
        "means_equal_to_first": [m == means[0] for m in means[1:]],
    }


if __name__ == "__main__":
    main()
