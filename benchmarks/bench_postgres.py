"""The PostgreSQL + pgvector backend next to the local one, in one run (issue 12).

1. Cranfield quality: MAP and nDCG@10 of the default hybrid pipeline on each backend (goal
   |dMAP| <= 0.01), plus the keyword side alone: the local BM25, BM25 computed in SQL, and
   PostgreSQL's own full-text search (``ts_rank`` over ``to_tsvector('english')``, the query's
   lexemes OR-ed) as the alternative keyword scorer.
2. Query latency: p50/p95 of one ``invoke(query, k=10)`` per Cranfield query, hybrid.
3. Index build throughput (chunks/s): Cranfield (1.4k chunks, the bundled MiniLM embedder:
   the whole build), and N synthetic chunks with a stand-in embedder (hash-seeded random unit
   vectors) so the figure isolates what differs between backends: chunking, BM25 statistics,
   FAISS files vs PostgreSQL COPY + postings + HNSW.

Backends are entries of ``BUILDERS`` (name -> build function) and ``--backends`` picks them,
so another column (e.g. ``ray``) is one more entry. Without ``--dsn`` a throwaway PostgreSQL
is started with pgserver (``orchestrator db start``'s code) and stopped at the end.

Usage: python benchmarks/bench_postgres.py [--backends local,postgres] [--synthetic 100000]
       [--dsn DSN] [--skip-quality] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from retrieval_common import CRANFIELD, doc_run, evaluate, machine

from orchestrator.errors import DataError
from orchestrator.retrieval import IndexSpec, build_index, load_beir, open_retriever

DSN = ""  # set by main(): the database the postgres builders write to


class StandInEmbedder:
    """384-dim unit vectors seeded by each text's hash: costs nothing, so a build timing
    measures the index backend, not the model."""

    name, dimension = "bench-random-384", 384

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
            vec = np.random.default_rng(seed).standard_normal(self.dimension)
            out[i] = vec / np.linalg.norm(vec)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def build_local(source: Any, embedding: Any, work: Path, tag: str) -> Any:
    return build_index(source, work / f"local-{tag}", embedding=embedding)


def build_postgres(source: Any, embedding: Any, work: Path, tag: str) -> Any:
    from orchestrator.retrieval.retriever import drop_index

    name = f"bench-{tag}"
    with contextlib.suppress(DataError):  # not there yet
        drop_index(IndexSpec.of(name, DSN))
    return build_index(source, IndexSpec.of(name, DSN), embedding=embedding)


#: Build functions by backend name: (source, embedding or None, work dir, tag) -> index.
BUILDERS: dict[str, Callable[[Any, Any, Path, str], Any]] = {
    "local": build_local,
    "postgres": build_postgres,
}


def retriever_for(backend: str, work: Path, tag: str, **options: Any) -> Any:
    """The retriever over what ``BUILDERS[backend]`` built (local and postgres only)."""
    if backend == "postgres":
        return open_retriever(IndexSpec.of(f"bench-{tag}", DSN), **options)
    return open_retriever(work / f"local-{tag}", **options)


def timed_build(backend: str, source: Any, embedding: Any, work: Path, tag: str) -> dict:
    start = time.perf_counter()
    store = BUILDERS[backend](source, embedding, work, tag)
    seconds = time.perf_counter() - start
    chunks = store.counts()["chunks"] if hasattr(store, "counts") else len(store.chunks)
    return {"chunks": chunks, "seconds": round(seconds, 2), "chunks_per_s": chunks / seconds}


def fts_run(queries: dict[str, str], tag: str) -> dict[str, dict[str, float]]:
    """PostgreSQL full-text search over the same chunks: a document scores its best chunk's
    ``ts_rank`` for the OR of the query's English lexemes."""
    from orchestrator.retrieval.postgres.connection import database

    sql = """
    WITH q AS (SELECT to_tsquery('simple', coalesce(string_agg(quote_literal(lexeme), ' | '),
                                                     '')) AS q
               FROM unnest(to_tsvector('english', %(text)s)))
    SELECT c.doc_id, max(ts_rank(to_tsvector('english', c.text), q.q, 1)) AS s
    FROM orch_chunks c CROSS JOIN q
    JOIN orch_indexes i ON i.id = c.index_id
    WHERE i.name = %(name)s AND to_tsvector('english', c.text) @@ q.q
    GROUP BY c.doc_id ORDER BY s DESC, c.doc_id LIMIT 100
    """
    db, run = database(DSN), {}
    for qid, text in queries.items():
        params = {"text": text, "name": f"bench-{tag}"}
        rows = db.read(lambda c, p=params: c.execute(sql, p).fetchall())
        run[qid] = {doc: float(score) for doc, score in rows}
    return run


