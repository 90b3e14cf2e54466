"""Agentic RAG: a ReAct agent searches one knowledge-base tool per index and cites what it read.

The book's (Hands-On LLMs, ch. 8) agentic RAG: instead of one retrieval before answering, the
model decides which collection to search, with which query, and how many times, then answers
with ``[n]`` citations. What makes those citations checkable:

- every passage any search returns gets one number for the whole run (a passage found twice
  keeps its first number), and the observation shows it under that number, so ``[3]`` in the
  answer names exactly one passage the agent actually read;
- citations are parsed with the RAG chain's own rule (:func:`chains.rag.cited_numbers`); a
  number the run never showed is dropped from ``citations`` and listed in
  ``invalid_citations``;
- the run always ends: the executor's ``max_iterations`` / ``max_execution_time`` (and its
  repeated-action check) stop it, and it then answers once without tools; ``stop_reason`` says
  why it ended.

The result has the RAG chain's shape: ``question``, ``answer``, ``sources`` (every passage
the searches returned, as the RAG chain's records, ``n`` = position = run number, so
``cited_numbers(answer, len(sources))`` holds as for the chain) and ``citations``; plus
``cited_sources`` (the sources the answer cites), ``invalid_citations``, and what the agent
did: ``queries`` (each tool call: ``tool``, ``query``), ``hops`` (per search, as
``multi_hop`` reports them: ``hop``, ``tool``, ``query`` and the ``sources`` numbers it
returned), ``route`` (the indexes searched, in order), ``steps`` and ``stop_reason``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.agents.executor import AgentExecutor
from orchestrator.agents.react import StepMode, create_react_agent
from orchestrator.agents.tools.knowledge import KnowledgeBaseTool, format_passages
from orchestrator.chains.llm_chain import reject_call_options
from orchestrator.chains.rag import NO_ANSWER, cited_numbers, source_records
from orchestrator.chains.sources import question_text
from orchestrator.errors import OptionError, OrchestratorError, reject_unknown_options
from orchestrator.prompts.library import REACT
from orchestrator.prompts.templates import PromptTemplate

#: How the book's ReAct prompt is told about numbered passages (inserted into it, not copied).
_CITE_TOOLS = (
    "{tools}\n\n",
    "{tools}\n\nEach tool searches a document collection and returns numbered passages such "
    "as [1]. Answer only from those passages.\n\n",
)
_CITE_ANSWER = (
    "Final Answer: the final answer to the original input question",
    "Final Answer: the final answer to the original input question, citing the passages it "
    "uses by their numbers, e.g. [1]",
)


def agentic_rag_prompt() -> PromptTemplate:
    """The classic ReAct prompt (``prompts.library.REACT``) with the citation instructions."""
    text = REACT
    for old, new in (_CITE_TOOLS, _CITE_ANSWER):
        if old not in text:
            raise OrchestratorError(
                f"the ReAct prompt no longer contains {old!r}",
                fix="update agents.agentic_rag._CITE_* to the new wording of prompts.REACT",
            )
        text = text.replace(old, new, 1)
    return PromptTemplate.from_template(text)


class PassageLedger:
    """The passages one run has read, numbered 1, 2, ... in the order they were first shown,
    and every search made (one ledger per run, so concurrent runs never share numbers)."""

    def __init__(self) -> None:
        self.docs: list[Document] = []
        self.hops: list[dict[str, Any]] = []
        self._numbers: dict[tuple[Any, ...], int] = {}

    def add(self, tool: str, query: str, docs: Sequence[Document]) -> list[int]:
        """Number ``docs`` (a passage seen before keeps its number); record the search."""
        numbers = []
        for doc in docs:
            key = (doc.metadata.get("doc_id"), doc.metadata.get("chunk_id"), doc.page_content)
            if key not in self._numbers:
                self.docs.append(doc)
                self._numbers[key] = len(self.docs)
            numbers.append(self._numbers[key])
        hop = {"hop": len(self.hops) + 1, "tool": tool, "query": query, "sources": numbers}
        self.hops.append(hop)
        return numbers


class CitingKnowledgeTool(KnowledgeBaseTool):
    """A knowledge-base tool whose passages are numbered across the run by a shared ledger."""

    retriever: Runnable[str, list[Document]]  # type: ignore[assignment]
    ledger: PassageLedger

    def observe(self, query: str, docs: list[Document]) -> str:
        numbers = self.ledger.add(self.name, query, docs)
        if not docs:
            return super().observe(query, docs)
        return format_passages(docs, self.max_chars, numbers)


class KnowledgeIndex(BaseModel):
    """One searchable collection: the tool's name and description, and its retriever."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    name: str
    description: str
    retriever: Runnable[str, list[Document]]
    k: int = Field(default=3, ge=1, le=20)
    max_chars: int = Field(default=400, ge=50)


