"""Read a BEIR dataset directory (``corpus.jsonl``, ``queries.jsonl``, ``qrels/SPLIT.tsv``) and
relevance judgements in TREC's layout.

This is the one reader of queries files and qrels in the project: the CLI (``search
--queries``), the evaluators (``orchestrator.evals.trec.read_qrels`` is this function) and the
benchmarks all parse with the rules here, so a file accepted by one is accepted by all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import DataError

BEIR_FIX = "a BEIR directory holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv"
QUERIES_FIX = 'write one JSON object per line: {"_id": "1", "text": "the query"}'


@dataclass
class BeirDataset:
    """A BEIR collection. ``queries`` keeps only queries judged in the split (as BEIR does)."""

    corpus: dict[str, dict[str, Any]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    path: Path
    split: str = "test"


def is_beir_dir(path: Path) -> bool:
    """Whether ``path`` is a folder holding a BEIR ``corpus.jsonl`` (``False`` for a folder
    this user may not read: walking it reports that)."""
    try:
        return path.is_dir() and (path / "corpus.jsonl").is_file()
    except PermissionError:
        return False


def _existing(path: str | Path, what: str) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"{file}: no such {what} file", fix="check the path")
    return file


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
    """Documents from BEIR's ``corpus.jsonl``, by ``_id``.

    A line without ``_id``, or a document id given twice, is an error naming file and lines
    (the index builder applies the same rule)."""
    corpus: dict[str, dict[str, Any]] = {}
    first: dict[str, int] = {}
    for number, row in read_jsonl(path):
        if "_id" not in row:
            raise DataError(f"{path}:{number} has no '_id'", fix=BEIR_FIX)
        doc_id = str(row["_id"])
        if doc_id in first:
            raise DataError(
                f"{path}:{number}: document id {doc_id!r} again (first on line {first[doc_id]})",
                fix="give every document its own '_id'",
            )
        first[doc_id] = number
        doc = {k: v for k, v in row.items() if k != "_id"}
        doc.setdefault("title", "")
        doc.setdefault("text", "")
        corpus[doc_id] = doc
    return corpus


def load_queries(path: str | Path) -> dict[str, str]:
    """Queries from BEIR's ``queries.jsonl`` layout, ``{"_id": ..., "text": ...}`` per line.

    A line without both keys, or a query id given twice, is an error naming file and line.
    """
    file = _existing(path, "queries")
    queries: dict[str, str] = {}
    first: dict[str, int] = {}
    for number, row in read_jsonl(file):
        if "_id" not in row or "text" not in row:
            raise DataError(f"{file}:{number} needs '_id' and 'text'", fix=QUERIES_FIX)
        qid = str(row["_id"])
        if qid in first:
            raise DataError(
                f"{file}:{number}: query id {qid!r} again (first on line {first[qid]})",
                fix="give every query its own '_id'",
            )
        first[qid] = number
        queries[qid] = str(row["text"])
    return queries


def numbered_fields(path: str | Path, what: str) -> Iterator[tuple[int, str, list[str]]]:
    """``(line number, "FILE:LINE", fields)`` for each non-blank line of a whitespace-separated
    file (TREC qrels and runs); a missing file is a :class:`DataError`."""
    file = _existing(path, what)
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, f"{file}:{number}", line.split()


_BEIR_HEADER = ("query-id", "corpus-id", "score")
#: Relevance grades: ASCII digits only (Python's int() would also take "٣", "1_0" or "+1").
_GRADE = re.compile(r"-?[0-9]+")


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Relevance judgements: TREC's ``qid iter docid rel`` or BEIR's tab-separated
    ``query-id corpus-id score`` (its header line optional).

    The first judgement fixes the layout for the whole file. A line in another layout, a grade
    that is not an ASCII integer, or a (query, document) judged twice is a :class:`DataError`
    naming the file and line; so is a file without judgements.
    """
    qrels: dict[str, dict[str, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    width = 0  # 4: TREC, 3: BEIR
    for number, where, fields in numbered_fields(path, "qrels"):
        if number == 1 and tuple(f.lower() for f in fields) == _BEIR_HEADER:
            width = 3
            continue
        width = width or (len(fields) if len(fields) in (3, 4) else 4)
        if len(fields) != width:
            layout = "'qid iter docid relevance'" if width == 4 else "'query-id corpus-id score'"
            raise DataError(
                f"{where}: expected {layout} ({width} fields), got {len(fields)} fields: "
                f"{' '.join(fields)!r}",
                fix="write one judgement per line, every line in the same layout",
            )
        qid, doc, grade = (fields[0], fields[2], fields[3]) if width == 4 else fields
        if not _GRADE.fullmatch(grade):
            raise DataError(
                f"{where}: relevance {grade!r} is not an integer",
                fix="relevance is an integer grade in ASCII digits: 0 = not relevant, 1, 2, ...",
            )
        if (qid, doc) in seen:
            raise DataError(
                f"{where}: query {qid!r} judges document {doc!r} again "
                f"(first on line {seen[qid, doc]})",
                fix="keep one judgement per (query, document)",
            )
        seen[qid, doc] = number
        qrels.setdefault(qid, {})[doc] = int(grade)
    if not qrels:
        raise DataError(f"{path}: no judgements in the file", fix="check it is the qrels file")
    return qrels


#: The BEIR name of :func:`read_qrels` (one parser, one set of rules).
load_qrels = read_qrels


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
    qrels = read_qrels(files["qrels"])
    queries = {q: t for q, t in load_queries(files["queries"]).items() if q in qrels}
    return BeirDataset(load_corpus(files["corpus"]), queries, qrels, root, split)
