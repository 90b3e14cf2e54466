"""``rag``: answer from one or more indexes with a RAG strategy, citing numbered sources.

The command parses its options into a pipeline spec (``spec_from_options("rag", ...)``) and
runs it with the library's ``build``: the same spec ``serve``'s ``rag`` model, ``mcp``'s
``rag`` tool and ``eval rag`` build. ``--print-spec`` prints that spec; ``--spec FILE`` runs
one as written (the rules: :func:`orchestrator.cli.common.pipeline_spec`).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from orchestrator.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    DsnOpt,
    EmbeddingOpt,
    IndexesOpt,
    JsonOpt,
    KOpt,
    MaxTokensOpt,
    MinSimilarityOpt,
    ModelOpt,
    ModeOpt,
    PrintSpecOpt,
    RerankOpt,
    SpecOpt,
    StrategyOpt,
    console,
    guarded,
    pipeline_spec,
    print_json,
    print_spec,
)


def register(app: typer.Typer) -> None:
    app.command("rag")(rag)


@guarded
def rag(
    context: typer.Context,
    question: Annotated[str | None, typer.Argument(help="The question.")] = None,
    indexes: IndexesOpt = None,
    mode: ModeOpt = None,
    rerank: RerankOpt = None,
    k: KOpt = None,
    min_similarity: MinSimilarityOpt = None,
    embedding: EmbeddingOpt = None,
    model: ModelOpt = None,
    max_tokens: MaxTokensOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    dsn: DsnOpt = None,
    strategy: StrategyOpt = None,
    spec_file: SpecOpt = None,
    show_spec: PrintSpecOpt = False,
) -> None:
    """Answer from the index, citing numbered sources; says so when nothing relevant is found.
    --model answers (and reranks, with --rerank llm, and writes the --strategy's queries)."""
    spec = pipeline_spec(
        "rag",
        spec_file,
        context=context,
        inputs=("question",),
        index=indexes or None,
        dsn=dsn,
        mode=mode,
        rerank=rerank,
        k=k,
        min_similarity=min_similarity,
        embedding=embedding,
        model=model,
        max_tokens=max_tokens,
        base_url=base_url,
        api_key=api_key,
        strategy=strategy,
    )
    if show_spec:
        print_spec(spec)
        return
    if question is None:
        from orchestrator.errors import OptionError

        raise OptionError("no question given", fix='orchestrator rag "QUESTION" --index DIR')
    from orchestrator.agents.pipelines import build

    answer(build(spec), question, as_json)


def answer(chain: Any, question: str, as_json: bool) -> None:
    """Stream the answer (text) or print one JSON object; the sources and the strategy's
    trace after it."""
    from orchestrator.agents.pipelines.answers import collect_answer, source_lines, trace_lines

    parts = chain.stream({"question": question})
    if as_json:
        print_json(collect_answer(parts))
        return
    record = collect_answer(parts, on_text=lambda piece: print(piece, end="", flush=True))
    print()
    for line in source_lines(record["sources"]) + trace_lines(record):
        console.print(f"[dim]{escape(line)}[/]")
