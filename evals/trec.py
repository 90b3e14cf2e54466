"""TREC files: qrels and runs, read strictly (errors name the file and line) and written back.

- qrels: ``qid iter docid rel`` (TREC, whitespace separated) or BEIR's tab-separated
  ``query-id corpus-id score`` with or without its header line;
- runs: ``qid Q0 docid rank score tag``. Like trec_eval, the rank column is ignored: documents
  are ordered by score (ties by document id), which is what the metrics use.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

from orchestrator.evals.metrics import Qrels, Run, rank_documents

from orchestrator.errors import DataError

_BEIR_HEADER = ("query-id", "corpus-id", "score")


def _lines(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """Non-blank lines of ``path`` split into fields, with 1-based line numbers."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: no such file", fix="check the path")
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line.split()


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read relevance judgements; a malformed or duplicated line is an error naming it."""
    qrels: dict[str, dict[str, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    width = 0  # 4: TREC, 3: BEIR; set by the first judgement, then required of every line
    for number, fields in _lines(path):
        where = f"{path}:{number}"
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
        qid, doc, rel_text = (fields[0], fields[2], fields[3]) if width == 4 else fields
        try:
            rel = int(rel_text)
        except ValueError:
            raise DataError(
                f"{where}: relevance {rel_text!r} is not an integer",
                fix="relevance must be an integer grade: 0 = not relevant, 1, 2, ... = relevant",
            ) from None
        if (qid, doc) in seen:
            raise DataError(
                f"{where}: query {qid!r} judges document {doc!r} twice "
                f"(first on line {seen[qid, doc]})",
                fix="keep one judgement per (query, document)",
            )
        seen[qid, doc] = number
        qrels.setdefault(qid, {})[doc] = rel
    if not qrels:
        raise DataError(f"{path}: no judgements in the file", fix="check it is the qrels file")
    return qrels


def read_run(
    path: str | Path, *, known_docs: Collection[str] | None = None
) -> dict[str, dict[str, float]]:
    """Read a TREC run; with ``known_docs``, a document outside the corpus is an error."""
    run: dict[str, dict[str, float]] = {}
    seen: dict[tuple[str, str], int] = {}
    for number, fields in _lines(path):
        where = f"{path}:{number}"
        if len(fields) != 6:
            raise DataError(
                f"{where}: expected 'qid Q0 docid rank score tag', got {len(fields)} fields",
                fix="write one retrieved document per line with 6 fields",
            )
        qid, _, doc, _, score_text, _ = fields
        try:
            score = float(score_text)
        except ValueError:
            score = math.nan
        if math.isnan(score):
            raise DataError(
                f"{where}: score {score_text!r} is not a number",
                fix="the fifth field is the retrieval score (higher is better)",
            )
        if known_docs is not None and doc not in known_docs:
            raise DataError(
                f"{where}: document {doc!r} is not in the corpus",
                fix="evaluate the run against the dataset it was retrieved from",
            )
        if (qid, doc) in seen:
            raise DataError(
                f"{where}: query {qid!r} retrieves document {doc!r} twice "
                f"(first on line {seen[qid, doc]})",
                fix="list each document at most once per query (keep its best score)",
            )
        seen[qid, doc] = number
        run.setdefault(qid, {})[doc] = score
    if not run:
        raise DataError(f"{path}: the run is empty", fix="check it is the run file")
    return run


def format_run(run: Run, *, tag: str = "orchestrator") -> Iterator[str]:
    """Run lines in trec_eval order, ranks from 1; ``tag`` names the system."""
    if not tag or any(c.isspace() for c in tag):
        raise DataError(f"run tag {tag!r} is empty or has spaces", fix="use e.g. 'hybrid-bm25'")
    for qid, scores in run.items():
        for rank, doc in enumerate(rank_documents(scores), start=1):
            yield f"{qid} Q0 {doc} {rank} {scores[doc]!r} {tag}\n"


def write_run(run: Run, path: str | Path, *, tag: str = "orchestrator") -> Path:
    """Write ``run`` as a TREC run file (one line per retrieved document)."""
    _check_ids(run)
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("w", encoding="utf-8") as handle:
        handle.writelines(format_run(run, tag=tag))
    return file


def write_qrels(qrels: Qrels, path: str | Path) -> Path:
    """Write judgements in TREC's 4-column qrels format."""
    _check_ids(qrels)
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("w", encoding="utf-8") as handle:
        for qid, docs in qrels.items():
            handle.writelines(f"{qid} 0 {doc} {int(rel)}\n" for doc, rel in docs.items())
    return file


def _check_ids(table: Mapping[str, Mapping[str, object]]) -> None:
    """TREC files are whitespace separated: an id with a space would not read back."""
    for qid, docs in table.items():
        for ident in (qid, *docs):
            if not ident or any(c.isspace() for c in ident):
                raise DataError(
                    f"id {ident!r} is empty or contains whitespace, which TREC files cannot hold",
                    fix="use ids without spaces (e.g. replace them with '_')",
                )
