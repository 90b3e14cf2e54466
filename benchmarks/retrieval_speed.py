"""Retrieval speed: query latency per mode at Cranfield size and at 100k synthetic chunks,
what query embedding costs, FAISS with 1 vs 2 threads, BM25 against rank-bm25 on the same
tokens, and index build throughput.

At 100k chunks the document vectors are random unit vectors: embedding 100k chunks with
MiniLM takes hours on this 2-core machine, and search latency does not depend on what the
vectors mean. Query embedding is real (MiniLM) and included in every dense/hybrid latency.
The synthetic chunk texts are drawn from Cranfield's word distribution.

Usage: python benchmarks/retrieval_speed.py [--chunks 100000] [--rank-bm25-queries 10]
       [--only-queries]  (issue 14: short and ~60-word queries, thread rule vs 1 thread)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import Counter
from typing import Any

import numpy as np
from embedding_threads import long_queries
from retrieval_common import CACHE, CRANFIELD, CachedQueries, cranfield_index, machine

from orchestrator.retrieval import IndexSpec, IndexStore, load_beir, open_retriever
from orchestrator.retrieval.bm25 import BM25Index, BM25Params
from orchestrator.retrieval.dense import FaissVectorIndex
from orchestrator.retrieval.retriever import IndexRetriever
from orchestrator.retrieval.search import Searcher, search_config
from orchestrator.retrieval.types import Chunk, chunk_hash


def timed(fn: Any, items: list[Any]) -> dict[str, float]:
    """p50 / p95 milliseconds of ``fn(item)`` over ``items`` (after one warm-up call)."""
    fn(items[0])
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))]}


def latencies(retriever: Any, queries: list[str], k: int = 10) -> dict[str, float]:
    """Per-query latency of ``retriever.invoke`` (LangChain callbacks included)."""
    return timed(lambda q: retriever.invoke(q, k=k), queries)


def embedding_split(path: Any, queries: list[str]) -> dict[str, Any]:
    """Query embedding alone; the hybrid pipeline with the query vectors already computed;
    and both FAISS flat search and that pipeline with 1 and with 2 FAISS threads."""
    import faiss

    retriever = open_retriever(path, mode="hybrid")
    store = retriever.searcher.store
    embedder = store.embedder
    out: dict[str, Any] = {
        "query_embedding": timed(lambda q: embedder.embed_documents([q]), queries)
    }
    store.embedder = CachedQueries(embedder)
    vectors = list(store.embedder.embed_documents(queries))
    before = faiss.omp_get_max_threads()
    try:
        for n in (1, 2):
            faiss.omp_set_num_threads(n)
            out[f"flat_search_{n}_threads"] = timed(
                lambda v: store.dense.search(v[None, :], 100), vectors
            )
            out[f"hybrid_without_embedding_{n}_threads"] = latencies(retriever, queries)
    finally:
        faiss.omp_set_num_threads(before)
        store.embedder = embedder
    return out


def query_lengths(path: Any, short: list[str], long: list[str]) -> dict[str, Any]:
    """Issue 14: p50/p95 per mode for short (Cranfield) and ~60-word queries, query embedding
    included, with the project's own thread rule (``$ORCHESTRATOR_THREADS`` unset, a fresh
    choice) and with one thread (what the rule picks beside a busy process); and the same
    hybrid queries on the old path (sentence-transformers embedding, exact-vector index from
    ``retrieval_embedding.py``) when that index exists."""
    import os

    from orchestrator.retrieval.dense import SentenceTransformerEmbedder
    from orchestrator.settings import _chosen_threads, other_cpu_load, thread_count

    pinned = os.environ.pop("ORCHESTRATOR_THREADS", None)
    out: dict[str, Any] = {"other_cpu_load": round(other_cpu_load(0.5), 2)}
    old_index = CACHE / "embedding-torch"
    try:
        for setting in ("rule", "1"):
            _chosen_threads.cache_clear()
            if setting == "1":
                os.environ["ORCHESTRATOR_THREADS"] = "1"
            threads = thread_count("query-embedding")
            for name, queries in (("short", short), ("long", long)):
                for mode in ("bm25", "dense", "hybrid"):
                    key = f"{mode} {name}, {threads} thread(s)"
                    out[key] = latencies(open_retriever(path, mode=mode), queries)
                if (old_index / "manifest.json").is_file():
                    torch = SentenceTransformerEmbedder(backend="torch")
                    old = open_retriever(old_index, mode="hybrid", embedding=torch)
                    out[f"old path hybrid {name}, {threads} thread(s)"] = latencies(old, queries)
            print(json.dumps(out, indent=1), flush=True)
    finally:
        _chosen_threads.cache_clear()
        if pinned is None:
            os.environ.pop("ORCHESTRATOR_THREADS", None)
        else:
            os.environ["ORCHESTRATOR_THREADS"] = pinned
    return out


def synthetic_texts(n: int, corpus: dict[str, dict[str, Any]], seed: int = 0) -> list[str]:
    words = Counter(w for d in corpus.values() for w in (d["title"] + " " + d["text"]).split())
    vocab, weights = zip(*words.items(), strict=True)
    rng = random.Random(seed)
    return [" ".join(rng.choices(vocab, weights, k=rng.randint(40, 120))) for _ in range(n)]


def synthetic_store(path: Any, texts: list[str], kind: str) -> IndexStore:
    store = IndexStore.create(path, index_kind=kind)
    dim = store.embedder.dimension
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(texts), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.chunks = [Chunk(chunk_hash(str(i), t), str(i), t) for i, t in enumerate(texts)]
    store.ids = np.arange(len(texts), dtype=np.int64)
    start = time.perf_counter()
    store.bm25.add(texts)
    bm25_s = time.perf_counter() - start
    start = time.perf_counter()
    store.vectors, store.dense = vectors, FaissVectorIndex.build(kind, store.ids, vectors)
    faiss_s = time.perf_counter() - start
    store.manifest["embedding"].update(dimension=dim, resolved_kind=kind)
    rate = len(texts) / bm25_s
    store.manifest["build"] = {"bm25_s": bm25_s, "bm25_chunks_per_s": rate, "faiss_s": faiss_s}
    return store


def retriever_on(store: IndexStore, mode: str) -> IndexRetriever:
    retriever = IndexRetriever(index=IndexSpec.of(store.directory), mode=mode)
    retriever._searcher = Searcher(store, search_config(mode=mode))
    return retriever


def bm25_vs_rank_bm25(store: IndexStore, queries: list[str], n: int) -> dict[str, Any]:
    from rank_bm25 import BM25Okapi

    analyzer = store.bm25.analyzer
    tokens = [analyzer(c.text) for c in store.chunks]
    start = time.perf_counter()
    reference = BM25Okapi(tokens)
    ref_build = time.perf_counter() - start
    start = time.perf_counter()
    okapi = BM25Index(analyzer, BM25Params(k1=1.5, b=0.75, epsilon=0.25, idf="okapi"))
    okapi.add_tokens(tokens)
    ours_build = time.perf_counter() - start
    ours_t, ref_t, max_diff = [], [], 0.0
    for query in queries[:n]:
        q = analyzer(query)
        start = time.perf_counter()
        ref_scores = reference.get_scores(q)
        ref_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        ours = okapi.get_scores(q)
        ours_t.append(time.perf_counter() - start)
        max_diff = max(max_diff, float(np.abs(ours - ref_scores).max()))
    topk_t = []
    for query in queries[:200]:
        start = time.perf_counter()
        store.bm25.top_k(query, 10)
        topk_t.append(time.perf_counter() - start)
    ref_ms, ours_ms = statistics.median(ref_t) * 1000, statistics.median(ours_t) * 1000
    return {
        "rank_bm25_ms": ref_ms,
        "ours_ms": ours_ms,
        "speedup": ref_ms / ours_ms,
        "ours_top10_p50_ms": statistics.median(topk_t) * 1000,
        "rank_bm25_build_s": ref_build,
        "ours_build_s": ours_build,
        "max_abs_score_diff": max_diff,
        "queries": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--rank-bm25-queries", type=int, default=10)
    parser.add_argument(
        "--only-queries", action="store_true", help="Only the short/long query latencies."
    )
    args = parser.parse_args()
    print(machine(), flush=True)
    data = load_beir(CRANFIELD)
    queries = list(data.queries.values())
    report: dict[str, Any] = {"machine_start": machine()}
    path, _ = cranfield_index()
    report["query_lengths"] = query_lengths(path, queries[:100], long_queries(100))
    if args.only_queries:
        report["machine_end"] = machine()
        (CACHE / "retrieval_speed_queries.json").write_text(json.dumps(report, indent=1))
        return
    report["cranfield"] = {
        mode: latencies(open_retriever(path, mode=mode), queries[:100])
        for mode in ("bm25", "dense", "hybrid")
    }
    report["cranfield"]["chunks"] = len(open_retriever(path).searcher.store.chunks)
    report["cranfield"] |= embedding_split(path, queries[:100])
    print(json.dumps(report, indent=1), flush=True)
    texts = synthetic_texts(args.chunks, data.corpus)
    big: dict[str, Any] = {"chunks": args.chunks}
    for kind in ("flat", "hnsw"):
        target = CACHE / f"synthetic-{kind}"
        import shutil

        shutil.rmtree(target, ignore_errors=True)
        store = synthetic_store(target, texts, kind)
        big[f"build_{kind}"] = store.manifest["build"]  # BM25 is built (and timed) per kind
        for mode in ("bm25", "dense", "hybrid"):
            if kind == "hnsw" and mode == "bm25":
                continue
            big[f"{mode}_{kind}"] = latencies(retriever_on(store, mode), queries[:100])
        if kind == "flat":
            big["bm25_vs_rank_bm25"] = bm25_vs_rank_bm25(store, queries, args.rank_bm25_queries)
    report["synthetic"] = big
    report["machine_end"] = machine()
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "retrieval_speed.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
