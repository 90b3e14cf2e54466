"""Test-set generation: question / reference answer / reference contexts rows from an index.

For a user with documents but no questions: passages are drawn from a folder index (seeded),
and a model writes, for each, a question the passage answers and its answer; a share of the
rows are two-passage questions over a passage and its nearest passage from another document
(found by the index's own search), whose answer needs both. Every generation is decoded under
a JSON schema (``capabilities(llm).constrain``: a llama.cpp grammar for a local model), so
every reply parses; rows whose question or answer is empty, or whose question repeats an
earlier one (same words, or a word-set Jaccard similarity of 0.8 or more), are dropped.

Each row is a question set line ``eval rag`` reads (:mod:`evals.qa`)::

    {"id": "gen-0001", "user_input": "...", "reference": "...",
     "reference_contexts": ["passage text", ...], "reference_context_ids": ["chunk id", ...]}
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.errors import DataError, OrchestratorError

#: Passages shorter than this (characters) say too little to ask about.
MIN_PASSAGE = 120
#: Word-set Jaccard similarity at which two questions are the same question.
NEAR_DUPLICATE = 0.8
QUESTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 8, "maxLength": 200},
        "answer": {"type": "string", "minLength": 1, "maxLength": 300},
    },
    "required": ["question", "answer"],
}
SINGLE = (
    "Write one question that the passage below answers, and its answer taken from the "
    "passage. The question must make sense without the passage.\n\nPassage:\n{a}\n\n"
    'Reply with JSON: {{"question": ..., "answer": ...}}'
)
DOUBLE = (
    "Write one question whose answer needs BOTH passages below, and that answer, taken from "
    "the passages. The question must make sense without the passages.\n\nPassage 1:\n{a}\n\n"
    'Passage 2:\n{b}\n\nReply with JSON: {{"question": ..., "answer": ...}}'
)


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"\w+", text.lower()))


class Deduplicator:
    """Remembers questions; :meth:`seen` is true for a repeat or a near-repeat."""

    def __init__(self, threshold: float = NEAR_DUPLICATE) -> None:
        self.threshold = threshold
        self.kept: list[frozenset[str]] = []

    def seen(self, question: str) -> bool:
        words = _words(question)
        for other in self.kept:
            union = len(words | other)
            if union and len(words & other) / union >= self.threshold:
                return True
        self.kept.append(words)
        return False


def index_passages(index_dir: str | Path) -> list[Any]:
    """The index's chunks long enough to ask about, one per distinct text."""
    from orchestrator.retrieval import open_store

    path = Path(index_dir).expanduser()
    if not (path / "manifest.json").is_file():
        raise DataError(
            f"{path} holds no index", fix=f"build one: orchestrator index DOCS --index {path}"
        )
    chunks = {
        c.text.strip(): c for c in open_store(path).chunks if len(c.text.strip()) >= MIN_PASSAGE
    }
    if not chunks:
        raise DataError(
            f"{path}: no passage of {MIN_PASSAGE} characters or more to write questions from",
            fix="index documents with more text",
        )
    return list(chunks.values())


def _partner(retriever: Any, chunk: Any, by_id: dict[str, Any], rng: random.Random) -> Any:
    """The nearest passage of another document (the index's search), else a random one."""
    if retriever is not None:
        for doc in retriever.invoke(chunk.text[:1000]):
            other = by_id.get(str(doc.metadata.get("chunk_id")))
            if other is not None and other.doc_id != chunk.doc_id:
                return other
    others = [c for c in by_id.values() if c.doc_id != chunk.doc_id]
    return rng.choice(others) if others else None


def _ask(llm: Any, prompt: str, max_tokens: int) -> dict[str, str] | None:
    """One generation under the schema; None when the reply is empty or does not parse."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from orchestrator.models import capabilities

    constraint = capabilities(llm).constrain(schema=QUESTION_SCHEMA)
    messages = [
        SystemMessage("You write test questions. Reply with one JSON object."),
        HumanMessage(prompt),
    ]
    try:
        reply = llm.invoke(messages, max_tokens=max_tokens, **constraint)
        data = json.loads(str(reply.content), strict=False)
    except (OrchestratorError, ValueError):
        return None
    question, answer = str(data.get("question", "")).strip(), str(data.get("answer", "")).strip()
    return {"question": question, "answer": answer} if question and answer else None


def generate_rows(
    passages: Sequence[Any],
    count: int,
    llm: Any,
    *,
    retriever: Any = None,
    two_passage: float = 0.3,
    seed: int = 0,
    max_tokens: int = 256,
    progress: Any = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Up to ``count`` rows and the tallies (``duplicates``, ``failed``); at most three
    attempts per wanted row."""
    rng = random.Random(seed)
    order = list(passages)
    rng.shuffle(order)
    by_id = {c.chunk_id: c for c in passages}
    dedup, rows = Deduplicator(), list[dict[str, Any]]()
    tally = {"duplicates": 0, "failed": 0, "two_passage": 0}
    for attempt in range(count * 3):
        if len(rows) >= count:
            break
        first = order[attempt % len(order)]
        pair = [first]
        if rng.random() < two_passage:
            other = _partner(retriever, first, by_id, rng)
            pair += [other] if other is not None else []
        prompt = (
            DOUBLE.format(a=pair[0].text, b=pair[1].text)
            if len(pair) == 2
            else SINGLE.format(a=first.text)
        )
        made = _ask(llm, prompt, max_tokens)
        if made is None:
            tally["failed"] += 1
        elif dedup.seen(made["question"]):
            tally["duplicates"] += 1
        else:
            tally["two_passage"] += len(pair) == 2
            rows.append({
                "id": f"gen-{len(rows) + 1:04d}", "user_input": made["question"],
                "reference": made["answer"], "reference_contexts": [c.text for c in pair],
                "reference_context_ids": [c.chunk_id for c in pair],
            })  # fmt: skip
            if progress:
                progress(1)
    return rows, tally


def generate_dataset(
    index_dir: str | Path,
    count: int,
    out: str | Path,
    *,
    model: Any = None,
    llm: Any = None,
    two_passage: float = 0.3,
    seed: int = 0,
    max_tokens: int = 256,
    progress: bool = False,
) -> dict[str, Any]:
    """Write ``count`` rows from the index at ``index_dir`` to ``out`` (JSONL) with ``llm``
    (default: ``model``'s chat model, greedy); returns what was written and dropped."""
    from orchestrator.retrieval import open_retriever
    from orchestrator.retrieval.progress import progress_bar

    passages = index_passages(index_dir)
    if llm is None:
        from orchestrator.models import ModelSpec, chat_model

        spec = model or ModelSpec()
        llm = chat_model(
            spec.model_copy(update={"temperature": spec.temperature or 0.0, "seed": spec.seed or 0})
        )
    modes = json.loads((Path(index_dir).expanduser() / "manifest.json").read_text()).get(
        "modes", []
    )
    retriever = (
        open_retriever(index_dir, mode="bm25" if "bm25" in modes else "dense", k=6)
        if two_passage
        else None
    )
    with progress_bar(progress) as task:
        rows, tally = generate_rows(
            passages, count, llm, retriever=retriever, two_passage=two_passage, seed=seed,
            max_tokens=max_tokens, progress=task("writing questions", count),
        )  # fmt: skip
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return {"path": str(path), "written": len(rows), **tally}
