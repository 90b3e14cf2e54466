"""Building a :class:`~orchestrator.agents.pipelines.specs.RagSpec`: retrievers, the answering
floor, the reranker, the model and the strategy, with the library's defaults written once.

- The floor: a retrieved chunk less similar to the question than
  :data:`DEFAULT_MIN_SIMILARITY` is taken as unrelated, so an off-topic question gets "I don't
  know" instead of an answer made up from noise. It applies when the spec leaves
  ``min_similarity`` unset and the index has dense vectors, for every entry point that
  answers (``rag``, ``chat --index``, ``serve``'s ``rag``, ``mcp``'s ``rag``, ``eval rag``),
  and not to search (``search``, ``eval retrieval``), which ranks and keeps every hit.
- Answers are greedy (temperature 0, seed 0) unless the spec's model says otherwise.
"""

from __future__ import annotations

from typing import Any

from orchestrator.agents.pipelines.checks import check_rerank
from orchestrator.agents.pipelines.specs import RagSpec
from orchestrator.agents.pipelines.strategies import (
    Retrievers,
    index_description,
    index_name,
    strategy_runnable,
)
from orchestrator.errors import OptionError
from orchestrator.models import ModelSpec, is_served
from orchestrator.retrieval import IndexSpec

#: Cosine below which a retrieved chunk is taken as unrelated to the question (MiniLM scale).
DEFAULT_MIN_SIMILARITY = 0.3
#: Sampling an answer uses where the spec's model leaves it unset: greedy and repeatable.
ANSWER_SAMPLING = {"temperature": 0.0, "seed": 0}


def answer_model_spec(spec: RagSpec) -> ModelSpec:
    """The spec's model with :data:`ANSWER_SAMPLING` filling what it leaves unset."""
    unset = {k: v for k, v in ANSWER_SAMPLING.items() if getattr(spec.model, k) is None}
    return spec.model.model_copy(update=unset) if unset else spec.model


def check_model(model: ModelSpec) -> None:
    """Read a local GGUF's header now (no weights load), so a wrong path fails at start also
    where the model is used late or not at all (an index build, a search, an MCP server
    that loads it on the first call); a served model is checked when it is made."""
    if model.model is not None and not is_served(model):
        from orchestrator.gguf_info import read_gguf_info
        from orchestrator.settings import resolve_model_path

        read_gguf_info(resolve_model_path(model.model))


def reranker(spec: RagSpec) -> Any:
    """The retriever's ``rerank``: ``llm`` is an :class:`LLMReranker` on the spec's local GGUF
    (a served model cannot score passages in process: an :class:`OptionError`)."""
    if spec.rerank != "llm":
        return spec.rerank
    check_rerank(spec.rerank, spec.model)  # again: a spec's model may be replaced after it is made
    from orchestrator.retrieval.rerank import LLMReranker

    return LLMReranker(model_path=spec.model.model)


def search_mode(spec: RagSpec, index: IndexSpec) -> str:
    """The spec's mode; ``auto``: hybrid when ``index`` has both sides, else its one side."""
    if spec.mode != "auto":
        return spec.mode
    from orchestrator.retrieval.stores import backend_of

    modes = [str(m) for m in backend_of(index).manifest(index).get("modes", [])]
    return "hybrid" if len(modes) != 1 else modes[0]


def open_index_retriever(
    spec: RagSpec, index: IndexSpec, *, rerank: Any = None, floor: bool = True
) -> Any:
    """A retriever over ``index`` as the spec says. ``floor``: apply
    :data:`DEFAULT_MIN_SIMILARITY` when the spec leaves ``min_similarity`` unset and the index
    has dense vectors (answering); without it only an explicit ``min_similarity`` applies."""
    from orchestrator.retrieval import open_retriever

    retriever = open_retriever(
        index,
        mode=search_mode(spec, index),
        rerank=spec.rerank if rerank is None else rerank,
        k=spec.k,
        min_similarity=spec.min_similarity,
        embedding=spec.embedding,
        **spec.search_options,
    )
    if floor and spec.min_similarity is None and retriever.has_vectors:
        retriever.min_similarity = DEFAULT_MIN_SIMILARITY
    return retriever


def open_retrievers(spec: RagSpec, *, floor: bool = True) -> dict[str, tuple[Any, str]]:
    """``{name: (retriever, description)}`` for the spec's indexes, opened now (a bad index
    fails before any model loads); the reranker is made once and shared."""
    shared = reranker(spec)
    out: dict[str, tuple[Any, str]] = {}
    for index in spec.indexes:
        retriever = open_index_retriever(spec, index, rerank=shared, floor=floor)
        name = index_name(index)
        out[name] = (retriever, index_description(retriever, name))
    return out


def prompt_template(prompt: str | None) -> Any:
    """``None``: the library's RAG prompt; a prompt library name; or a template with
    ``{context}`` and ``{question}``."""
    if prompt is None:
        return None
    from orchestrator.prompts import PROMPTS, get_prompt

    if prompt in PROMPTS:
        return get_prompt(prompt)
    if "{context}" in prompt and "{question}" in prompt:
        return prompt
    raise OptionError(
        f"prompt {prompt[:40]!r} is neither a prompt name nor a template with {{context}} and "
        "{question}",
        fix=f"use one of {', '.join(sorted(PROMPTS))}, or write both variables",
    )


def build_rag(spec: RagSpec, *, llm: Any = None, retrievers: Retrievers | None = None) -> Any:
    """The runnable a RAG spec names: input ``{"question": ...}``, streamed parts with
    ``sources``, ``answer`` and the strategy's trace. ``llm`` / ``retrievers``: already-made
    parts to use instead of the spec's (a server shares one loaded model and binds each
    request's sampling to it; the retrievers opened once)."""
    if retrievers is None:
        retrievers = open_retrievers(spec)
    if llm is None:
        from orchestrator.models import chat_model

        llm = chat_model(answer_model_spec(spec))
    return strategy_runnable(
        spec.strategy,
        llm,
        retrievers,
        k=spec.k,
        prompt=prompt_template(spec.prompt),
        options=spec.strategy_options,
    )


def document_turn(spec: RagSpec, system: str | None = None) -> Any:
    """The turn of chat over documents (``chat --index``): the spec's one retriever (the
    answering floor applies) joins each new message's passages to it as numbered sources
    (:class:`~orchestrator.chains.rag.DocumentTurn`)."""
    from orchestrator.chains.rag import DocumentTurn

    ((retriever, _),) = open_retrievers(spec).values()
    return DocumentTurn(retriever, system=system)
