"""``index`` and ``search``: build a persistent index, and query it (``rag`` answers from it:
``orchestrator.cli.rag``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from orchestrator.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    DsnOpt,
    EmbeddingOpt,
    IndexOpt,
    JsonOpt,
    ModelOpt,
    ModeOpt,
    RerankOpt,
    SearchStrategyOpt,
    console,
    err_console,
    given_flags,
    guarded,
    pipeline_spec,
    print_json,
)
from orchestrator.cli.ray_options import RayOpt, RayWorkersOpt, check_ray_workers
from orchestrator.errors import OptionError


def register(app: typer.Typer) -> None:
    app.command("index")(index)
    app.command("search")(search)


@guarded
def index(
    context: typer.Context,
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
    from orchestrator.agents.pipelines.rag import check_model
    from orchestrator.models import ModelSpec
    from orchestrator.retrieval import IndexSpec, build_index
    from orchestrator.retrieval.indexing import check_backend, update_index
    from orchestrator.retrieval.ingest import Skipped

    check_model(ModelSpec(model=model))
    target = IndexSpec.of(index_dir, check_backend(backend, dsn))
    check_ray_workers(ray, ray_workers)
    embedder: Any = embedding
    if ray is not None:  # embed on Ray Data actors (orchestrator.retrieval.ray_embed)
        from orchestrator.retrieval.ray_embed import ray_embedding

        existing = target if update or delete else None
        embedder = ray_embedding(embedding, ray, workers=ray_workers, index=existing)

    def on_skip(item: Skipped) -> None:  # the library decides; this prints it as it is found
        err_console.print(f"[yellow]skipped[/] {escape(item.path)}: {escape(item.reason)}")

    if update or delete:
        fixed = given_flags(context, only=("modes", "index_kind", "chunk_size", "chunk_overlap"))
        if fixed:
            raise OptionError(
                f"{', '.join(fixed)} cannot change an existing index (its manifest fixes them)",
                fix="leave them out with --update/--delete, or build a new index",
            )
        store, added, removed = update_index(
            target,
            paths or [],
            delete or [],
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
        )
        added, removed = store.counts()["chunks"], 0
    _report_index(store, index_dir, added, removed, as_json)


def _report_index(store: Any, index_dir: Path, added: int, removed: int, as_json: bool) -> None:
    """The summary line (or JSON); the skipped files are those the library reports."""
    counts = store.counts()
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
    mode: ModeOpt = None,
    rerank: RerankOpt = None,
    k: Annotated[
        int | None, typer.Option("-k", "--k", min=1, help="Results (default: 4; a run: 100).")
    ] = None,
    queries: Annotated[
        Path | None, typer.Option("--queries", help="JSONL queries ({_id, text}) for a run.")
    ] = None,
    run_out: Annotated[Path | None, typer.Option("--run-out", help="TREC run file.")] = None,
    tag: Annotated[str, typer.Option("--tag", help="Run tag (TREC column 6).")] = "orchestrator",
    embedding: EmbeddingOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
    dsn: DsnOpt = None,
    strategy: SearchStrategyOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Search the index; with --queries/--run-out, write a document-level TREC run.
    --model is the GGUF that --rerank llm runs and that writes the --strategy's queries
    (with --base-url, the served model writes them)."""
    from orchestrator.agents.pipelines.rag import check_model
    from orchestrator.agents.pipelines.search import search_retriever, search_trace

    spec: Any = pipeline_spec(
        "rag",
        None,
        index=index_dir,
        dsn=dsn,
        mode=mode,
        rerank=rerank,
        k=k,
        embedding=embedding,
        model=model,
        base_url=base_url,
        api_key=api_key,
        strategy=strategy,
    )
    check_model(spec.model)
    retriever = search_retriever(spec)
    if queries is not None or run_out is not None:
        if queries is None or run_out is None or query is not None:
            raise OptionError("a run needs --queries and --run-out, and no QUERY argument")
        _write_run(retriever, queries, run_out, k or 100, tag, as_json)
        return
    if query is None:
        raise OptionError("nothing to search for", fix='orchestrator search "QUERY" --index DIR')
    docs = retriever.invoke(query, k=spec.k)
    trace = search_trace(retriever, query)
    if as_json:
        print_json({"query": query, **trace, "results": [_result(d) for d in docs]})
        return
    _show_hits(docs, spec.mode, trace)


def _show_hits(docs: list[Any], mode: str, trace: dict[str, Any]) -> None:
    from rich.table import Table

    from orchestrator.agents.pipelines.answers import trace_lines

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
