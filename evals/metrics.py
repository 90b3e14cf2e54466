"""IR metrics computed exactly as trec_eval computes them (checked against pytrec_eval).

One entry point, :func:`evaluate_run`, takes trec_eval's measure names (``map``, ``ndcg_cut_10``,
``recip_rank``, ``P_10``, ``recall_100``, ...). Each measure is a small pure function of one
query's ranked relevance list, registered in :data:`MEASURES`; unknown names are errors built
from that table.

trec_eval's conventions, reproduced on purpose because they change the numbers:

- ranking: by score descending, ties broken by document id descending (byte order), whatever
  order the run lists them in;
- a document is relevant when its judgement is >= 1; judgements below 0 count as unjudged;
  nDCG gains are the judgement values;
- which queries count: those both in the run and in the qrels (queries in the qrels with only
  non-relevant judgements count, and score 0); ``complete=True`` also counts the qrels queries
  the run misses, with an empty ranking (``trec_eval -c``);
- the mean is the arithmetic mean over counted queries, except ``num_*`` measures, summed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import DataError, OptionError, unknown_option

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]

#: trec_eval's relevance threshold (``-l 1``): judgements >= 1 are relevant.
RELEVANCE_LEVEL = 1


@dataclass(frozen=True)
class Judged:
    """One query's ranking seen through its judgements: what each measure is computed from.

    ``rels[i]`` is the judgement of the document at rank ``i + 1`` (``None``: not judged);
    ``ideal`` holds the positive judgements in decreasing order (the ideal ranking's gains).
    """

    rels: tuple[int | None, ...]
    num_rel: int
    ideal: tuple[int, ...]

    def relevant(self, i: int) -> bool:
        rel = self.rels[i]
        return rel is not None and rel >= RELEVANCE_LEVEL


def rank_documents(scores: Mapping[str, float]) -> list[str]:
    """Document ids in trec_eval's order: score descending, then document id descending."""
    return [doc for doc, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def judge(scores: Mapping[str, float], judgements: Mapping[str, int]) -> Judged:
    """Rank ``scores`` and attach the judgements (negative ones count as unjudged)."""
    rels: list[int | None] = []
    for doc in rank_documents(scores):
        rel = judgements.get(doc)
        rels.append(rel if rel is not None and rel >= 0 else None)
    num_rel = sum(1 for rel in judgements.values() if rel >= RELEVANCE_LEVEL)
    ideal = tuple(sorted((rel for rel in judgements.values() if rel > 0), reverse=True))
    return Judged(tuple(rels), num_rel, ideal)


# --- measures: pure functions of (Judged, cutoff) -------------------------------------------


def _average_precision(q: Judged, k: int | None) -> float:
    limit = len(q.rels) if k is None else min(k, len(q.rels))
    found, total = 0, 0.0
    for i in range(limit):
        if q.relevant(i):
            found += 1
            total += found / (i + 1)
    return total / q.num_rel if q.num_rel else 0.0


def _dcg(gains: Iterable[float]) -> float:
    total = 0.0
    for i, gain in enumerate(gains):
        if gain > 0:
            total += gain / math.log2(i + 2)
    return total


def _ndcg(q: Judged, k: int | None) -> float:
    ranked = q.rels if k is None else q.rels[:k]
    ideal = q.ideal if k is None else q.ideal[:k]
    ideal_dcg = _dcg(ideal)
    return _dcg(rel or 0 for rel in ranked) / ideal_dcg if ideal_dcg > 0 else 0.0


def _recip_rank(q: Judged, k: int | None) -> float:
    for i in range(len(q.rels)):
        if q.relevant(i):
            return 1.0 / (i + 1)
    return 0.0


def _rel_in_top(q: Judged, k: int) -> int:
    return sum(1 for i in range(min(k, len(q.rels))) if q.relevant(i))


def _precision(q: Judged, k: int | None) -> float:
    assert k is not None
    return _rel_in_top(q, k) / k


def _recall(q: Judged, k: int | None) -> float:
    assert k is not None
    return _rel_in_top(q, k) / q.num_rel if q.num_rel else 0.0


def _r_precision(q: Judged, k: int | None) -> float:
    return _rel_in_top(q, q.num_rel) / q.num_rel if q.num_rel else 0.0


def _success(q: Judged, k: int | None) -> float:
    assert k is not None
    return 1.0 if _rel_in_top(q, k) else 0.0


def _num_ret(q: Judged, k: int | None) -> float:
    return float(len(q.rels))


def _num_rel(q: Judged, k: int | None) -> float:
    return float(q.num_rel)


def _num_rel_ret(q: Judged, k: int | None) -> float:
    return float(_rel_in_top(q, len(q.rels)))


@dataclass(frozen=True)
class Measure:
    """A registered measure: its function and whether its name takes a cutoff (``P_10``)."""

    fn: Callable[[Judged, int | None], float]
    needs_cutoff: bool
    about: str


#: trec_eval measure name -> implementation. Names with a cutoff are written ``name_k``.
MEASURES: dict[str, Measure] = {
    "map": Measure(_average_precision, False, "mean average precision"),
    "map_cut": Measure(_average_precision, True, "average precision over the top k"),
    "ndcg": Measure(_ndcg, False, "nDCG over the whole ranking, graded gains"),
    "ndcg_cut": Measure(_ndcg, True, "nDCG@k, graded gains"),
    "recip_rank": Measure(_recip_rank, False, "reciprocal rank of the first relevant (MRR)"),
    "P": Measure(_precision, True, "precision at k"),
    "recall": Measure(_recall, True, "recall at k"),
    "Rprec": Measure(_r_precision, False, "precision at R, R = number of relevant"),
    "success": Measure(_success, True, "1 if a relevant document is in the top k"),
    "num_ret": Measure(_num_ret, False, "documents retrieved (summed over queries)"),
    "num_rel": Measure(_num_rel, False, "relevant documents (summed over queries)"),
    "num_rel_ret": Measure(_num_rel_ret, False, "relevant retrieved (summed over queries)"),
}

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


def aggregate(measure: str, values: list[float]) -> float:
    """trec_eval's summary over queries: a sum for ``num_*`` measures, else the mean."""
    if measure.startswith("num_"):
        return math.fsum(values)
    return math.fsum(values) / len(values)


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
    parsed = [parse_measure(m) for m in metrics]
    if not parsed:
        raise OptionError("evaluate_run got no metrics", fix="pass e.g. ['map', 'ndcg_cut_10']")
    judged_qrels = {qid: docs for qid, docs in qrels.items() if docs}
    qids = [qid for qid in run if qid in judged_qrels]
    if complete:
        qids += [qid for qid in judged_qrels if qid not in run]
    if not qids:
        raise DataError(
            f"no query can be scored: the run has {len(run)} queries, the qrels "
            f"{len(judged_qrels)} judged ones, and they share no id",
            fix="check that the run and the qrels come from the same dataset (same query ids)",
        )
    per_query: dict[str, dict[str, float]] = {}
    for qid in qids:
        _check_scores(qid, run.get(qid, {}))
        judged = judge(run.get(qid, {}), judged_qrels[qid])
        per_query[qid] = {name: m.fn(judged, k) for name, m, k in parsed}
    mean = {name: aggregate(name, [v[name] for v in per_query.values()]) for name, _, _ in parsed}
    return {"per_query": per_query, "mean": mean}


def _check_scores(qid: str, scores: Mapping[str, float]) -> None:
    for doc, score in scores.items():
        if not isinstance(score, int | float) or math.isnan(score):
            raise DataError(
                f"query {qid!r}, document {doc!r}: score {score!r} is not a number",
                fix="give every retrieved document a numeric score (higher is better)",
            )


def interpolated_precision(q: Judged, levels: list[float]) -> list[float]:
    """trec_eval's ``iprec_at_recall``: precision interpolated at each recall level.

    A level becomes a number of relevant documents as trec_eval 9.0 (pytrec_eval) does it,
    ``int(level * R + 0.9)``; the interpolated precision there is the best precision at any
    rank from that document down. An empty ranking scores 0 (trec_eval divides 0 by 0).
    """
    out = [0.0] * len(levels)
    if not q.rels:
        return out
    cuts = [int(level * q.num_rel + 0.9) for level in levels]
    rel_ret = _rel_in_top(q, len(q.rels))
    cur = len(levels) - 1
    while cur >= 0 and cuts[cur] > rel_ret:
        cur -= 1
    best = rel_ret / len(q.rels)
    so_far = rel_ret
    for i in range(len(q.rels), 0, -1):
        if so_far <= 0:
            break
        best = max(best, so_far / i)
        if q.relevant(i - 1):
            while cur >= 0 and so_far == cuts[cur]:
                out[cur] = best
                cur -= 1
            so_far -= 1
    while cur >= 0:
        out[cur] = best
        cur -= 1
    return out


#: The recall levels of the standard precision-recall graph.
RECALL_LEVELS = [i / 10 for i in range(11)]


def precision_recall_points(qrels: Qrels, run: Run) -> list[tuple[float, float]]:
    """The averaged 11-point interpolated precision-recall curve, as trec_eval computes it.

    Queries are counted as in :func:`evaluate_run` (in both the run and the qrels).
    """
    qids = [qid for qid in run if qrels.get(qid)]
    sums = [0.0] * len(RECALL_LEVELS)
    for qid in qids:
        values = interpolated_precision(judge(run[qid], qrels[qid]), RECALL_LEVELS)
        sums = [a + b for a, b in zip(sums, values, strict=True)]
    n = max(len(qids), 1)
    return [(level, total / n) for level, total in zip(RECALL_LEVELS, sums, strict=True)]
