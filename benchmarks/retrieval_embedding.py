"""Embedding throughput on CPU, fp32 against PyTorch dynamic int8 quantisation, and whether
int8 keeps dense MAP on Cranfield within 1% (it is offered only if both hold: >= 2x, <= 1%).

Usage: python benchmarks/retrieval_embedding.py [--sample 256]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from typing import Any

from retrieval_common import CACHE, CRANFIELD, cranfield_index, doc_run, evaluate, fmt, machine

from orchestrator.retrieval import build_index, load_beir, open_retriever
from orchestrator.retrieval.dense import SentenceTransformerEmbedder


def throughput(embedder: SentenceTransformerEmbedder, texts: list[str]) -> float:
    embedder.embed_documents(texts[:32])
    start = time.perf_counter()
    embedder.embed_documents(texts)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=256)
    args = parser.parse_args()
    print(machine(), flush=True)
    data = load_beir(CRANFIELD)
    path, _ = cranfield_index()
    store = open_retriever(path).searcher.store
    texts = [c.text for c in store.chunks[: args.sample]]
    report: dict[str, Any] = {"machine_start": machine()}
    for backend in ("torch", "torch-int8"):
        report[f"{backend}_chunks_per_s"] = throughput(
            SentenceTransformerEmbedder(backend=backend), texts
        )
    int8_dir = CACHE / "cranfield-int8"
    shutil.rmtree(int8_dir, ignore_errors=True)
    build_index(
        [CRANFIELD],
        int8_dir,
        modes=("dense",),
        embedding=SentenceTransformerEmbedder(backend="torch-int8"),
    )
    for name, index in (("torch", path), ("torch-int8", int8_dir)):
        # An index is queried with the model that built it (a manifest never picks one).
        model = SentenceTransformerEmbedder(backend=name)
        retriever = open_retriever(index, mode="dense", feedback_docs=0, embedding=model)
        run = doc_run(retriever, data.queries)
        report[f"{name}_dense"] = evaluate(data.qrels, run)
        print(f"{name:12s} {fmt(report[f'{name}_dense'])}", flush=True)
    report["speedup"] = report["torch-int8_chunks_per_s"] / report["torch_chunks_per_s"]
    report["map_change"] = report["torch-int8_dense"]["map"] / report["torch_dense"]["map"] - 1
    report["machine_end"] = machine()
    (CACHE / "retrieval_embedding.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