class AgenticRAG(RunnableSerializable[Any, dict[str, Any]]):
    """``{"question"}`` (or a string) -> the RAG chain's answer dict, found by a ReAct agent
    with one knowledge-base tool per index (see the module docstring)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    llm: Runnable[Any, Any]
    indexes: list[KnowledgeIndex]
    prompt: BasePromptTemplate = Field(default_factory=agentic_rag_prompt)
    max_iterations: int | None = Field(default=5, ge=1)
    max_execution_time: float | None = Field(default=None, gt=0)
    step_mode: StepMode = "auto"
    handle_parsing_errors: bool = True
    no_answer: str = NO_ANSWER
    """The answer when no search returned anything (a small model would make one up)."""
    trace_dir: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown(cls, data: Any) -> Any:
        reject_unknown_options(data, cls)
        return data

    def tools(self, ledger: PassageLedger) -> list[BaseTool]:
        """This run's tools, all numbering passages in ``ledger``."""
        return [
            CitingKnowledgeTool(
                name=i.name,
                description=i.description,
                retriever=i.retriever,
                k=i.k,
                max_chars=i.max_chars,
                ledger=ledger,
            )
            for i in self.indexes
        ]

    def invoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        reject_call_options(kwargs, "AgenticRAG")
        question = question_text(input)
        ledger = PassageLedger()
        tools = self.tools(ledger)
        executor = AgentExecutor(
            agent=create_react_agent(self.llm, tools, self.prompt, step_mode=self.step_mode),
            tools=tools,
            max_iterations=self.max_iterations,
            max_execution_time=self.max_execution_time,
            handle_parsing_errors=self.handle_parsing_errors,
            trace_dir=self.trace_dir,
        )
        run = executor.invoke({"input": question}, config)
        return self._result(question, run, ledger)

    def _result(
        self, question: str, run: Mapping[str, Any], ledger: PassageLedger
    ) -> dict[str, Any]:
        answer = str(run["output"]).strip() if ledger.docs else self.no_answer
        sources = source_records(ledger.docs)
        citations = cited_numbers(answer, len(sources))
        written = cited_numbers(answer, sys.maxsize)  # every [n] the answer writes
        return {
            "question": question,
            "answer": answer,
            "sources": sources,
            "citations": citations,
            "cited_sources": [sources[n - 1] for n in sorted(citations)],
            "invalid_citations": [n for n in written if n not in citations],
            "queries": [{"tool": h["tool"], "query": h["query"]} for h in ledger.hops],
            "hops": ledger.hops,
            "route": list(dict.fromkeys(h["tool"] for h in ledger.hops)),
            "steps": run["steps"],
            "stop_reason": run["stopped_because"],
        }


RetrieverSpec = Any
"""A retriever, or ``(retriever, description)``."""


def agentic_rag(
    retrievers: Mapping[str, RetrieverSpec] | Sequence[KnowledgeBaseTool],
    llm: Runnable[Any, Any],
    *,
    k: int = 3,
    max_chars: int = 400,
    **options: Any,
) -> AgenticRAG:
    """An :class:`AgenticRAG` over ``retrievers``.

    ``retrievers``: ``{name: (retriever, description)}`` (a bare retriever gets a generic
    description), or knowledge-base tools (``open_knowledge_base(dir)`` renamed per index).
    ``k`` / ``max_chars``: passages per search and characters per passage, for the dict form.
    ``options``: ``max_iterations`` (5), ``max_execution_time``, ``prompt``, ``step_mode``,
    ``handle_parsing_errors``, ``no_answer``, ``trace_dir``.
    """
    indexes = _indexes(retrievers, k, max_chars)
    names = [i.name for i in indexes]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise OptionError(
            f"every index needs its own tool name; repeated: {repeated}",
            fix="name each index (a dict {name: (retriever, description)}, or "
            "KnowledgeBaseTool(name=...))",
        )
    return AgenticRAG(llm=llm, indexes=indexes, **options)


def _indexes(
    retrievers: Mapping[str, RetrieverSpec] | Sequence[KnowledgeBaseTool], k: int, max_chars: int
) -> list[KnowledgeIndex]:
    if isinstance(retrievers, Mapping):
        indexes = [_from_spec(str(name), spec, k, max_chars) for name, spec in retrievers.items()]
    else:
        indexes = [_from_tool(t) for t in retrievers]
    if not indexes:
        raise OptionError(
            "agentic RAG needs at least one index", fix="pass {name: (retriever, description)}"
        )
    return indexes


def _from_spec(name: str, spec: RetrieverSpec, k: int, max_chars: int) -> KnowledgeIndex:
    retriever, description = spec if isinstance(spec, tuple) else (spec, None)
    if not isinstance(retriever, Runnable):
        raise OptionError(
            f"index {name!r}: {type(retriever).__name__} is not a retriever",
            fix="pass {name: (retriever, description)} with a LangChain retriever, e.g. "
            "orchestrator.retrieval.open_retriever(DIR)",
        )
    text = description or f"Searches the {name} collection. Input: a question or keywords."
    return KnowledgeIndex(
        name=name, description=str(text), retriever=retriever, k=k, max_chars=max_chars
    )


def _from_tool(tool: Any) -> KnowledgeIndex:
    if not isinstance(tool, KnowledgeBaseTool):
        raise OptionError(
            f"{type(tool).__name__} is not a knowledge-base tool",
            fix="pass KnowledgeBaseTool / open_knowledge_base(DIR) tools, or a dict "
            "{name: (retriever, description)}",
        )
    return KnowledgeIndex(
        name=tool.name,
        description=tool.description,
        retriever=tool.retriever,
        k=tool.k,
        max_chars=tool.max_chars,
    )
