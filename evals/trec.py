"""TREC files: qrels and runs, read strictly (errors name the file and line) and written back.

- qrels: ``qid iter docid rel`` (TREC, whitespace separated) or BEIR's tab-separated
  ``query-id corpus-id score`` with or without its header line. :func:`read_qrels` is the
  core's one qrels parser (``orchestrator.retrieval.beir.read_qrels``), re-exported here;
- runs: ``qid Q0 docid rank score tag``. Like trec_eval, the rank column is ignored: documents
  are ordered by score (ties by document id), which is what the metrics use. The CLI's
  ``search --run-out`` writes through :func:`write_run`, so every run passes its checks.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

from orchestrator.errors import DataError
from orchestrator.evals.metrics import Qrels, Run, rank_documents
from orchestrator.retrieval.beir import numbered_fields, read_qrels

__all__ = ["check_tag", "format_run", "read_qrels", "read_run", "write_qrels", "write_run"]


def read_run(
    path: str | Path, *, known_docs: Collection[str] | None = None
) -> dict[str, dict[str, float]]:
    """Read a TREC run; with ``known_docs``, a document outside the corpus is an error."""
    run: dict[str, dict[str, float]] = {}
    seen: dict[tuple[str, str], int] = {}
    for number, where, fields in numbered_fields(path, "run"):
        if len(fields) != 6:
            raise DataError(
                f"{where}: expected 'qid Q0 docid rank score tag', got {len(fields)} fields",
                fix="write one retrieved document per line with 6 fields",
            )
        qid, _, doc, _, score_text, _ = fields
        plain = score_text.isascii() and "_" not in score_text  # float() takes "١" and "1_0"
        try:
            score = float(score_text) if plain else math.nan
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


def check_tag(tag: str) -> str:
    """``tag`` if it can be a run's sixth column (not empty, no whitespace), else a DataError."""
    if not tag or any(c.isspace() for c in tag):
        raise DataError(f"run tag {tag!r} is empty or has spaces", fix="use e.g. 'hybrid-bm25'")
    return tag


def format_run(run: Run, *, tag: str = "orchestrator") -> Iterator[str]:
    """Run lines in trec_eval order, ranks from 1; ``tag`` names the system."""
    check_tag(tag)
    for qid, scores in run.items():
        for rank, doc in enumerate(rank_documents(scores), start=1):
            yield f"{qid} Q0 {doc} {rank} {scores[doc]!r} {tag}\n"


def write_run(run: Run, path: str | Path, *, tag: str = "orchestrator") -> Path:
    """Write ``run`` as a TREC run file (one line per retrieved document); ids with spaces or
    a bad tag are refused before the file is touched."""
    _check_ids(run)
    check_tag(tag)
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
