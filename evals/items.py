"""Per-item results: one JSONL row per configuration, repetition and item, beside the report.

``items.jsonl`` holds what a later comparison (``orchestrator eval compare``, a suite's
``--baseline``) pairs item by item, and what a person reads to see why a query or a sample
changed::

    {"configuration": "hybrid", "repeat": 0, "seed": 0, "id": "q7",
     "metrics": {"map": 0.41, ...}, "question": ..., "answer": ..., "sources": ["d3", ...],
     "tool_calls": [...], "spec_sha256": "...", "model_sha256": "..."}

``sources`` are the ranked document ids (retrieval: the first ten) or the numbered sources an
answer was given (RAG: their ``doc_id``); ``spec_sha256`` is the digest of the configuration's
spec as recorded, ``model_sha256`` the digest of its GGUF file (``None`` where no model is
used, ``served:NAME at URL`` for a served model).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator.errors import DataError

ITEMS_FILE = "items.jsonl"
RESULTS_FILE = "results.json"
#: Ranked document ids kept per query (retrieval).
TOP_IDS = 10


def spec_digest(settings: Mapping[str, Any]) -> str:
    """The SHA-256 of a configuration's recorded spec (keys sorted)."""
    text = json.dumps(settings, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def repetitions(config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The configuration's runs: its ``repeats`` (``--repeat N``), else itself."""
    return list(config.get("repeats") or [config])


def item_values(run: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """One run's item id -> metric -> value (retrieval queries, RAG samples, agent tasks)."""
    if "per_query" in run:
        return {qid: dict(values) for qid, values in run["per_query"].items()}
    return {str(s["id"]): dict(s["scores"]) for s in run.get("samples", [])}


def _source_ids(sample: Mapping[str, Any]) -> list[str]:
    return [
        str(s.get("doc_id") or s.get("source") or s.get("n")) for s in sample.get("sources", [])
    ]


def rows(results: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The ``items.jsonl`` rows of a run's ``results.json`` payload."""
    for config in results["configurations"]:
        common = {
            "configuration": config["name"],
            "spec_sha256": config.get("spec_sha256") or spec_digest(config.get("settings", {})),
            "model_sha256": config.get("model_sha256"),
        }
        for number, run in enumerate(repetitions(config)):
            head = {**common, "repeat": number, "seed": run.get("seed")}
            if "per_query" in run:
                top = run.get("top", {})
                for qid, values in run["per_query"].items():
                    yield {**head, "id": qid, "metrics": values, "sources": top.get(qid, [])}
                continue
            for sample in run.get("samples", []):
                yield {
                    **head,
                    "id": str(sample["id"]),
                    "metrics": sample["scores"],
                    "question": sample.get("user_input") or sample.get("input"),
                    "answer": sample.get("response") or sample.get("output"),
                    "sources": _source_ids(sample),
                    "tool_calls": sample.get("tool_calls", []),
                }


def write_items(results: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write ``out_dir/items.jsonl``; returns its path."""
    path = Path(out_dir) / ITEMS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows(results):
            handle.write(json.dumps(row, ensure_ascii=False, default=_nan_free) + "\n")
    return path


def _nan_free(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else str(value)


def _average(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per item and metric, the mean over the repetitions that scored it."""
    sums: dict[str, dict[str, list[float]]] = {}
    for values in runs:
        for item, metrics in values.items():
            for metric, value in metrics.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    sums.setdefault(item, {}).setdefault(metric, []).append(float(value))
    return {i: {m: math.fsum(v) / len(v) for m, v in ms.items()} for i, ms in sums.items()}


def results_items(results: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """A ``results.json`` payload's configuration -> item -> metric -> value (repetitions
    averaged per item)."""
    return {
        c["name"]: _average([item_values(run) for run in repetitions(c)])
        for c in results["configurations"]
    }


def read_rows(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """An ``items.jsonl`` file as configuration -> item -> metric -> value (repetitions
    averaged)."""
    runs: dict[tuple[str, int], dict[str, dict[str, float]]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key = (str(row["configuration"]), int(row.get("repeat") or 0))
                runs.setdefault(key, {})[str(row["id"])] = {
                    m: v for m, v in row["metrics"].items() if v is not None
                }
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise DataError(
                    f"{path}:{number}: not an items.jsonl row ({exc})",
                    fix="pass a run directory written by `orchestrator eval ... --out DIR`",
                ) from None
    names = dict.fromkeys(name for name, _ in runs)
    return {n: _average([v for (name, _), v in runs.items() if name == n]) for n in names}


def load_items(path: str | Path) -> dict[str, dict[str, dict[str, float]]]:
    """A run's per-item values from a run directory (its ``items.jsonl``, else its
    ``results.json``), an ``items.jsonl`` file or a ``results.json`` file."""
    target = Path(path)
    if target.is_dir():
        target = target / ITEMS_FILE if (target / ITEMS_FILE).is_file() else target / RESULTS_FILE
    if not target.is_file():
        raise DataError(
            f"{path}: no such run (looked for {ITEMS_FILE} or {RESULTS_FILE})",
            fix="pass the --out directory of an eval run, or its results.json",
        )
    if target.suffix == ".jsonl":
        return read_rows(target)
    return results_items(read_results(target))


def read_results(path: str | Path) -> dict[str, Any]:
    """A ``results.json`` payload, checked to hold configurations."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(
            f"{file}: not a readable results.json ({exc})",
            fix="pass the results.json of a previous suite run",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("configurations"), list):
        raise DataError(f"{file}: has no 'configurations'", fix="pass a suite's results.json")
    return data


def score_means(
    samples: Sequence[Mapping[str, Any]], metrics: Sequence[str]
) -> dict[str, float | None]:
    """Per metric, the mean of the samples' ``scores`` that hold it (None: none does)."""
    out: dict[str, float | None] = {}
    for name in metrics:
        values = [s["scores"][name] for s in samples if name in s["scores"]]
        out[name] = math.fsum(values) / len(values) if values else None
    return out


def has_items(config: Mapping[str, Any]) -> bool:
    """Whether a configuration's result holds per-item values (older results may not)."""
    return any(item_values(run) for run in repetitions(config))