def latencies(retriever: Any, queries: list[str]) -> dict[str, float]:
    retriever.invoke(queries[0], k=10)  # warm: model loaded, connection open
    times = []
    for query in queries:
        start = time.perf_counter()
        retriever.invoke(query, k=10)
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95))}


def cranfield(backends: list[str], work: Path, quality: bool) -> dict[str, Any]:
    data = load_beir(CRANFIELD)
    judged = {q: t for q, t in data.queries.items() if data.qrels.get(q)}
    out: dict[str, Any] = {"build": {}, "quality": {}, "latency": {}}
    for backend in backends:
        out["build"][backend] = timed_build(backend, [CRANFIELD], None, work, "cranfield")
        print(f"cranfield build {backend}: {out['build'][backend]}", flush=True)
    for backend in [b for b in backends if b in ("local", "postgres")] if quality else []:
        for label, options in (("hybrid (default)", {}), ("bm25 only", {"mode": "bm25"})):
            retriever = retriever_for(backend, work, "cranfield", **options)
            scores = evaluate(data.qrels, doc_run(retriever, judged))
            out["quality"][f"{backend} {label}"] = scores
            print(f"{backend} {label}: {scores}", flush=True)
        retriever = retriever_for(backend, work, "cranfield")
        out["latency"][backend] = latencies(retriever, list(judged.values()))
        print(f"{backend} latency: {out['latency'][backend]}", flush=True)
    if quality and "postgres" in backends:
        scores = evaluate(data.qrels, fts_run(judged, "cranfield"))
        out["quality"]["postgres full-text search (ts_rank) only"] = scores
        print(f"postgres fts: {scores}", flush=True)
    return out


def synthetic_docs(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` one-chunk documents of 40-80 words drawn (Zipf-like) from Cranfield's words."""
    words = sorted({w for line in (CRANFIELD / "corpus.jsonl").open() for w in
                    json.loads(line)["text"].lower().split() if w.isalpha()})  # fmt: skip
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    picks = rng.permutation(len(words))
    docs = []
    for i in range(n):
        size = int(rng.integers(40, 81))
        chosen = picks[rng.choice(len(words), size=size, p=weights)]
        docs.append({"doc_id": f"s{i}", "text": " ".join(words[j] for j in chosen)})
    return docs


def main() -> None:
    global DSN
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="local,postgres")
    parser.add_argument("--synthetic", type=int, default=100_000, help="0: skip")
    parser.add_argument("--dsn", default=None, help="Default: a throwaway pgserver.")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-cranfield", action="store_true")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BUILDERS]
    if unknown:
        parser.error(f"unknown backends {unknown}; known: {', '.join(BUILDERS)}")
    report: dict[str, Any] = {"machine_before": machine(), "backends": backends}
    print(report["machine_before"], flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    from orchestrator.retrieval.postgres.server import start_server, stop_server

    DSN = args.dsn or start_server(work / "pgdata")
    try:
        if not args.skip_cranfield:
            report["cranfield"] = cranfield(backends, work, not args.skip_quality)
        if args.synthetic:
            docs = synthetic_docs(args.synthetic)
            report["synthetic"] = {"n": args.synthetic, "build": {}}
            for backend in backends:
                tag = f"synthetic{args.synthetic}"
                result = timed_build(backend, docs, StandInEmbedder(), work, tag)
                report["synthetic"]["build"][backend] = result
                print(f"synthetic {args.synthetic} build {backend}: {result}", flush=True)
    finally:
        if args.dsn is None:
            stop_server(work / "pgdata")
        shutil.rmtree(work, ignore_errors=True)
    report["machine_after"] = machine()
    print(report["machine_after"], flush=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json_out:
        args.json_out.write_text(text)


if __name__ == "__main__":
    main()
