"""Thread counts for llama.cpp generation, batch embedding and single-query embedding, each run
with 1..cores threads on the machine as it is ("idle"), beside a second process that is busy
half the time ("half") and beside one that is always busy ("loaded"). The conditions are
interleaved round by round, so each sees the same machine; the load average is recorded next
to every figure (the development machine is shared).

These figures choose ``orchestrator.settings.threads_for_load`` (docs/benchmarks.md,
"Retrieval speed (issue 14)").

Usage: python benchmarks/embedding_threads.py [--rounds 3] [--texts 24] [--queries 20]
       [--tokens 48] [--conditions idle,half,loaded] [--workloads batch,query,generation]
       (``--workloads sizes`` compares texts per ONNX Runtime call)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CRANFIELD = Path(os.environ.get("CRANFIELD_DIR", ROOT.parent / "shared" / "data" / "cranfield"))
CACHE = Path(os.environ.get("ORCHESTRATOR_BENCH_CACHE", Path.home() / ".cache" / "orch-bench"))
HOGS = {
    "idle": None,
    "half": "import time\nwhile True:\n    end = time.perf_counter() + 0.05\n"
    "    while time.perf_counter() < end: pass\n    time.sleep(0.05)\n",
    "loaded": "while True: pass\n",
}


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def cranfield_chunks(n: int) -> list[str]:
    """``n`` Cranfield chunks spread evenly over the collection (the index build's chunking:
    title + abstract pieces of at most 256 word-pieces), so lengths are representative."""
    from orchestrator.retrieval.ingest import Chunker, load_documents

    chunker = Chunker()
    docs = load_documents([CRANFIELD], lambda skipped: None)
    chunks = [c.text for doc in docs for c in chunker.split(doc)]
    step = max(1, len(chunks) // n)
    return chunks[::step][:n]


def long_queries(n: int, words: int = 60) -> list[str]:
    """~``words``-word queries: a Cranfield query followed by the opening of its best-judged
    document (a user pasting a paragraph), cut at ``words`` words."""
    from orchestrator.retrieval import load_beir

    data = load_beir(CRANFIELD)
    out = []
    for qid, text in data.queries.items():
        judged = data.qrels.get(qid)
        if not judged:
            continue
        best = max(judged, key=lambda d: (judged[d], d))
        doc = data.corpus.get(best, {})
        pieces = f"{text} {doc.get('title', '')} {doc.get('text', '')}".split()
        out.append(" ".join(pieces[:words]))
        if len(out) == n:
            break
    return out


@contextmanager
def condition(name: str) -> Iterator[None]:
    """Run the body beside the named hog process (none for ``idle``)."""
    code = HOGS[name]
    hog = subprocess.Popen([sys.executable, "-c", code]) if code else None
    try:
        if hog:
            time.sleep(1.0)  # let the scheduler see it
        yield
    finally:
        if hog:
            hog.kill()
            hog.wait()


@contextmanager
def threads_env(n: int) -> Iterator[None]:
    """``$ORCHESTRATOR_THREADS=n`` for the body (the project reads it on every call)."""
    before = os.environ.get("ORCHESTRATOR_THREADS")
    os.environ["ORCHESTRATOR_THREADS"] = str(n)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("ORCHESTRATOR_THREADS", None)
        else:
            os.environ["ORCHESTRATOR_THREADS"] = before


def rate(fn: Callable[[], float]) -> float:
    """Units per second of one ``fn()`` call, which returns how many units it did."""
    start = time.perf_counter()
    units = fn()
    return units / (time.perf_counter() - start)


def workloads(args: argparse.Namespace) -> dict[str, Callable[[int], float]]:
    """name -> f(threads) returning a rate (higher is better)."""
    from orchestrator.retrieval.dense import SentenceTransformerEmbedder

    texts, queries = cranfield_chunks(args.texts), long_queries(args.queries)
    out: dict[str, Callable[[int], float]] = {}
    wanted = args.workloads.split(",")
    if "batch" in wanted:
        for backend in ("onnx", "onnx-int8", "torch"):
            model = SentenceTransformerEmbedder(backend=backend)
            model.embed_documents(texts[:2])

            def batch(n: int, model: Any = model) -> float:
                with threads_env(n):
                    return rate(lambda: len(model.embed_documents(texts)))

            out[f"batch {backend} (chunks/s)"] = batch
    if "sizes" in wanted:  # texts per ONNX Runtime call (ONNX_BATCH)
        for backend in ("onnx", "onnx-int8"):
            for size in (1, 4, 16, 32):
                model = SentenceTransformerEmbedder(backend=backend, batch_size=size)
                model.embed_documents(texts[:2])

                def sized(n: int, model: Any = model) -> float:
                    with threads_env(n):
                        return rate(lambda: len(model.embed_documents(texts)))

                out[f"batch {backend} size {size} (chunks/s)"] = sized
    if "query" in wanted:
        for backend in ("onnx", "onnx-int8"):
            model = SentenceTransformerEmbedder(backend=backend)
            model.embed_documents(queries[:1])

            def query(n: int, model: Any = model) -> float:
                with threads_env(n):
                    model.embed_query(queries[0])
                    times = []
                    for q in queries:
                        start = time.perf_counter()
                        model.embed_query(q)
                        times.append(time.perf_counter() - start)
                return 1.0 / statistics.median(times)

            out[f"query {backend} (1/p50 s)"] = query
    if "generation" in wanted:
        out["generation llama.cpp (tokens/s)"] = generation(args.tokens)
    return out


def generation(tokens: int) -> Callable[[int], float]:
    """Greedy tokens/s of the embedded SmolLM2 through llama-cpp-python, one model per count."""
    from llama_cpp import Llama

    from orchestrator.settings import available_cores, embedded_model_path

    models = {
        n: Llama(
            str(embedded_model_path()), n_ctx=512, n_threads=n, n_threads_batch=n, verbose=False
        )
        for n in range(1, available_cores() + 1)
    }
    prompt = "Write a long, detailed story about a lighthouse keeper and a storm."
    no_eos = {models[1].token_eos(): -1e9}  # always generate ``tokens`` tokens

    def run(n: int) -> float:
        def once() -> float:
            out = models[n].create_completion(
                prompt, max_tokens=tokens, temperature=0.0, logit_bias=no_eos
            )
            return float(out["usage"]["completion_tokens"])  # type: ignore[index]

        return rate(once)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--texts", type=int, default=24)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--conditions", default="idle,half,loaded")
    parser.add_argument("--workloads", default="batch,query,generation")
    args = parser.parse_args()
    from orchestrator.settings import available_cores

    cores = available_cores()
    print(f"{os.uname().machine}, {cores} cores, load average {load()}", flush=True)
    jobs = workloads(args)
    conditions = args.conditions.split(",")
    rows: dict[str, dict[str, dict[int, list[float]]]] = {}
    loads: dict[str, list[str]] = {c: [] for c in conditions}
    for r in range(args.rounds):
        for cond in conditions:
            with condition(cond):
                loads[cond].append(load())
                for name, job in jobs.items():
                    for n in range(1, cores + 1):
                        by_threads = rows.setdefault(name, {}).setdefault(cond, {})
                        by_threads.setdefault(n, []).append(job(n))
                loads[cond].append(load())
            print(f"round {r + 1} {cond} done, load average {load()}", flush=True)
    report = summarise(rows, loads, cores)
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "embedding_threads.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


def summarise(rows: dict[str, Any], loads: dict[str, list[str]], cores: int) -> dict[str, Any]:
    """Median rate per (workload, condition, threads), and the median per-round ratio of each
    thread count to one thread."""
    report: dict[str, Any] = {"cores": cores, "load_average": loads, "workloads": {}}
    for name, by_cond in rows.items():
        entry: dict[str, Any] = {}
        for cond, by_threads in by_cond.items():
            one = by_threads[1]
            medians = {f"{n} threads": statistics.median(v) for n, v in by_threads.items()}
            ratios = {
                f"{n}/1 ratio": statistics.median(a / b for a, b in zip(v, one, strict=True))
                for n, v in by_threads.items()
                if n > 1
            }
            entry[cond] = {k: round(v, 2) for k, v in (medians | ratios).items()}
        report["workloads"][name] = entry
    return report


if __name__ == "__main__":
    main()
