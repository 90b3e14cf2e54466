"""``index``, ``search`` and ``rag``: build a persistent index, query it, answer from it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from orchestrator.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    DsnOpt,
    JsonOpt,
    MaxTokensOpt,
    ModelOpt,
    chat_model,
    check_rerank_local,
    console,
    err_console,
    guarded,
    index_location,
    print_json,
)
from orchestrator.cli.rag_strategies import SearchStrategyOpt, StrategyOpt
from orchestrator.cli.ray_options import RayOpt, RayWorkersOpt, check_ray_workers
from orchestrator.errors import DataError, OptionError

IndexOpt = Annotated[Path, typer.Option("--index", help="Index directory (required).")]
ModeOpt = Annotated[str, typer.Option("--mode", help="dense | bm25 | hybrid.")]
RerankOpt = Annotated[
    str, typer.Option("--rerank", help="none | llm | a local CrossEncoder directory.")
]
EmbeddingOpt = Annotated[
    str | None,
    typer.Option(
        "--embedding",
        help="The local embedding model folder the index was built with (when not the "
        "bundled MiniLM: an index never loads a model its manifest names).",
    ),
]
#: Cosine below which a retrieved chunk is taken as unrelated to the question (MiniLM scale).
DEFAULT_MIN_SIMILARITY = 0.3


def open_rag_retriever(
    index_dir: Path,
    mode: str,
    k: int,
    min_similarity: float | None,
    rerank: Any = "none",
    embedding: str | None = None,
    dsn: str | None = None,
) -> Any:
    """A retriever for answering: ``min_similarity`` defaults to
    :data:`DEFAULT_MIN_SIMILARITY` when the index has dense vectors (else no floor). With
    ``dsn``, ``index_dir`` names an index in that PostgreSQL database."""
    from orchestrator.retrieval import open_retriever

    target, dsn = index_location(index_dir, dsn)
    retriever = open_retriever(
        target,
        mode=mode,
        rerank=rerank,
        k=k,
        min_similarity=min_similarity,
        embedding=embedding,
        dsn=dsn,
    )
    if min_similarity is None and retriever.has_vectors:
        retriever.min_similarity = DEFAULT_MIN_SIMILARITY
    return retriever


def check_model(model: str | None) -> None:
    """Validate a --model GGUF like every command does, also where nothing generative runs
    (``index``; ``search`` without ``--rerank llm``), so a wrong path is never ignored."""
    if model is not None:
        from orchestrator.gguf_info import read_gguf_info
        from orchestrator.settings import resolve_model_path

        read_gguf_info(resolve_model_path(model))


def reranker_for(rerank: str, model: str | None) -> Any:
    """The --rerank spec, with --model as the model of the LLM reranker."""
    check_model(model)
    if rerank == "llm":
        from orchestrator.retrieval.rerank import LLMReranker

        return LLMReranker(model_path=model)
    return rerank


def register(app: typer.Typer) -> None:
    app.command("index")(index)
    app.command("search")(search)
    app.command("rag")(rag)


@guarded
def index(
    index_dir: IndexOpt,
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or directories.")] = None,
    modes: Annotated[str, typer.Option("--modes", help="dense,bm25 | dense | bm25.")] = (
        "dense,bm25"
    ),
    update: Annotated[bool, typer.Option("--update", help="Add to an existing index.")] = False,
    delete: Annotated[
        list[str] | None, typer.Option("--delete", help="Document id to remove (repeatable).")
    ] = None,
    embedding: Annotated[
        str | None,
        typer.Option(
            "--embedding",
            help="Local sentence-transformers model folder (default: the bundled MiniLM); "
            "with --update, the one the index was built with.",
        ),
    ] = None,
    index_kind: Annotated[str, typer.Option("--index-kind", help="auto|flat|hnsw|ivf.")] = "auto",
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=8)] = 256,
    chunk_overlap: Annotated[int, typer.Option("--chunk-overlap", min=0)] = 32,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="local (a directory; the default) | postgres (needs --dsn; implied by --dsn).",
        ),
    ] = None,
    dsn: DsnOpt = None,
    ray: RayOpt = None,
    ray_workers: RayWorkersOpt = None,
) -> None:
    """Build an index from text, Markdown, JSONL, PDF, HTML files or a BEIR directory (or
    update one). Every file left out is named on stderr with the reason. With --backend
    postgres --dsn DSN, --index names the index inside that database."""
    from orchestrator.retrieval import build_index
    from orchestrator.retrieval.ingest import Skipped
    from orchestrator.retrieval.retriever import check_backend, update_index

    check_model(model)
    target, dsn = index_location(index_dir, check_backend(backend, dsn))
    check_ray_workers(ray, ray_workers)
    embedder: Any = embedding
    if ray is not None:  # embed on Ray Data actors (orchestrator.retrieval.ray_embed)
        from orchestrator.retrieval.ray_embed import ray_embedding

        existing = target if update or delete else None
        embedder = ray_embedding(embedding, ray, workers=ray_workers, index=existing, dsn=dsn)

    def on_skip(item: Skipped) -> None:  # the library decides; this prints it as it is found
        err_console.print(f"[yellow]skipped[/] {escape(item.path)}: {escape(item.reason)}")

    if update or delete:
        _check_update(index_dir, modes, index_kind, chunk_size, chunk_overlap, dsn)
        store, added, removed = update_index(
            target,
            paths or [],
            delete or [],
            dsn=dsn,
            embedding=embedder,
            progress=not as_json,
            on_skip=on_skip,
        )
    else:
        if not paths:
            raise OptionError("nothing to index", fix="orchestrator index PATH... --index DIR")
        store = build_index(
            paths,
            target,
            modes=modes.split(","),
            embedding=embedder,
            index_kind=index_kind,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            progress=not as_json,
            on_skip=on_skip,
            dsn=dsn,
        )
        added, removed = _counts(store)["chunks"], 0
    _report_index(store, index_dir, added, removed, as_json)


def _counts(store: Any) -> dict[str, int]:
    """Documents and chunks in a local (in memory) or PostgreSQL (queried) index."""
    if hasattr(store, "counts"):
        return store.counts()  # type: ignore[no-any-return]
    return {"documents": len(store.doc_ids), "chunks": len(store.chunks)}


def _check_update(
    index_dir: Path,
    modes: str,
    index_kind: str,
    chunk_size: int,
    chunk_overlap: int,
    dsn: str | None = None,
) -> None:
    """--update/--delete need a finished index and no build option the manifest fixes."""
    from orchestrator.retrieval.storage import has_parts

    if dsn is None and not (index_dir / "manifest.json").exists():
        unfinished = index_dir.is_dir() and has_parts(index_dir)
        raise DataError(
            f"{index_dir} holds "
            + ("an unfinished build (no manifest)" if unfinished else "no index to update"),
            fix=f"remove it (rm -r {index_dir}) and build again"
            if unfinished
            else "build it first (no --update)",
        )
    build_options = {
        "--modes": (modes, "dense,bm25"),
        "--index-kind": (index_kind, "auto"),
        "--chunk-size": (chunk_size, 256),
        "--chunk-overlap": (chunk_overlap, 32),
    }
    fixed = [name for name, (value, default) in build_options.items() if value != default]
    if fixed:
        raise OptionError(
            f"{', '.join(fixed)} cannot change an existing index (its manifest fixes them)",
            fix="leave them out with --update/--delete, or build a new index",
        )


def _report_index(store: Any, index_dir: Path, added: int, removed: int, as_json: bool) -> None:
    """The summary line (or JSON); the skipped files are those the library reports."""
    counts = _counts(store)
    skipped = store.skipped
    summary = {
        "index": str(index_dir),
        "documents": counts["documents"],
        "chunks": counts["chunks"],
        "added_chunks": added,
        "removed_chunks": removed,
        "modes": store.manifest["modes"],
        "skipped": [s.to_json() for s in skipped],
    }
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"[green]indexed[/] {summary['documents']} documents, "
            f"{summary['chunks']} chunks ({', '.join(summary['modes'])}) in "
            f"{getattr(store, 'label', index_dir)}"
            + (f"; skipped {len(skipped)} (named above)" if skipped else "")
        )


@guarded
def search(
    index_dir: IndexOpt,
    query: Annotated[str | None, typer.Argument(help="The query.")] = None,
    mode: ModeOpt = "hybrid",
    rerank: RerankOpt = "none",
    k: Annotated[int | None, typer.Option("-k", "--k", min=1, help="Results (run: docs).")] = None,
    queries: Annotated[
        Path | None, typer.Option("--queries", help="JSONL queries ({_id, text}) for a run.")
    ] = None,
    run_out: Annotated[Path | None, typer.Option("--run-out", help="TREC run file.")] = None,
    tag: Annotated[str, typer.Option("--tag", help="Run tag (TREC column 6).")] = "orchestrator",
    embedding: EmbeddingOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
    dsn: DsnOpt = None,
    strategy: SearchStrategyOpt = "plain",
) -> None:
    """Search the index; with --queries/--run-out, write a document-level TREC run.
    --model is the GGUF that --rerank llm runs and that writes the --strategy's queries."""
    from orchestrator.cli.rag_strategies import (
        query_strategy_retriever,
        search_trace,
        trace_lines,
    )
    from orchestrator.retrieval import open_retriever

    target, dsn = index_location(index_dir, dsn)
    retriever = open_retriever(
        target,
        mode=mode,
        rerank=reranker_for(rerank, model),
        k=k or 4,
        embedding=embedding,
        dsn=dsn,
    )
    retriever = query_strategy_retriever(retriever, strategy, model)
    if queries is not None or run_out is not None:
        if queries is None or run_out is None or query is not None:
            raise OptionError("a run needs --queries and --run-out, and no QUERY argument")
        _write_run(retriever, queries, run_out, k or 100, tag, as_json)
        return
    if query is None:
        raise OptionError("nothing to search for", fix='orchestrator search "QUERY" --index DIR')
    docs = retriever.invoke(query, k=k or 4)
    trace = search_trace(retriever, query)
    if as_json:
        print_json({"query": query, **trace, "results": [_result(d) for d in docs]})
        return
    from rich.table import Table

    table = Table("#", "score", "doc_id", "text", title=f"{mode} search", show_lines=True)
    for n, doc in enumerate(docs, 1):
        text = " ".join(doc.page_content.split())
        table.add_row(
            str(n),
            f"{doc.metadata['score']:.4f}",
            str(doc.metadata["doc_id"]),
            text[:300] + ("..." if len(text) > 300 else ""),
        )
    console.print(table)
    for line in trace_lines(trace):
        console.print(f"[dim]{escape(line)}[/]")


