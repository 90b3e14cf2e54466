"""Ray (issue 12): index build throughput and evaluation wall time, local vs Ray local.

1. Index build (chunks/s), ``build_index`` as ``orchestrator index`` runs it, the whole build
   (reading, chunking, embedding, BM25, FAISS, save), local vs ``--ray local`` with 2 workers:
   - Cranfield (1,400 abstracts, ~1.8k chunks) with the default embedder (MiniLM, ONNX int8);
   - N synthetic one-chunk documents with the same real embedder (``--real N``);
   - N synthetic chunks with a stand-in embedder (hash-seeded unit vectors, no model:
     ``--standin N``), which isolates what Ray adds around the embedding (shipping texts
     and vectors, actor start-up) from the model's cost.
   The Ray figure includes starting the actors but not starting Ray itself (``ray.init``,
   reported separately as ``ray_start_s``): a cluster is started once and serves many builds.
2. Evaluation wall time of the Cranfield suite (``evals/examples/cranfield.yaml``: bm25,
   dense, hybrid over 225 queries), serial vs Ray local (2 workers), with the index already
   built; per-query results are checked equal.

3. Optionally (``--rag N``) the RAG example suite on N questions (answering with the embedded
   GGUF, faithfulness judged by it), serial vs Ray local: items that cost seconds each.

Usage: python benchmarks/bench_scale.py [--real 2000] [--standin 100000] [--skip-eval]
       [--skip-build] [--rag 7] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.retrieval import build_index
from orchestrator.retrieval.dense import index_embedder
from orchestrator.retrieval.ray_embed import RayEmbedder
from orchestrator.scale import connect

# retrieval_common pins ORCHESTRATOR_THREADS=1; here the local path keeps the product's own
# rule (threads by load, issue 14) and each Ray worker runs one thread on its one CPU.
_USER_THREADS = os.environ.get("ORCHESTRATOR_THREADS")
from retrieval_common import CRANFIELD, ROOT, machine  # noqa: E402

if _USER_THREADS is None:
    os.environ.pop("ORCHESTRATOR_THREADS", None)


WORKERS = 2


class StandInEmbedder:
    """384-dim unit vectors seeded by each text's hash: a build timing without the model."""

    name, dimension = "bench-random-384", 384

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
            out[row] = np.random.default_rng(seed).standard_normal(self.dimension)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def synthetic_docs(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` one-chunk documents (60-120 words drawn from Cranfield's vocabulary)."""
    words: list[str] = []
    for line in (CRANFIELD / "corpus.jsonl").read_text().splitlines()[:400]:
        words += json.loads(line).get("text", "").split()
    vocab = sorted(set(words))
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        picks = rng.integers(0, len(vocab), int(rng.integers(60, 120)))
        docs.append({"doc_id": f"s{i}", "text": " ".join(vocab[j] for j in picks)})
    return docs


def timed(source: Any, embedding: Any, work: Path, tag: str) -> dict[str, Any]:
    target = work / tag
    shutil.rmtree(target, ignore_errors=True)
    start = time.perf_counter()
    store = build_index(source, target, embedding=embedding)
    seconds = time.perf_counter() - start
    chunks = len(store.chunks)
    return {
        "chunks": chunks,
        "seconds": round(seconds, 1),
        "chunks_per_s": round(chunks / seconds, 1),
        "vectors": store.vectors,
        "ids": [c.chunk_id for c in store.chunks],
    }


def compare(name: str, local: dict[str, Any], ray: dict[str, Any]) -> dict[str, Any]:
    same_ids = local.pop("ids") == ray.pop("ids")
    diff = float(np.abs(local.pop("vectors") - ray.pop("vectors")).max())
    row = {"local": local, "ray": ray, "same_chunk_ids": same_ids, "max_vector_diff": diff}
    row["speedup"] = round(local["seconds"] / ray["seconds"], 2)
    print(f"{name}: {json.dumps(row)}", flush=True)
    return row


def builds(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    report: dict[str, Any] = {}
    cases: list[tuple[str, Any, Any]] = [("cranfield", [CRANFIELD], index_embedder)]
    if args.real:
        docs = synthetic_docs(args.real)
        cases.append((f"synthetic{args.real}-real", docs, index_embedder))
    if args.standin:
        docs = synthetic_docs(args.standin, seed=1)
        cases.append((f"synthetic{args.standin}-standin", docs, StandInEmbedder))
    local_runs = {name: timed(src, make(), work, f"{name}-local") for name, src, make in cases}
    start = time.perf_counter()
    connect("local", num_cpus=WORKERS)
    report["ray_start_s"] = round(time.perf_counter() - start, 1)
    for name, src, make in cases:
        embedder = RayEmbedder(make(), address="local", workers=WORKERS)
        ray_run = timed(src, embedder, work, f"{name}-ray")
        report[name] = compare(name, local_runs[name], ray_run)
    return report


def suite_eval(work: Path) -> dict[str, Any]:
    from orchestrator.evals.distributed import RayPlan
    from orchestrator.evals.retrieval import ensure_index
    from orchestrator.evals.runner import run_suite
    from orchestrator.evals.suite import load_suite

    spec, base = load_suite(ROOT / "evals" / "examples" / "cranfield.yaml")
    ensure_index([CRANFIELD], None, ("bm25", "dense"))  # built (or found) outside the timing
    start = time.perf_counter()
    serial = run_suite(spec, base, work / "serial", progress=False)
    serial_s = time.perf_counter() - start
    start = time.perf_counter()
    spread = run_suite(spec, base, work / "ray", progress=False, ray=RayPlan("local", WORKERS))
    ray_s = time.perf_counter() - start
    same = all(
        a["per_query"] == b["per_query"]
        for a, b in zip(serial["configurations"], spread["configurations"], strict=True)
    )
    row = {
        "serial_s": round(serial_s, 1),
        "ray_s": round(ray_s, 1),
        "speedup": round(serial_s / ray_s, 2),
        "per_query_equal": same,
        "map": {c["name"]: round(c["mean"]["map"], 4) for c in spread["configurations"]},
    }
    print(f"cranfield suite: {json.dumps(row)}", flush=True)
    return row


def rag_eval(work: Path, questions: int) -> dict[str, Any]:
    """The RAG example suite (``evals/examples/rag.yaml``: the embedded GGUF answers, the
    embedded judge scores faithfulness; ROUGE and non-LLM context recall beside it), hybrid
    configuration, ``questions`` questions: serial vs Ray local, per-sample results compared."""
    from orchestrator.evals.distributed import RayPlan
    from orchestrator.evals.retrieval import ensure_index
    from orchestrator.evals.runner import run_suite
    from orchestrator.evals.suite import load_suite

    spec, base = load_suite(ROOT / "evals" / "examples" / "rag.yaml")
    rows = (base / spec.dataset).read_text().splitlines()[:questions]
    (work / "qa.jsonl").write_text("\n".join(rows) + "\n")
    spec = spec.model_copy(
        update={
            "dataset": str(work / "qa.jsonl"),
            "documents": [str(base / d) for d in spec.documents],
            "metrics": ["faithfulness", "rouge", "non_llm_context_recall"],
            "configurations": spec.configurations[:1],
        }
    )
    ensure_index(spec.documents, None, ("bm25", "dense"))  # built outside the timing
    start = time.perf_counter()
    serial = run_suite(spec, base, work / "rag-serial", progress=False)
    serial_s = time.perf_counter() - start
    start = time.perf_counter()
    spread = run_suite(spec, base, work / "rag-ray", progress=False, ray=RayPlan("local", WORKERS))
    ray_s = time.perf_counter() - start
    a, b = serial["configurations"][0], spread["configurations"][0]
    row = {
        "questions": questions,
        "serial_s": round(serial_s, 1),
        "ray_s": round(ray_s, 1),
        "speedup": round(serial_s / ray_s, 2),
        "per_sample_equal": a["samples"] == b["samples"] and a["failed"] == b["failed"],
    }
    print(f"rag suite: {json.dumps(row)}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=int, default=2000, help="synthetic chunks, real model")
    parser.add_argument("--standin", type=int, default=100_000, help="synthetic, stand-in")
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--rag", type=int, default=0, help="RAG suite questions (0: skip)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        report: dict[str, Any] = {"machine": machine(), "workers": WORKERS}
        if not args.skip_build:
            report["build"] = builds(args, work)
        if not args.skip_eval:
            report["suite"] = suite_eval(work)
        if args.rag:
            report["rag"] = rag_eval(work, args.rag)
        report["machine_after"] = machine()
    print(json.dumps(report, indent=1))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
