"""IR measures computed by trec_eval's own C code (``pytrec_eval``), behind one entry point.

:func:`evaluate_run` takes trec_eval's measure names (``map``, ``ndcg_cut_10``, ``recip_rank``,
``P_10``, ``recall_100``, ...; ``ndcg_cut.10`` is accepted too). The offered names are the
closed table :data:`MEASURES`; an unknown name is an error with a "did you mean".

trec_eval's conventions apply because trec_eval computes the values: ranking by score
descending, ties by document id descending; a judgement >= 1 is relevant; nDCG gains are the
judgement values; ``num_*`` measures are summed over queries, the others averaged. What this
wrapper does around pytrec_eval, each for a reason:

- which queries count: those both in the run and in the qrels (a judged query with only
  non-relevant judgements counts, and scores 0); ``complete=True`` also counts the judged
  queries the run misses, with an empty ranking (``trec_eval -c``);
- empty rankings are scored here (every measure 0, ``num_rel`` the query's relevant count):
  trec_eval's buffers are unallocated until it has seen a non-empty ranking, so an empty
  ranking's ``num_rel`` would depend on what the process evaluated before, and its
  interpolated precision is NaN;
- judgements below 0 are given to trec_eval as 0: a query whose judgements are all negative
  makes pytrec_eval crash or miscount ``num_ret``; for every measure in :data:`MEASURES` a
  negative judgement and a 0 give the same values (both judged non-relevant for these);
- scores and grades are checked first: a NaN or non-numeric score, or a non-integer grade, is
  a :class:`DataError` naming the query and document.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import DataError, OptionError, unknown_option
from orchestrator.extras import require

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]

#: trec_eval's relevance threshold (``-l 1``): judgements >= 1 are relevant.
RELEVANCE_LEVEL = 1


@dataclass(frozen=True)
class Measure:
    """An offered trec_eval measure: whether its name takes a cutoff (``P_10``), and what it is."""

    needs_cutoff: bool
    about: str


#: The trec_eval measures offered, by name; names with a cutoff are written ``name_k``.
MEASURES: dict[str, Measure] = {
    "map": Measure(False, "mean average precision"),
    "map_cut": Measure(True, "average precision over the top k"),
    "ndcg": Measure(False, "nDCG over the whole ranking, graded gains"),
    "ndcg_cut": Measure(True, "nDCG@k, graded gains"),
    "recip_rank": Measure(False, "reciprocal rank of the first relevant (MRR)"),
    "P": Measure(True, "precision at k"),
    "recall": Measure(True, "recall at k"),
    "Rprec": Measure(False, "precision at R, R = number of relevant"),
    "success": Measure(True, "1 if a relevant document is in the top k"),
    "num_ret": Measure(False, "documents retrieved (summed over queries)"),
    "num_rel": Measure(False, "relevant documents (summed over queries)"),
    "num_rel_ret": Measure(False, "relevant retrieved (summed over queries)"),
}

#: The recall levels of the standard precision-recall graph (trec_eval's ``iprec_at_recall``).
RECALL_LEVELS = [i / 10 for i in range(11)]

_NAME = re.compile(r"^(?P<base>.+?)(?:[_.](?P<k>\d+))?$")


def parse_measure(name: str) -> tuple[str, Measure, int | None]:
    """``"ndcg_cut.10"`` / ``"ndcg_cut_10"`` -> (``"ndcg_cut_10"``, its Measure, 10)."""
    match = _NAME.match(name.strip())
    base, cut = (match["base"], match["k"]) if match else (name, None)
    if base not in MEASURES and name in MEASURES:
        base, cut = name, None
    measure = MEASURES.get(base)
    if measure is None:
        raise unknown_option(name, _examples(), where="evaluate_run")
    if measure.needs_cutoff and cut is None:
        raise OptionError(
            f"measure {name!r} needs a cutoff", fix=f"write it with one, e.g. {base}_10"
        )
    if not measure.needs_cutoff and cut is not None:
        raise OptionError(f"measure {base!r} takes no cutoff", fix=f"write {base!r}")
    k = int(cut) if cut is not None else None
    if k is not None and k < 1:
        raise OptionError(f"measure {name!r} has cutoff 0", fix=f"use a positive cutoff: {base}_10")
    return (f"{base}_{k}" if k is not None else base), measure, k


def _examples() -> list[str]:
    return [f"{n}_10" if m.needs_cutoff else n for n, m in MEASURES.items()]


def rank_documents(scores: Mapping[str, float]) -> list[str]:
    """Document ids in trec_eval's order (score descending, then document id descending): the
    order a written run lists them in."""
    return [doc for doc, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def _pytrec_eval() -> Any:
    return require("pytrec_eval", extra="eval", purpose="IR evaluation (trec_eval measures)")


def _grades(qid: str, judgements: Mapping[str, int]) -> dict[str, int]:
    """The judgements as trec_eval is given them: integers, negatives as 0 (module docstring)."""
    out = {}
    for doc, grade in judgements.items():
        if isinstance(grade, bool) or not isinstance(grade, int):
            raise DataError(
                f"query {qid!r}, document {doc!r}: judgement {grade!r} is not an integer",
                fix="judgements are integer grades: 0 = not relevant, 1, 2, ... = relevant",
            )
        out[doc] = max(grade, 0)
    return out


def _scores(qid: str, scores: Mapping[str, float]) -> dict[str, float]:
    out = {}
    for doc, score in scores.items():
        if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
            raise DataError(
                f"query {qid!r}, document {doc!r}: score {score!r} is not a number",
                fix="give every retrieved document a numeric score (higher is better)",
            )
        out[doc] = float(score)
    return out


def _counted(qrels: Qrels, run: Run, complete: bool) -> tuple[dict[str, dict[str, int]], list[str]]:
    """The judged queries (grades checked) and the query ids that count, in run order."""
    judged = {qid: _grades(qid, docs) for qid, docs in qrels.items() if docs}
    qids = [qid for qid in run if qid in judged]
    if complete:
        qids += [qid for qid in judged if qid not in run]
    if not qids:
        raise DataError(
            f"no query can be scored: the run has {len(run)} queries, the qrels "
            f"{len(judged)} judged ones, and they share no id",
            fix="check that the run and the qrels come from the same dataset (same query ids)",
        )
    return judged, qids


def _trec_eval(
    judged: dict[str, dict[str, int]], run: Run, qids: list[str], names: set[str]
) -> dict[str, dict[str, float]]:
    """pytrec_eval's per-query values for the non-empty rankings among ``qids``."""
    ranked = {qid: _scores(qid, run[qid]) for qid in qids if run.get(qid)}
    if not ranked:
        return {}
    relevance = {qid: judged[qid] for qid in ranked}
    evaluator = _pytrec_eval().RelevanceEvaluator(relevance, names, relevance_level=RELEVANCE_LEVEL)
    return evaluator.evaluate(ranked)  # type: ignore[no-any-return]


