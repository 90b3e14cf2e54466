"""RAG question sets: JSONL with Ragas' field names, read strictly, answered by a pipeline.

Each line: ``user_input`` and ``reference`` (required), optionally ``retrieved_contexts``,
``response``, ``reference_contexts`` (for the non-LLM context metrics), ``reference_context_ids``
(the index passages they are, as ``eval generate`` writes) and ``id``. A sample
without ``response`` / ``retrieved_contexts`` gets them from a RAG pipeline (an index + model).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator.errors import DataError
from orchestrator.models.together import map_together

REQUIRED = ("user_input", "reference")
OPTIONAL = ("retrieved_contexts", "response", "reference_contexts", "reference_context_ids", "id")


@dataclass(frozen=True)
class QASample:
    """One question with its reference answer and, once answered, response and contexts."""

    id: str
    user_input: str
    reference: str
    retrieved_contexts: list[str] | None = None
    response: str | None = None
    reference_contexts: list[str] | None = None
    reference_context_ids: list[str] | None = None
    where: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    trace: dict[str, Any] = field(default_factory=dict)
    """The strategy's record (``strategy``, ``queries``, ...) as ``orchestrator rag --json``
    prints it, when a pipeline answered the sample."""

    def to_ragas(self) -> dict[str, Any]:
        """The fields of a Ragas ``SingleTurnSample`` (absent ones left out)."""
        row = {
            "user_input": self.user_input,
            "reference": self.reference,
            "retrieved_contexts": self.retrieved_contexts,
            "response": self.response,
            "reference_contexts": self.reference_contexts,
        }
        return {k: v for k, v in row.items() if v is not None}


def _strings(value: Any, name: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{where}: '{name}' must be a list of strings", fix='e.g. ["text", ...]')
    return list(value)


def parse_sample(row: Any, where: str, number: int) -> QASample:
    """One JSONL object as a :class:`QASample`; unknown or missing fields name the line."""
    from orchestrator.errors import unknown_option

    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object", fix="one object per line")
    for key in row:
        if key not in REQUIRED + OPTIONAL:
            error = unknown_option(key, REQUIRED + OPTIONAL, where=where)
            raise DataError(error.message, fix=error.fix)
    for key in REQUIRED:
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise DataError(f"{where}: '{key}' is missing or empty", fix=f"add a '{key}' string")
    contexts = row.get("retrieved_contexts")
    references = row.get("reference_contexts")
    response = row.get("response")
    ids = row.get("reference_context_ids")
    if response is not None and not isinstance(response, str):
        raise DataError(f"{where}: 'response' must be a string", fix="write the answer as text")
    return QASample(
        id=str(row.get("id", number)),
        user_input=row["user_input"],
        reference=row["reference"],
        response=response,
        retrieved_contexts=None
        if contexts is None
        else _strings(contexts, "retrieved_contexts", where),
        reference_contexts=None
        if references is None
        else _strings(references, "reference_contexts", where),
        reference_context_ids=None
        if ids is None
        else _strings(ids, "reference_context_ids", where),
        where=where,
    )


def jsonl_objects(path: str | Path) -> Iterator[tuple[str, Any]]:
    """``(file:line, parsed)`` for each non-blank line of a JSONL file; a missing file or a
    line that is not JSON is a :class:`DataError` naming it."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: no such file", fix="check the --dataset path")
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{file}:{number}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{where}: not valid JSON ({exc.msg})", fix="one JSON object per line"
                ) from None


def load_qa(path: str | Path) -> list[QASample]:
    """Read a question set; a malformed line, an unknown field or an empty file is an error."""
    file = Path(path)
    samples: list[QASample] = []
    for where, row in jsonl_objects(file):
        samples.append(parse_sample(row, where, len(samples) + 1))
    if not samples:
        raise DataError(
            f"{file}: the question set is empty",
            fix='add lines like {"user_input": "...", "reference": "..."}',
        )
    ids = [s.id for s in samples]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise DataError(f"{file}: duplicate sample id {duplicated[0]!r}", fix="make ids unique")
    return samples


def answer_samples(
    samples: Iterable[QASample],
    chain: Any,
    *,
    progress: Callable[[int], None] | None = None,
    concurrency: int = 1,
) -> list[QASample]:
    """Fill in ``response`` and ``retrieved_contexts`` from a RAG chain where missing.

    ``chain.invoke({"question": q})`` must return ``{"answer": str, "sources": [{"text"}]}``
    (``chains.rag.rag_chain``). Samples that already carry both are left as they are.
    ``concurrency`` samples are answered at a time (the answering model's ``parallel``: its
    batched engine decodes them together); the samples come back in their order.
    """

    def answered(sample: QASample) -> QASample:
        if sample.response is None or sample.retrieved_contexts is None:
            sample = _answered(sample, chain.invoke({"question": sample.user_input}))
        if progress:
            progress(1)
        return sample

    return map_together(answered, samples, limit=concurrency)


def _answered(sample: QASample, result: Mapping[str, Any]) -> QASample:
    """``sample`` with what it lacked from the chain's ``result``."""
    from orchestrator.agents.pipelines.answers import AnswerCollector

    collector = AnswerCollector()
    collector.add(result)
    return replace(
        sample,
        response=sample.response if sample.response is not None else result["answer"],
        retrieved_contexts=sample.retrieved_contexts
        if sample.retrieved_contexts is not None
        else [str(s["text"]) for s in collector.sources],
        sources=collector.sources,
        trace=collector.trace,
    )


def to_evaluation_dataset(samples: Iterable[QASample]) -> Any:
    """A Ragas ``EvaluationDataset`` of ``SingleTurnSample``s, e.g. for ``ragas.evaluate``."""
    from orchestrator.evals.judge import import_ragas

    import_ragas()
    from ragas.dataset_schema import EvaluationDataset, SingleTurnSample

    return EvaluationDataset(samples=[SingleTurnSample(**s.to_ragas()) for s in samples])
