"""Embedding throughput of the project against plain sentence-transformers, and the quality of
each embedding path on Cranfield.

Throughput: the same Cranfield chunks, the same model, in one process, alternating round by
round between the project's embedders (the index-build default ``index_embedder()``, ONNX int8;
and the exact-vector default ``SentenceTransformerEmbedder()``, ONNX fp32), each with the
project's thread rule, and plain sentence-transformers with its defaults
(``SentenceTransformer(dir).encode(texts)``: batch 32, torch's own thread count). First on the
machine as it is ("idle"), then beside a process that is always busy ("loaded"). A fresh
thread choice is made per condition, as a new ``orchestrator index`` process would make it.

Quality: a Cranfield index built with each backend, queried with the same backend: MAP,
nDCG@10, R@100, MRR of the default hybrid pipeline and of dense alone.

Usage: python benchmarks/retrieval_embedding.py [--texts 96] [--rounds 3] [--settle 3]
       [--conditions idle,loaded] [--skip-quality]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

_PRESET_THREADS = os.environ.get("ORCHESTRATOR_THREADS")

from embedding_threads import condition, cranfield_chunks, load  # noqa: E402
from retrieval_common import CACHE, CRANFIELD, doc_run, evaluate, fmt  # noqa: E402

if _PRESET_THREADS is None:  # retrieval_common pins 1 thread for the other scripts
    os.environ.pop("ORCHESTRATOR_THREADS", None)

PROJECT = {"project index build (onnx-int8)": "onnx-int8", "project exact (onnx)": "auto"}
QUALITY = {"old: torch": "torch", "exact: onnx": "auto", "new default: onnx-int8": "onnx-int8"}


def plain_sentence_transformers() -> Any:
    """sentence-transformers exactly as a user would call it, defaults throughout."""
    from sentence_transformers import SentenceTransformer

    from orchestrator.retrieval.dense import default_model_dir

    model = SentenceTransformer(str(default_model_dir()), device="cpu", local_files_only=True)
    return lambda texts: model.encode(texts, normalize_embeddings=True)


def throughput(conditions: list[str], texts: list[str], rounds: int, settle: float) -> dict:
    import torch

    from orchestrator.retrieval.dense import SentenceTransformerEmbedder
    from orchestrator.settings import _chosen_threads, other_cpu_load, thread_count

    torch_default = torch.get_num_threads()  # before any project call changes it
    plain = plain_sentence_transformers()
    out: dict[str, Any] = {}
    for cond in conditions:
        with condition(cond):
            time.sleep(settle if cond != "idle" else 0)
            _chosen_threads.cache_clear()  # a new process would choose now
            entry: dict[str, Any] = {"load_before": load()}
            entry["other_cpu_load"] = round(other_cpu_load(0.5), 2)
            entry["project_threads"] = thread_count("batch-embedding")
            entry["plain_threads"] = torch_default
            runs: dict[str, Any] = {}
            for name, backend in PROJECT.items():
                model = SentenceTransformerEmbedder(backend=backend)
                model.embed_documents(texts[:4])
                runs[name] = model.embed_documents

            def reference(batch: list[str]) -> Any:
                torch.set_num_threads(torch_default)
                return plain(batch)

            runs["plain sentence-transformers"] = reference
            reference(texts[:4])
            rates: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(rounds):
                for name, fn in runs.items():
                    start = time.perf_counter()
                    fn(texts)
                    rates[name].append(len(texts) / (time.perf_counter() - start))
            base = rates["plain sentence-transformers"]
            for name, values in rates.items():
                ratio = statistics.median(a / b for a, b in zip(values, base, strict=True))
                entry[name] = {"chunks_per_s": round(statistics.median(values), 1)}
                entry[name] |= {"ratio_to_plain": round(ratio, 2), "rounds": values}
            entry["load_after"] = load()
            out[cond] = entry
            print(cond, json.dumps(entry, indent=1), flush=True)
    _chosen_threads.cache_clear()
    return out


def quality() -> dict[str, Any]:
    from orchestrator.retrieval import build_index, load_beir, open_retriever
    from orchestrator.retrieval.dense import SentenceTransformerEmbedder

    data = load_beir(CRANFIELD)
    out: dict[str, Any] = {}
    for name, backend in QUALITY.items():
        target = CACHE / f"embedding-{backend}"
        shutil.rmtree(target, ignore_errors=True)
        start = time.perf_counter()
        store = build_index(
            [CRANFIELD], target, embedding=SentenceTransformerEmbedder(backend=backend)
        )
        seconds = time.perf_counter() - start
        entry: dict[str, Any] = {"build_s": round(seconds, 1), "load": load()}
        entry["build_chunks_per_s"] = round(len(store.chunks) / seconds, 1)
        for mode, options in (("hybrid", {}), ("dense", {"feedback_docs": 0})):
            model = SentenceTransformerEmbedder(backend=backend)
            retriever = open_retriever(target, mode=mode, embedding=model, **options)
            entry[mode] = evaluate(data.qrels, doc_run(retriever, data.queries))
            print(f"{name:22s} {mode:7s} {fmt(entry[mode])}", flush=True)
        out[name] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--conditions", default="idle,loaded")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    print(f"{os.uname().machine}, {os.cpu_count()} CPUs, load average {load()}", flush=True)
    texts = cranfield_chunks(args.texts)
    report: dict[str, Any] = {"texts": len(texts), "load_start": load()}
    report["throughput"] = throughput(args.conditions.split(","), texts, args.rounds, args.settle)
    if not args.skip_quality:
        report["quality"] = quality()
    report["load_end"] = load()
    out = Path(CACHE) / "retrieval_embedding.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