def _empty_ranking(names: Iterable[str], judgements: Mapping[str, int]) -> dict[str, float]:
    relevant = float(sum(1 for grade in judgements.values() if grade >= RELEVANCE_LEVEL))
    return {name: relevant if name == "num_rel" else 0.0 for name in names}


def evaluate_run(
    qrels: Qrels,
    run: Run,
    metrics: Iterable[str] = ("map", "ndcg_cut_10", "recip_rank", "P_10", "recall_100"),
    *,
    complete: bool = False,
) -> dict[str, Any]:
    """Score ``run`` against ``qrels`` with trec_eval's measures.

    Returns ``{"per_query": {qid: {measure: value}}, "mean": {measure: value}}``; see the module
    docstring for which queries count. Raises :class:`DataError` when no query can be scored.
    """
    names = list(dict.fromkeys(parse_measure(m)[0] for m in metrics))
    if not names:
        raise OptionError("evaluate_run got no metrics", fix="pass e.g. ['map', 'ndcg_cut_10']")
    judged, qids = _counted(qrels, run, complete)
    scored = _trec_eval(judged, run, qids, set(names))
    per_query = {
        qid: {n: scored[qid][n] for n in names}
        if qid in scored
        else _empty_ranking(names, judged[qid])
        for qid in qids
    }
    aggregate = _pytrec_eval().compute_aggregated_measure
    mean = {n: float(aggregate(n, [values[n] for values in per_query.values()])) for n in names}
    return {"per_query": per_query, "mean": mean}


def precision_recall_points(qrels: Qrels, run: Run) -> list[tuple[float, float]]:
    """The averaged 11-point interpolated precision-recall curve (trec_eval's
    ``iprec_at_recall``), for plots. Queries count as in :func:`evaluate_run`; an empty
    ranking scores 0 at every level (trec_eval would give NaN)."""
    judged, qids = _counted(qrels, run, complete=False)
    scored = _trec_eval(judged, run, qids, {"iprec_at_recall"})
    keys = [f"iprec_at_recall_{level:.2f}" for level in RECALL_LEVELS]
    sums = [math.fsum(scored[q][key] for q in scored) for key in keys]
    return [(level, total / len(qids)) for level, total in zip(RECALL_LEVELS, sums, strict=True)]
