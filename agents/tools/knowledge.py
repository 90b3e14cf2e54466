"""``knowledge_base``: look things up offline in a retrieval index.

Takes any LangChain ``BaseRetriever``; :func:`open_knowledge_base` opens an index built by
``orchestrator.retrieval.build_index`` (a folder or a PostgreSQL index; hybrid dense + BM25).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from langchain_core.callbacks import CallbackManagerForToolRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field

from orchestrator.errors import OptionError
from orchestrator.extras import require
from orchestrator.retrieval.location import IndexSpec

KNOWLEDGE_BASE_DESCRIPTION = (
    "Looks up facts in the local knowledge base (offline documents). "
    "Input: a question or a few keywords. Returns the most relevant passages."
)


def format_passages(
    docs: list[Document], max_chars: int, numbers: Sequence[int] | None = None
) -> str:
    """Numbered passages with their document ids, each cut to ``max_chars``.

    ``numbers``: the label of each passage (default 1, 2, ...), e.g. numbers kept across
    several searches so an answer's ``[n]`` names one passage of the whole run."""
    lines = []
    for n, doc in zip(numbers or range(1, len(docs) + 1), docs, strict=True):
        text = " ".join(doc.page_content.split())
        if len(text) > max_chars:
            text = text[:max_chars].rstrip() + "..."
        doc_id = doc.metadata.get("doc_id") or doc.metadata.get("source")
        label = f"[{n}] ({doc_id}) " if doc_id else f"[{n}] "
        lines.append(label + text)
    return "\n".join(lines)


class KnowledgeBaseTool(BaseTool):
    """Passages from a retriever for the agent's query."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "knowledge_base"
    description: str = KNOWLEDGE_BASE_DESCRIPTION
    retriever: BaseRetriever
    k: int = Field(default=3, ge=1, le=20)
    max_chars: int = Field(default=400, ge=50)

    def _run(self, query: str, run_manager: CallbackManagerForToolRun | None = None) -> str:
        query = query.strip().strip("\"'")
        if not query:
            return "The knowledge base needs a query: pass a question or keywords."
        docs = self.retriever.invoke(query)[: self.k]
        return self.observe(query, docs)

    def observe(self, query: str, docs: list[Document]) -> str:
        """What the agent reads for ``query``: the passages found, numbered (a subclass may
        number them across a run and record the search, see ``agents.agentic_rag``)."""
        if not docs:
            return f"The knowledge base has nothing about {query!r}."
        return format_passages(docs, self.max_chars)


def open_knowledge_base(
    index: IndexSpec | str | Path,
    *,
    k: int = 3,
    mode: str | None = None,
) -> KnowledgeBaseTool:
    """The ``knowledge_base`` tool over an index from ``build_index``: an
    :class:`~orchestrator.retrieval.location.IndexSpec`, or a str/Path (a folder).

    ``mode``: ``hybrid`` (dense + BM25), ``dense`` or ``bm25``; by default ``hybrid`` when the
    index has both sides, else the side it was built with.
    """
    spec = IndexSpec.of(index)
    if spec.backend == "folder" and not Path(str(spec.path)).expanduser().is_dir():
        raise OptionError(
            f"knowledge base index {spec.label!r} is not a directory",
            fix="build one with `orchestrator index` / orchestrator.retrieval.build_index, "
            "then pass --index DIR",
        )
    require("scipy", extra="rag", purpose="the knowledge_base tool (retrieval)")
    from orchestrator.retrieval.retriever import open_retriever
    from orchestrator.retrieval.stores import backend_of

    if mode is None:
        built = list(backend_of(spec).manifest(spec).get("modes", []))
        mode = "hybrid" if len(built) > 1 or not built else str(built[0])
    return KnowledgeBaseTool(retriever=open_retriever(spec, mode=mode, k=k), k=k)