def _result(doc: Any) -> dict[str, Any]:
    return {**doc.metadata, "text": doc.page_content}


def _write_run(retriever: Any, queries: Path, run_out: Path, k: int, tag: str, quiet: bool) -> None:
    """A document-level TREC run, by the evaluators' rules: queries read by the BEIR reader,
    chunks folded to documents by the core's rule, written by the checked TREC writer."""
    from orchestrator.evals.retrieval import retrieve_run
    from orchestrator.evals.trec import check_tag, write_run
    from orchestrator.retrieval.beir import load_queries
    from orchestrator.retrieval.progress import progress_task

    check_tag(tag)
    wanted = load_queries(queries)
    with progress_task("searching", len(wanted), not quiet) as advance:
        run = retrieve_run(retriever, wanted, k=k, batch_size=32, progress=advance)
    write_run(run, run_out, tag=tag)
    lines = sum(len(docs) for docs in run.values())
    if quiet:
        print_json({"run": str(run_out), "queries": len(wanted), "lines": lines})
    else:
        console.print(f"[green]wrote[/] {lines} lines for {len(wanted)} queries to {run_out}")


@guarded
def rag(
    question: Annotated[str, typer.Argument(help="The question.")],
    indexes: Annotated[
        list[Path],
        typer.Option(
            "--index", help="Index directory (required; repeat it for --strategy route/agentic)."
        ),
    ],
    mode: ModeOpt = "hybrid",
    rerank: RerankOpt = "none",
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Sources to retrieve.")] = 4,
    min_similarity: Annotated[
        float | None,
        typer.Option(
            "--min-similarity",
            help="Drop sources less similar than this (default 0.3 when the index has dense "
            "vectors; a bm25-only index has no similarity to filter on).",
        ),
    ] = None,
    embedding: EmbeddingOpt = None,
    model: ModelOpt = None,
    max_tokens: MaxTokensOpt = 256,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    dsn: DsnOpt = None,
    strategy: StrategyOpt = "plain",
) -> None:
    """Answer from the index, citing numbered sources; says so when nothing relevant is found.
    --model answers (and reranks, with --rerank llm, and writes the --strategy's queries)."""
    from orchestrator.chains.rag import cited_numbers, rag_chain
    from orchestrator.cli.rag_strategies import (
        check_indexes,
        named_retrievers,
        strategy_chain,
        trace_lines,
        trace_of,
    )
    from orchestrator.remote import resolve_endpoint

    check_rerank_local(base_url, api_key, rerank)
    name = check_indexes(strategy, indexes)
    served = resolve_endpoint(base_url, api_key)[0] is not None
    reranker = rerank if served else reranker_for(rerank, model)
    retrievers = named_retrievers(
        indexes,
        lambda index: open_rag_retriever(index, mode, k, min_similarity, reranker, embedding, dsn),
    )
    llm = chat_model(model, max_tokens, base_url=base_url, api_key=api_key, temperature=0.0, seed=0)
    if name == "plain":
        chain = rag_chain(llm, next(iter(retrievers.values()))[0])
    else:
        chain = strategy_chain(name, llm, retrievers, k=k)
    sources: list[dict[str, Any]] = []
    trace: dict[str, Any] = {}
    answer = ""
    for part in chain.stream({"question": question}):
        sources = part.get("sources", sources)
        trace.update(trace_of(part))
        piece = part.get("answer", "")
        answer += piece
        if piece and not as_json:
            sys.stdout.write(piece)
            sys.stdout.flush()
    answer = answer.strip()
    if as_json:
        print_json(
            {
                "answer": answer,
                "sources": sources,
                "citations": cited_numbers(answer, len(sources)),
                **trace,
            }
        )
        return
    sys.stdout.write("\n")
    for source in sources:
        console.print(f"[dim][{source['n']}] {source['doc_id']} ({source['source']})[/]")
    for line in trace_lines(trace):
        console.print(f"[dim]{escape(line)}[/]")
