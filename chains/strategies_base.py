"""What every RAG strategy shares: the model calls that write queries, fusion, the chain base.

A strategy changes how sources are *found* (which queries, which index, how many rounds);
how they are *answered* is the plain RAG chain's own step (:class:`~orchestrator.chains.rag.
RAGChain`: numbered sources, ``[n]`` citations, "I don't know" without calling the model when
nothing relevant was found). :class:`StrategyChain` is therefore a ``RAGChain`` whose
``retrieve`` is the strategy, and whose output adds what the strategy did.

Model calls that write queries are grammar-constrained: a chat model (local or served) gets
``response_format={"type": "json_schema", ...}``, an Orchestrator completion model (``LlamaCpp``)
the same schema as a GBNF ``grammar=``; any other model is asked the same prompt unconstrained
and its reply must still parse. Schemas bound every string and list, so a small model cannot
ramble past its token budget. Question and document text fill the prompt library's templates
through :func:`~orchestrator.prompts.templates.instruction_prompt`, which defuses them.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig

from orchestrator.chains.llm_chain import reject_call_options
from orchestrator.chains.rag import RAGChain, _question, source_records
from orchestrator.errors import DataError
from orchestrator.prompts.templates import instruction_prompt, model_of
from orchestrator.retrieval.fusion import rrf_fusion

#: Longest query a strategy's model may write (characters); a few search terms fit easily.
QUERY_CHARS = 160
#: Default number of sources when neither the chain nor the retriever says (as ``IndexRetriever``).
DEFAULT_K = 4

Trace = dict[str, Any]


def _is_chat_model(llm: Any) -> bool:
    inner = llm
    while isinstance(inner, RunnableBinding):
        inner = inner.bound
    return isinstance(inner, BaseChatModel)


def constraint_kwargs(llm: Any, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The call option that holds ``llm``'s output to ``schema``: ``response_format`` for chat
    models, a GBNF ``grammar`` for Orchestrator's ``LlamaCpp``, nothing for other models (they
    are not known to take either; their reply is parsed as it comes)."""
    if _is_chat_model(llm):
        return {"response_format": {"type": "json_schema", "schema": dict(schema)}}
    if model_of(llm) is not None:
        from orchestrator.llama.json_grammar import schema_gbnf

        return {"grammar": schema_gbnf(schema, label="query schema")}
    return {}


def generate_text(
    llm: Runnable[Any, Any],
    template: str,
    values: Mapping[str, Any],
    *,
    max_tokens: int,
    config: RunnableConfig | None = None,
    **call: Any,
) -> str:
    """``template`` filled with defused ``values``, sent to ``llm`` as one user turn; its text."""
    prompt = instruction_prompt(llm, template)
    chain = prompt | llm.bind(max_tokens=max_tokens, **call) | StrOutputParser()
    return str(chain.invoke(dict(values), config)).strip()


def generate_json(
    llm: Runnable[Any, Any],
    template: str,
    values: Mapping[str, Any],
    schema: Mapping[str, Any],
    *,
    max_tokens: int,
    config: RunnableConfig | None = None,
) -> dict[str, Any]:
    """A JSON object matching ``schema`` (grammar-constrained where the model allows it)."""
    text = generate_text(
        llm,
        template,
        values,
        max_tokens=max_tokens,
        config=config,
        **constraint_kwargs(llm, schema),
    )
    try:
        reply = json.loads(text, strict=False)
    except json.JSONDecodeError:
        reply = None
    if not isinstance(reply, dict):
        raise DataError(
            f"the model's reply is not the JSON object the strategy asked for: {text[:200]!r}",
            fix="use a llama.cpp model or a server that applies JSON schemas (the reply is then "
            "grammar-constrained), or raise the model's max_tokens",
        )
    return reply


#: A query: a letter or digit first (a small model otherwise writes ``"..."`` or ``"./.."``),
#: then up to :data:`QUERY_CHARS` characters on one line, no braces (it otherwise closes the
#: JSON in its head and keeps writing).
QUERY_PATTERN = f'^[A-Za-z0-9][^"\\\\{{}}]{{2,{QUERY_CHARS - 1}}}$'


def query_field() -> dict[str, Any]:
    """The JSON schema of one query string (see :data:`QUERY_PATTERN`)."""
    return {"type": "string", "pattern": QUERY_PATTERN}


def string_schema(name: str) -> dict[str, Any]:
    """``{"<name>": "<a query>"}``."""
    return {"type": "object", "properties": {name: query_field()}, "required": [name]}


def json_budget(items: int = 1) -> int:
    """Tokens enough for any reply of ``items`` strings of at most :data:`QUERY_CHARS` (every
    token writes at least one character), so a constrained reply is never cut off."""
    return items * (QUERY_CHARS + 8) + 16


def clean_queries(queries: Sequence[Any], *, keep: Sequence[str] = ()) -> list[str]:
    """Distinct, non-blank queries (case- and space-insensitive), ``keep`` first."""
    seen: set[str] = set()
    out: list[str] = []
    for query in [*keep, *queries]:
        text = " ".join(str(query).split())
        key = text.lower()
        if text and key not in seen:
            seen.add(key)
            out.append(text)
    return out


