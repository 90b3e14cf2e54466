"""Read a BEIR dataset directory: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/SPLIT.tsv``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import DataError

BEIR_FIX = "a BEIR directory holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv"


@dataclass
class BeirDataset:
    """A BEIR collection. ``queries`` keeps only queries judged in the split (as BEIR does)."""

    corpus: dict[str, dict[str, Any]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    path: Path
    split: str = "test"


def is_beir_dir(path: Path) -> bool:
    return path.is_dir() and (path / "corpus.jsonl").is_file()


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a malformed line is a :class:`DataError`."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}:{number} is not valid JSON: {exc.msg}",
                    fix="each line of a .jsonl file must be one JSON object",
                ) from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number} is not a JSON object", fix=BEIR_FIX)
            yield number, row


def load_corpus(path: Path) -> dict[str, dict[str, Any]]:
    corpus: dict[str, dict[str, Any]] = {}
    for number, row in read_jsonl(path):
        if "_id" not in row:
            raise DataError(f"{path}:{number} has no '_id'", fix=BEIR_FIX)
        doc = {k: v for k, v in row.items() if k != "_id"}
        doc.setdefault("title", "")
        doc.setdefault("text", "")
        corpus[str(row["_id"])] = doc
    return corpus


def load_queries(path: Path) -> dict[str, str]:
    queries = {}
    for number, row in read_jsonl(path):
        if "_id" not in row or "text" not in row:
            raise DataError(f"{path}:{number} needs '_id' and 'text'", fix=BEIR_FIX)
        queries[str(row["_id"])] = str(row["text"])
    return queries


_QREL_SCORE = re.compile(r"-?[0-9]+")


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Parse ``query-id<TAB>corpus-id<TAB>score`` lines (a header line is skipped)."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts or (number == 1 and parts[0] == "query-id"):
                continue
            if len(parts) != 3 or not _QREL_SCORE.fullmatch(parts[2]):
                raise DataError(
                    f"{path}:{number} is not 'query-id corpus-id score': {line.strip()!r}",
                    fix=BEIR_FIX,
                )
            judged = qrels.setdefault(parts[0], {})
            if parts[1] in judged:
                raise DataError(
                    f"{path}:{number} judges document {parts[1]!r} for query {parts[0]!r} again",
                    fix="keep one judgement per (query, document)",
                )
            judged[parts[1]] = int(parts[2])
    return qrels


def load_beir(path: str | Path, split: str = "test") -> BeirDataset:
    """Load a BEIR directory; missing or malformed files are :class:`DataError` with the fix."""
    root = Path(path).expanduser()
    files = {
        "corpus": root / "corpus.jsonl",
        "queries": root / "queries.jsonl",
        "qrels": root / "qrels" / f"{split}.tsv",
    }
    for file in files.values():
        if not file.is_file():
            raise DataError(f"{root} is not a BEIR directory: {file} is missing", fix=BEIR_FIX)
    qrels = load_qrels(files["qrels"])
    queries = {q: t for q, t in load_queries(files["queries"]).items() if q in qrels}
    return BeirDataset(load_corpus(files["corpus"]), queries, qrels, root, split)
