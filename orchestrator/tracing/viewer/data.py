"""Runs and a run's spans as the viewer shows them: filters checked as ``logs`` checks them,
the span tree flattened in display order with each span's depth and offset on the run's
timeline, and each span's prompts, replies, passages, tool call, tokens and timings.

Recorded text is returned as text; the page puts it in the document as text, never as markup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import OptionError
from orchestrator.tracing import names
from orchestrator.tracing.store import STATUSES, RunFilter, SpanView, TraceStore
from orchestrator.tracing.texts import child_io, is_messages, parts_text
from orchestrator.tracing.view import span_facts, span_tree

#: Request options shown beside a model call, by label.
REQUEST_FIELDS = {
    "temperature": names.TEMPERATURE,
    "top_p": names.TOP_P,
    "top_k": names.TOP_K,
    "max_tokens": names.MAX_TOKENS,
    "seed": names.SEED,
    "stop": names.STOP,
    "finish_reasons": names.FINISH_REASONS,
    "response_model": names.RESPONSE_MODEL,
    "model_path": names.MODEL_PATH,
    "model_sha256": names.MODEL_SHA256,
}


def run_filter(
    *,
    command: str | None = None,
    pipeline: str | None = None,
    model: str | None = None,
    session: str | None = None,
    status: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = 50,
) -> RunFilter:
    """A :class:`RunFilter` from options as a person writes them (``since="2h"``); empty
    strings count as not given. A bad status or time is an :class:`OptionError` with a fix."""
    from orchestrator.tracing.store import parse_time

    if status and status not in STATUSES:
        raise OptionError(f"status {status!r} is not a status", fix=f"one of {', '.join(STATUSES)}")
    return RunFilter(
        command=command or None,
        pipeline=pipeline or None,
        model=model or None,
        session=session or None,
        status=status or None,
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
        limit=limit,
    )


def list_runs(
    store: TraceStore, where: RunFilter, query: str | None = None
) -> list[dict[str, Any]]:
    """Runs matching ``where`` (newest first) as dicts; with ``query``, the runs whose
    prompts or answers hold every word (best first), each with its ``match``."""
    if query:
        return [hit.to_dict() for hit in store.search(query, where)]
    return [run.to_dict() for run in store.runs(where)]


def _ordered(spans: list[SpanView]) -> list[tuple[SpanView, int]]:
    """Spans depth first, children in start order, each with its depth (the run's own span
    at depth 0)."""
    tree = span_tree(spans)
    out: list[tuple[SpanView, int]] = []
    stack = [(span, 0) for span in reversed(tree.get(None, []))]
    while stack:  # no recursion: an agent's tree may be deep
        span, depth = stack.pop()
        out.append((span, depth))
        stack += [(child, depth + 1) for child in reversed(tree.get(span.span_id, []))]
    return out


def run_detail(store: TraceStore, run_id: str) -> dict[str, Any]:
    """One run (``run_id`` or its first characters) and its spans in tree order, each with
    ``depth``, ``offset_s`` from the run's start, ``facts`` and ``sections``; ``span_s`` is
    the timeline's length. An unknown id is the store's :class:`DataError`."""
    run = store.run(run_id)
    spans = store.spans(run.run_id)
    end = max([s.ended for s in spans] + [run.ended or run.started])
    entries = []
    for span, depth in _ordered(spans):
        entry = span.to_dict()
        entry.update(
            depth=depth,
            offset_s=round(span.started - run.started, 6),
            facts=span_facts(span),
            sections=span_sections(span),
        )
        entries.append(entry)
    return {"run": run.to_dict(), "span_s": round(end - run.started, 6), "spans": entries}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def _messages(value: Any) -> list[dict[str, str]]:
    """GenAI-convention messages as ``{"role", "text"}``: text parts joined, other parts
    (tool calls, tool results) as JSON."""
    if not is_messages(value):
        return [] if value in (None, "", []) else [{"role": "", "text": _text(value)}]
    found = []
    for message in value:
        parts = message.get("parts")
        if isinstance(parts, list):
            other = [p for p in parts if isinstance(p, Mapping) and p.get("type") != "text"]
            text = "\n".join(filter(None, [parts_text(message), *map(_text, other)]))
        else:
            text = _text(message.get("content", ""))
        found.append({"role": str(message.get("role", "")), "text": text})
    return found


def _documents(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    ids = attributes.get(names.DOC_IDS) or []
    scores = dict(zip(map(str, ids), attributes.get(names.SCORES) or [], strict=False))
    found = []
    for n, doc in enumerate(attributes.get(names.DOCUMENTS) or []):
        doc = doc if isinstance(doc, Mapping) else {"text": doc}
        doc_id = (ids[n] if n < len(ids) else None) or doc.get("id")
        score = scores.get(str(doc_id)) if doc_id is not None else None
        found.append({"id": doc_id, "score": score, "text": _text(doc.get("text", "")),
                      "metadata": doc.get("metadata") or {}})  # fmt: skip
    if not found:  # passages hidden (hide_outputs): their ids and scores still say something
        found = [{"id": i, "score": scores.get(str(i)), "text": None, "metadata": {}} for i in ids]
    return found


def _timings(span: SpanView) -> dict[str, Any]:
    a = span.attributes
    found = {"duration_s": span.duration_s, "time_to_first_token_s": a.get(
        names.TIME_TO_FIRST_TOKEN), "queue_wait_s": a.get(names.QUEUE_WAIT)}  # fmt: skip
    return {k: v for k, v in found.items() if v is not None}


def span_sections(span: SpanView) -> dict[str, Any]:
    """What the detail panel shows of a span, only the parts it has: ``tokens``, ``timings``,
    ``request`` (sampling, model file), ``prompt`` and ``reply`` (messages), ``query`` and
    ``documents`` (retrieval), ``tool`` (name, arguments, result), ``input`` / ``output``."""
    a = span.attributes
    found: dict[str, Any] = {"timings": _timings(span)}
    if span.kind == "llm":
        found["tokens"] = {
            "input": span.input_tokens,
            "output": span.output_tokens,
            "cache_read": a.get(names.CACHE_READ),
            "slot": a.get(names.SLOT),
        }
        request = {label: a[key] for label, key in REQUEST_FIELDS.items() if a.get(key) is not None}
        for label, key in (("grammar", names.GRAMMAR), ("schema", names.SCHEMA)):
            if a.get(key) is not None:
                request[label] = _text(a[key])
        found["request"] = request
        found["prompt"] = _messages(a.get(names.INPUT_MESSAGES))
        found["reply"] = _messages(a.get(names.OUTPUT_MESSAGES))
    elif span.kind == "retriever":
        found["query"] = a.get(names.QUERY)
        found["documents"] = _documents(a)
    elif span.kind == "tool":
        found["tool"] = {"name": a.get(names.TOOL_NAME, span.name),
                         "arguments": None if names.TOOL_ARGUMENTS not in a
                         else _text(a[names.TOOL_ARGUMENTS]),
                         "result": None if names.TOOL_RESULT not in a
                         else _text(a[names.TOOL_RESULT])}  # fmt: skip
    if span.kind not in ("llm", "retriever", "tool"):
        question, answer = child_io(a)
        found.update(input=question, output=answer)
    if a.get(names.HIDDEN):
        found["hidden"] = a[names.HIDDEN]
    return {k: v for k, v in found.items() if v not in (None, {}, [])}