def chunk_key(doc: Document) -> Hashable:
    """What makes two retrieved chunks the same one (for fusion and "new source" checks)."""
    meta = doc.metadata
    key = meta.get("chunk_id") or doc.id
    return key if key is not None else (meta.get("doc_id"), doc.page_content)


def fuse_documents(
    lists: Sequence[Sequence[Document]], k: int, *, labels: Sequence[str] | None = None
) -> list[Document]:
    """Reciprocal-rank fusion (:func:`orchestrator.retrieval.fusion.rrf_fusion`) of ranked
    chunk lists, top ``k``. A chunk keeps the metadata of its best-ranked copy; ``score`` and
    ``fused`` become the fused score (RRF needs no calibration between lists that came from
    different queries or indexes). With ``labels`` (one per list, e.g. an index name), chunks
    of different lists never merge and carry ``index=<label>``."""
    first: dict[Hashable, Document] = {}
    ranked: list[list[tuple[Hashable, float]]] = []
    for i, docs in enumerate(lists):
        pairs = []
        for doc in docs:
            key = (labels[i], chunk_key(doc)) if labels is not None else chunk_key(doc)
            if key not in first:
                meta = dict(doc.metadata)
                if labels is not None:
                    meta["index"] = labels[i]
                first[key] = Document(page_content=doc.page_content, metadata=meta, id=doc.id)
            pairs.append((key, float(doc.metadata.get("score", 0.0))))
        ranked.append(pairs)
    out = []
    for key, score in rrf_fusion(ranked)[:k]:
        doc = first[key]
        doc.metadata["score"] = score
        doc.metadata["fused"] = score
        out.append(doc)
    return out


def search_many_docs(retriever: Any, queries: Sequence[str], k: int) -> list[list[Document]]:
    """Top ``k`` per query in one batch (ours embed all queries at once)."""
    from orchestrator.retrieval import search_many

    return [list(docs) for docs in search_many(retriever, list(queries), k)]


class StrategyChain(RAGChain):
    """A :class:`RAGChain` whose retrieval is a strategy (this base: plain, one query).

    Subclasses write :meth:`plan` (the model's part: queries for one question) and
    :meth:`search_plans` (retrieval for many plans in one batch), or override
    :meth:`retrieve_traced` when retrieval is a loop (multi-hop, routing). The output is the
    RAG chain's ``answer``, ``sources``, ``citations`` and ``question``, plus ``strategy`` and
    what the strategy did (``queries`` always; ``hops``, ``stop_reason``, ``route``,
    ``hypothetical`` where meaningful; see :mod:`orchestrator.chains.strategies`).
    """

    strategy: ClassVar[str] = "plain"

    @property
    def top_k(self) -> int:
        """Sources per answer: the chain's ``k``, else the retriever's, else 4."""
        if self.k is not None:
            return self.k
        return int(getattr(self.retriever, "k", None) or DEFAULT_K)

    def plan(self, question: str, config: RunnableConfig | None = None) -> Trace:
        """What to search for ``question``: at least ``{"queries": [...]}``."""
        return {"queries": [question]}

    def search_plans(self, plans: Sequence[Trace], k: int) -> list[list[Document]]:
        """Top ``k`` chunks for each plan; all plans' queries in one batch."""
        return search_many_docs(self.retriever, [p["queries"][0] for p in plans], k)

    def passing(self, docs: Sequence[Document]) -> list[Document]:
        """``docs`` that pass ``min_score`` and ``min_similarity``, as ``RAGChain`` filters."""
        kept = list(docs)
        if self.min_score is not None:
            kept = [d for d in kept if float(d.metadata.get("score", 0.0)) >= self.min_score]
        if self.min_similarity is not None:
            floor = self.min_similarity
            kept = [d for d in kept if float(d.metadata.get("similarity", floor)) >= floor]
        return kept

    def retrieve_traced(
        self, question: str, config: RunnableConfig | None = None
    ) -> tuple[list[Document], Trace]:
        """The sources for ``question`` and what the strategy did to find them."""
        plan = self.plan(question, config)
        return self.passing(self.search_plans([plan], self.top_k)[0]), plan

    def retrieve_many(
        self, questions: Sequence[str], k: int, config: RunnableConfig | None = None
    ) -> list[tuple[list[Document], Trace]]:
        """Top ``k`` chunks per question (no score floor: for ranking and evaluation); the
        model writes each plan, then all plans are searched in one batch."""
        plans = [self.plan(q, config) for q in questions]
        return list(zip(self.search_plans(plans, k), plans, strict=True))

    def retrieve(self, question: str, config: RunnableConfig | None = None) -> list[Document]:
        return self.retrieve_traced(question, config)[0]

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """``{"question", "strategy", <trace>, "sources"}`` once, then ``{"answer": piece}``s
        (the answer is the RAG chain's own step; ``invoke`` adds ``citations``)."""
        reject_call_options(kwargs, type(self).__name__)
        question = _question(input)
        docs, trace = self.retrieve_traced(question, config)
        yield {
            "question": question,
            "strategy": self.strategy,
            **trace,
            "sources": source_records(docs),
        }
        for piece in self._answer_stream(question, docs, config):
            if piece:
                yield {"answer": piece}
