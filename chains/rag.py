"""Retrieval-augmented generation: answer from retrieved text, citing numbered sources.

``rag_chain(llm, retriever)`` retrieves chunks, stuffs them into the prompt as ``[1] ...``,
``[2] ...`` and returns ``{"answer", "sources", "citations"}``; when nothing relevant is
retrieved (no chunk, or every chunk under ``min_score``) it says it does not know without
calling the model, since a small model asked to answer from nothing makes something up.
``stream`` yields the sources first, then the answer as it is generated. The chain is one
answer step composed with a sources step (:mod:`orchestrator.chains.sources`); a RAG strategy
(:func:`orchestrator.chains.strategies.rag_strategy`) is the same chain with another sources
step, so the relevance filter (:func:`passing`) and the answer are written once.

``RetrievalQA.from_chain_type(llm=..., chain_type="stuff", retriever=...,
chain_type_kwargs={"prompt": ...})`` is the book's (Hands-On LLMs, ch. 8) interface:
``invoke("question")`` returns ``{"query": ..., "result": ...}``.

Retrieved text and the question are defused for the model before they fill the prompt
(:func:`~orchestrator.prompts.templates.safe_values`): a document quoting ``<|im_start|>``
cannot open a turn, whichever prompt class the caller passed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForChainRun
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from langchain_core.runnables.utils import AddableDict
from pydantic import ConfigDict

from orchestrator.chains.llm_chain import reject_call_options
from orchestrator.chains.sources import Sources, Trace, question_text
from orchestrator.errors import OptionError, unknown_option
from orchestrator.llama.aio import iterate_in_thread
from orchestrator.prompts.library import RAG
from orchestrator.prompts.templates import PromptTemplate, safe_values

NO_ANSWER = "I don't know: none of the retrieved sources is relevant to the question."
_CITATION = re.compile(r"\[(\d+)\]")


def format_sources(docs: Sequence[Document]) -> str:
    """Numbered sources for the prompt: ``[n] text`` separated by blank lines."""
    return "\n\n".join(f"[{n}] {doc.page_content.strip()}" for n, doc in enumerate(docs, 1))


def source_records(docs: Sequence[Document]) -> list[dict[str, Any]]:
    """What the caller gets back for each numbered source."""
    return [
        {
            "n": n,
            "doc_id": doc.metadata.get("doc_id"),
            "chunk_id": doc.metadata.get("chunk_id"),
            "source": doc.metadata.get("source"),
            "score": doc.metadata.get("score"),
            "text": doc.page_content,
        }
        for n, doc in enumerate(docs, 1)
    ]


def cited_numbers(answer: str, n_sources: int) -> list[int]:
    """Source numbers the answer cites, in order of first citation, ignoring invented ones."""
    found = (int(m) for m in _CITATION.findall(answer))
    return list(dict.fromkeys(n for n in found if 1 <= n <= n_sources))


def passing(
    docs: Sequence[Document], min_score: float | None, min_similarity: float | None
) -> list[Document]:
    """``docs`` at or above ``min_score`` (metadata ``score``) and ``min_similarity`` (metadata
    ``similarity``, the query-chunk cosine our retrievers attach; comparable across queries,
    unlike fused scores). The one relevance filter of every RAG chain and strategy."""
    kept = list(docs)
    if min_score is not None:
        kept = [d for d in kept if float(d.metadata.get("score", 0.0)) >= min_score]
    if min_similarity is not None:
        floor = min_similarity
        kept = [d for d in kept if float(d.metadata.get("similarity", floor)) >= floor]
    return kept


class RAGChain(RunnableSerializable[Any, dict[str, Any]]):
    """A sources step composed with the answer step: find, stuff numbered sources, answer
    with ``[n]`` citations.

    ``sources`` (:class:`~orchestrator.chains.sources.Sources`) finds the documents: the plain
    retriever for :func:`rag_chain`, a strategy for
    :func:`~orchestrator.chains.strategies.rag_strategy`. With ``trace``, the first streamed
    part also names the ``strategy`` and what it did (``queries``, ``hops``, ...).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    llm: Runnable[Any, Any]
    sources: Sources
    prompt: BasePromptTemplate
    k: int | None = None
    min_score: float | None = None
    min_similarity: float | None = None
    no_answer: str = NO_ANSWER
    trace: bool = False

    def model_post_init(self, context: Any) -> None:
        missing = {"context", "question"} - set(self.prompt.input_variables)
        if missing:
            raise OptionError(
                f"the RAG prompt lacks the variable(s) {sorted(missing)}",
                fix="write {context} where the sources go and {question} for the question",
            )

    @property
    def strategy(self) -> str:
        """The sources step's registered strategy name."""
        return self.sources.strategy

    @property
    def retriever(self) -> Runnable[str, list[Document]]:
        """What the sources step searches."""
        return self.sources.retriever

    @property
    def top_k(self) -> int:
        """Sources per answer: the chain's ``k``, else the sources step's default."""
        return self.sources.k_or_default(self.k)

    def passing(self, docs: Sequence[Document]) -> list[Document]:
        """``docs`` that pass the chain's ``min_score`` and ``min_similarity``."""
        return passing(docs, self.min_score, self.min_similarity)

    def retrieve_traced(
        self, question: str, config: RunnableConfig | None = None
    ) -> tuple[list[Document], Trace]:
        """The sources for ``question`` that pass the filter, and what the step did."""
        return self.sources.find(question, self.k, self.passing, config)

    def retrieve(self, question: str, config: RunnableConfig | None = None) -> list[Document]:
        """The sources for ``question``; empty means nothing relevant."""
        return self.retrieve_traced(question, config)[0]

    def retrieve_many(
        self, questions: Sequence[str], k: int, config: RunnableConfig | None = None
    ) -> list[tuple[list[Document], Trace]]:
        """Top ``k`` per question, unfiltered (for ranking and evaluation), with the traces;
        the searches run in one batch."""
        return self.sources.find_many(questions, k, list, config)

    def _answer_stream(
        self, question: str, docs: list[Document], config: RunnableConfig | None
    ) -> Iterator[str]:
        if not docs:
            yield self.no_answer
            return
        chain = self.prompt | self.llm | StrOutputParser()
        values = safe_values(self.llm, {"context": format_sources(docs), "question": question})
        yield from chain.stream(values, config)

    def invoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for part in self.stream(input, config, **kwargs):
            for key, value in part.items():
                result[key] = result.get(key, "") + value if key == "answer" else value
        result["answer"] = result.get("answer", "").strip()
        result["citations"] = cited_numbers(result["answer"], len(result["sources"]))
        return result

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """Yield ``{"question", "sources"}`` once (with ``trace``: also ``strategy`` and what
        it did), then ``{"answer": piece}`` per piece; ``invoke`` adds ``citations``. One
        LangChain run: callbacks (tracing) see the retrieval and the answer inside it."""
        reject_call_options(kwargs, "RAGChain")
        yield from self._transform_stream_with_config(iter([input]), self._parts, config)

    def _parts(
        self, inputs: Iterator[Any], run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> Iterator[dict[str, Any]]:  # fmt: skip
        question = question_text(next(inputs))
        docs, found = self.retrieve_traced(question, config)
        head = {"strategy": self.strategy, **found} if self.trace else {}
        yield AddableDict({"question": question, **head, "sources": source_records(docs)})
        for piece in self._answer_stream(question, docs, config):
            if piece:
                yield AddableDict({"answer": piece})

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """The same parts as :meth:`stream` (one core, run in a worker thread)."""
        async for part in iterate_in_thread(lambda: self.stream(input, config, **kwargs)):
            yield part


def rag_prompt(prompt: BasePromptTemplate | str | None) -> BasePromptTemplate:
    """The RAG chain's prompt: ``prompts.library.RAG`` unless one is given (text or template)."""
    template = prompt if prompt is not None else RAG
    return PromptTemplate.from_template(template) if isinstance(template, str) else template


def rag_chain(
    llm: Runnable[Any, Any],
    retriever: Runnable[str, list[Document]] | Sources,
    *,
    prompt: BasePromptTemplate | str | None = None,
    k: int | None = None,
    min_score: float | None = None,
    min_similarity: float | None = None,
) -> RAGChain:
    """A :class:`RAGChain` over ``retriever`` (the question is the query), or over a sources
    step; the prompt defaults to ``prompts.library.RAG``."""
    sources = retriever if isinstance(retriever, Sources) else Sources(retriever=retriever)
    return RAGChain(
        llm=llm,
        sources=sources,
        prompt=rag_prompt(prompt),
        k=k,
        min_score=min_score,
        min_similarity=min_similarity,
    )


STUFF_PROMPT = (
    "Use the following pieces of context to answer the question at the end. If you don't "
    "know the answer, just say that you don't know, don't try to make up an answer.\n\n"
    "{context}\n\nQuestion: {question}\nHelpful Answer:"
)
CHAIN_TYPE_KWARGS = ("prompt", "document_variable_name", "document_separator")


class RetrievalQA(RunnableSerializable[Any, dict[str, Any]]):
    """The classic "stuff" question answering chain: ``{"query"} -> {"query", "result"}``."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    llm: Runnable[Any, Any]
    retriever: Runnable[str, list[Document]]
    prompt: BasePromptTemplate
    document_variable_name: str = "context"
    document_separator: str = "\n\n"
    input_key: str = "query"
    output_key: str = "result"
    return_source_documents: bool = False
    verbose: bool = False

    @classmethod
    def from_chain_type(
        cls,
        llm: Runnable[Any, Any],
        chain_type: str = "stuff",
        retriever: Runnable[str, list[Document]] | None = None,
        chain_type_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> RetrievalQA:
        if chain_type != "stuff":
            raise OptionError(
                f"chain_type={chain_type!r} is not supported",
                fix='use chain_type="stuff" (small local models get one stuffed prompt)',
            )
        if retriever is None:
            raise OptionError("RetrievalQA needs a retriever", fix="pass retriever=...")
        options = dict(chain_type_kwargs or {})
        for name in options:
            if name not in CHAIN_TYPE_KWARGS:
                raise unknown_option(name, CHAIN_TYPE_KWARGS, where="chain_type_kwargs")
        prompt = options.pop("prompt", None) or PromptTemplate.from_template(STUFF_PROMPT)
        return cls(llm=llm, retriever=retriever, prompt=prompt, **options, **kwargs)

    def _query(self, input: Any) -> str:
        if isinstance(input, Mapping):
            if self.input_key not in input:
                raise OptionError(
                    f"RetrievalQA needs the key {self.input_key!r}",
                    fix=f'invoke({{"{self.input_key}": "..."}})',
                )
            return str(input[self.input_key])
        return str(input)

    def invoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        reject_call_options(kwargs, "RetrievalQA.invoke")
        query = self._query(input)
        docs = self.retriever.invoke(query, config)
        context = self.document_separator.join(d.page_content for d in docs)
        variables = {self.document_variable_name: context, "question": query}
        variables = {k: v for k, v in variables.items() if k in self.prompt.input_variables}
        chain = self.prompt | self.llm | StrOutputParser()
        text = chain.invoke(safe_values(self.llm, variables), config).strip()
        result: dict[str, Any] = {self.input_key: query, self.output_key: text}
        if self.return_source_documents:
            result["source_documents"] = docs
        return result


class DocumentTurn:
    """One chat turn over documents (``orchestrator chat --index``).

    The history goes to the model as it is; only the newest user message carries the numbered
    sources retrieved for it, formatted with the RAG prompt. Sources go last, not into the
    system turn, so the cached history prefix stays valid and is not re-prefilled. Memory
    stores the user's own words, not the stuffed prompt.
    """

    def __init__(
        self,
        retriever: Runnable[str, list[Document]],
        *,
        system: str | None = None,
        prompt: str = RAG,
    ) -> None:
        self.retriever = retriever
        self.system = system
        self.prompt = PromptTemplate.from_template(prompt)
        self.last_sources: list[dict[str, Any]] = []

    def __call__(self, text: str, history: list[BaseMessage]) -> list[BaseMessage]:
        docs = list(self.retriever.invoke(text))
        self.last_sources = source_records(docs)
        content = self.prompt.format(context=format_sources(docs), question=text) if docs else text
        head: list[BaseMessage] = [SystemMessage(content=self.system)] if self.system else []
        return [*head, *history, HumanMessage(content=content)]
