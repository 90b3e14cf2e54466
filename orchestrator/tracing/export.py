"""Recorded RAG runs as a question set for ``orchestrator eval rag --dataset``.

Each row has the reader's field names (``orchestrator.evals.qa``: Ragas' ``user_input``,
``response``, ``retrieved_contexts``, ``reference``, plus ``id``). A log has no reference
answer, so ``reference`` holds the recorded answer: replace it with the right answer before
scoring reference-based metrics (``context_recall``, ``string_similarity``, ...); metrics of the
answer against its contexts (``faithfulness``, ``citation_*``) need nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from orchestrator.tracing import names
from orchestrator.tracing.store import RunFilter, SpanView, TraceStore

FORMATS = ("jsonl",)


def retrieved_contexts(spans: Sequence[SpanView]) -> list[str]:
    """The texts the run's retrievers returned, each once, in the order they came."""
    seen: set[str] = set()
    texts: list[str] = []
    for span in spans:
        if span.kind != "retriever":
            continue
        for doc in span.attributes.get(names.DOCUMENTS) or []:
            text = doc.get("text") if isinstance(doc, dict) else None
            key = str(doc.get("id") or text) if isinstance(doc, dict) else ""
            if text and key not in seen:
                seen.add(key)
                texts.append(text)
    return texts


def export_rows(store: TraceStore, where: RunFilter | None = None) -> list[dict[str, Any]]:
    """One row per finished run that retrieved passages and answered (oldest first)."""
    rows = []
    for run in reversed(store.runs(where)):
        if run.status != "ok" or not run.input or not run.output:
            continue
        contexts = retrieved_contexts(store.spans(run.run_id))
        if contexts:
            rows.append({
                "id": run.run_id,
                "user_input": run.input,
                "response": run.output,
                "retrieved_contexts": contexts,
                "reference": run.output,
            })  # fmt: skip
    return rows


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Write ``rows`` one JSON object a line; returns how many."""
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count
