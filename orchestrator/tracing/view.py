"""A run's spans as a tree, and the few facts worth a line for each span (``logs show``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.tracing import names
from orchestrator.tracing.store import SpanView
from orchestrator.tracing.texts import child_io

#: Characters of a question, answer or tool argument shown on a span's line.
PREVIEW = 80


def span_tree(spans: Sequence[SpanView]) -> dict[str | None, list[SpanView]]:
    """Children by parent id, in start order; ``None`` holds the top: the root span, or, for a
    run still in flight or cut short (no root span yet), the spans whose parent is missing."""
    known = {s.span_id for s in spans}
    tree: dict[str | None, list[SpanView]] = {}
    for span in spans:
        top = span.parent_id is None or span.parent_id not in known
        tree.setdefault(None if top else span.parent_id, []).append(span)
    return tree


def preview(text: Any, limit: int = PREVIEW) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _count(value: Any) -> str:
    return "?" if value is None else str(value)


def span_facts(span: SpanView) -> list[str]:
    """Short facts of a span: tokens and timings of a model call, a retriever's query and
    documents, a tool's arguments and result, the question and answer of a chain."""
    a = span.attributes
    facts: list[str] = []
    if span.kind == "llm":
        facts.append(f"tokens {_count(span.input_tokens)}→{_count(span.output_tokens)}")
        for key, label in ((names.CACHE_READ, "cache_read"), (names.SLOT, "slot")):
            if a.get(key) is not None:
                facts.append(f"{label} {a[key]}")
        for key, label in ((names.TIME_TO_FIRST_TOKEN, "ttft"), (names.QUEUE_WAIT, "queued")):
            if isinstance(a.get(key), int | float):
                facts.append(f"{label} {a[key]:.3f}s")
        sampling = [
            f"{k.rsplit('.', 1)[-1]}={a[k]}" for k in (names.TEMPERATURE, names.SEED) if k in a
        ]
        facts += (
            sampling
            + (["grammar"] if names.GRAMMAR in a else [])
            + (["schema"] if names.SCHEMA in a else [])
        )
    elif span.kind == "retriever":
        if names.QUERY in a:
            facts.append(f"query {preview(a[names.QUERY], 60)!r}")
        ids, scores = a.get(names.DOC_IDS) or [], a.get(names.SCORES) or []
        shown = [f"{d}:{s:.3f}" for d, s in zip(ids, scores, strict=False)] if scores else ids
        facts.append(f"docs [{', '.join(map(str, shown[:6]))}{', …' if len(shown) > 6 else ''}]")
    elif span.kind == "tool":
        if names.TOOL_ARGUMENTS in a:
            facts.append(f"args {preview(a[names.TOOL_ARGUMENTS], 60)}")
        if names.TOOL_RESULT in a:
            facts.append(f"→ {preview(a[names.TOOL_RESULT], 60)}")
    elif span.kind not in ("prompt", "parser"):
        question, answer = child_io(a)
        if question:
            facts.append(f"in {preview(question, 60)!r}")
        if answer:
            facts.append(f"out {preview(answer, 60)!r}")
    return facts
