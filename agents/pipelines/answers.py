"""The answer record of a RAG pipeline: ``answer``, ``sources``, ``citations`` and the
strategy's trace, the fields ``orchestrator rag --json``, ``serve``'s ``rag`` model, ``mcp``'s
``rag`` tool and ``eval rag``'s samples all report, folded here once from the chain's parts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.agents.pipelines.strategies import trace_of


@dataclass
class AnswerCollector:
    """Folds a RAG chain's streamed parts (or its one ``invoke`` result) into the record."""

    sources: list[dict[str, Any]] = field(default_factory=list)
    trace: dict[str, Any] = field(default_factory=dict)
    pieces: list[str] = field(default_factory=list)

    def add(self, part: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """Take one part; return what it adds besides the answer (the trace, ``sources``) and
        its piece of the answer (the first piece without its leading whitespace)."""
        fields = trace_of(part)
        self.trace.update(fields)
        if "sources" in part:
            self.sources = fields["sources"] = list(part["sources"])
        piece = str(part.get("answer", ""))
        if not self.pieces:
            piece = piece.lstrip()
        if piece:
            self.pieces.append(piece)
        return fields, piece

    def record(self) -> dict[str, Any]:
        """``{answer, sources, citations, <trace>}``: the answer cites ``[n]`` of ``sources``."""
        from orchestrator.chains.rag import cited_numbers

        answer = "".join(self.pieces).strip()
        citations = cited_numbers(answer, len(self.sources))
        return {"answer": answer, "sources": self.sources, "citations": citations, **self.trace}


def collect_answer(
    parts: Iterable[Mapping[str, Any]], on_text: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The answer record of a chain's parts (``chain.stream(...)``, or ``[chain.invoke(...)]``);
    ``on_text`` gets each piece of the answer as it comes."""
    collector = AnswerCollector()
    for part in parts:
        _, piece = collector.add(part)
        if piece and on_text is not None:
            on_text(piece)
    return collector.record()


def source_lines(sources: Iterable[Mapping[str, Any]]) -> list[str]:
    """The numbered sources as lines: ``[n] doc_id (source)``."""
    return [f"[{s['n']}] {s['doc_id']} ({s['source']})" for s in sources]


def trace_lines(trace: Mapping[str, Any]) -> list[str]:
    """A strategy's trace as short lines for a terminal."""
    lines = []
    if trace.get("route"):
        lines.append(f"route: {', '.join(trace['route'])}")
    for n, query in enumerate(trace.get("queries") or [], 1):
        lines.append(f"query {n}: {query}")
    if trace.get("hypothetical"):
        passage = " ".join(str(trace["hypothetical"]).split())
        lines.append(f"hypothetical answer (the dense query): {passage}")
    if trace.get("stop_reason"):
        lines.append(f"hops: {len(trace.get('hops') or [])}, stopped: {trace['stop_reason']}")
    return lines
