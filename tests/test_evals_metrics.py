"""evaluate_run against bare pytrec_eval: generated inputs, Cranfield, and the edge cases.

The measures are pytrec_eval's own (trec_eval's C code); these equality tests guard what the
wrapper adds: measure names, which queries count, empty rankings, aggregation, errors.
Hand-computed values are in test_evals_ir_pytrec.py.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import DataError, OptionError
from orchestrator.evals import evaluate_run, precision_recall_points
from orchestrator.evals.metrics import MEASURES, RECALL_LEVELS, parse_measure, rank_documents

MEASURE_NAMES = [
    "map",
    "map_cut_5",
    "ndcg",
    "ndcg_cut_3",
    "ndcg_cut_10",
    "recip_rank",
    "P_1",
    "P_5",
    "P_10",
    "recall_3",
    "recall_100",
    "Rprec",
    "success_1",
    "success_5",
    "num_ret",
    "num_rel",
    "num_rel_ret",
]
CRANFIELD = Path(__file__).resolve().parents[2] / "shared" / "data" / "cranfield"

# Document ids that exercise byte-order tie breaking ("9" > "10", "b" > "B").
DOC_IDS = st.sampled_from(["1", "2", "9", "10", "11", "a", "b", "B", "d1", "d10", "d2", "x_y"])
# Few distinct scores, so ties are frequent.
SCORES = st.sampled_from([0.0, 0.5, 1.0, 2.0, -1.0, 0.25])


@st.composite
def judgements(draw: st.DrawFn) -> dict[str, int]:
    docs = draw(st.dictionaries(DOC_IDS, st.integers(min_value=-1, max_value=4), max_size=8))
    if docs and all(v < 0 for v in docs.values()):
        # Bare pytrec_eval crashes or miscounts on a query whose judgements are all negative;
        # such qrels are not comparable (the wrapper's handling: test_evals_ir_pytrec.py).
        docs["zz"] = 0
    return docs


QIDS = st.sampled_from(["q1", "q2", "q3", "q4", "q5", "10", "9"])
QRELS = st.dictionaries(QIDS, judgements(), min_size=1, max_size=5)
RUNS = st.dictionaries(QIDS, st.dictionaries(DOC_IDS, SCORES, max_size=12), min_size=1, max_size=6)


def reference(qrels: dict, run: dict, measures: list[str]) -> dict[str, dict[str, float]]:
    return pytrec_eval.RelevanceEvaluator(qrels, set(measures)).evaluate(run)


# Until trec_eval has once evaluated a non-empty ranking, its buffers are unallocated and an
# empty ranking's num_rel reads 0 (an allocation of 0 items fails); afterwards it reads the
# true count, which is what we report. Warm it up so the reference does not depend on order.
reference({"warm": {"a": 1}}, {"warm": {"a": 1.0}}, ["num_rel"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(qrels=QRELS, run=RUNS)
def test_every_measure_equals_trec_eval(qrels: dict, run: dict) -> None:
    expected = reference(qrels, run, MEASURE_NAMES)
    if not expected:
        with pytest.raises(DataError, match="no query can be scored"):
            evaluate_run(qrels, run, MEASURE_NAMES)
        return
    got = evaluate_run(qrels, run, MEASURE_NAMES)
    assert got["per_query"] == expected  # the same queries, bit-for-bit the same values
    for name in MEASURE_NAMES:
        agg = pytrec_eval.compute_aggregated_measure(name, [v[name] for v in expected.values()])
        assert got["mean"][name] == pytest.approx(agg, rel=1e-12, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(qrels=QRELS, run=RUNS)
def test_complete_counts_missing_queries_like_trec_eval_c(qrels: dict, run: dict) -> None:
    judged = {q for q, docs in qrels.items() if docs}
    padded = {**run, **{q: {} for q in judged if q not in run}}
    expected = reference(qrels, padded, ["map", "P_5", "ndcg_cut_10"])
    if not expected:
        return
    got = evaluate_run(qrels, run, ["map", "P_5", "ndcg_cut_10"], complete=True)
    assert got["per_query"] == expected


@settings(max_examples=150, deadline=None)
@given(qrels=QRELS, run=RUNS)
def test_precision_recall_curve_equals_iprec_at_recall(qrels: dict, run: dict) -> None:
    expected = reference(qrels, run, ["iprec_at_recall"])
    if not expected:
        return
    curve = precision_recall_points(qrels, run)
    for level, value in curve:
        key = f"iprec_at_recall_{level:.2f}"
        # trec_eval divides 0 by 0 for an empty ranking; we report 0 there.
        per_query = [0.0 if math.isnan(v[key]) else v[key] for v in expected.values()]
        assert value == pytest.approx(float(np.mean(per_query)), abs=1e-12)


def _cranfield_run() -> tuple[dict, dict]:
    """Qrels and a word-overlap run (top 100) on Cranfield: a real, imperfect retrieval."""
    from orchestrator.retrieval import load_beir

    data = load_beir(CRANFIELD)
    words = {
        d: set(re.findall(r"\w+", f"{v['title']} {v['text']}")) for d, v in data.corpus.items()
    }
    run = {}
    for qid, text in data.queries.items():
        terms = set(re.findall(r"\w+", text))
        scores = {d: float(len(terms & w)) for d, w in words.items()}
        run[qid] = dict(sorted(scores.items(), key=lambda kv: -kv[1])[:100])
    return data.qrels, run


@pytest.mark.skipif(not CRANFIELD.is_dir(), reason="shared Cranfield data not present")
def test_cranfield_run_equals_trec_eval() -> None:
    qrels, run = _cranfield_run()
    expected = reference(qrels, run, MEASURE_NAMES)
    got = evaluate_run(qrels, run, MEASURE_NAMES)
    assert len(got["per_query"]) == 225
    assert got["per_query"] == expected
    mean_map = float(np.mean([v["map"] for v in expected.values()]))
    assert got["mean"]["map"] == pytest.approx(mean_map, abs=1e-12)
    assert 0.05 < got["mean"]["map"] < 0.5  # word overlap is a weak but real retriever


def test_ties_go_by_document_id_descending_in_byte_order() -> None:
    assert rank_documents({"a": 1.0, "b": 1.0, "c": 2.0}) == ["c", "b", "a"]
    assert rank_documents({"10": 0.5, "9": 0.5}) == ["9", "10"]
    got = evaluate_run({"q": {"a": 1}}, {"q": {"a": 1.0, "b": 1.0}}, ["recip_rank"])
    assert got["per_query"]["q"]["recip_rank"] == 0.5


def test_which_queries_count() -> None:
    qrels = {"judged": {"d1": 1}, "no-relevant": {"d1": 0}, "not-run": {"d1": 1}, "empty": {}}
    run = {"judged": {"d1": 1.0}, "no-relevant": {"d1": 1.0}, "not-judged": {"d1": 1.0}}
    got = evaluate_run(qrels, run, ["map"])
    assert set(got["per_query"]) == {"judged", "no-relevant"}
    assert got["mean"]["map"] == 0.5  # the query without relevant documents counts as 0
    complete = evaluate_run(qrels, run, ["map"], complete=True)
    assert complete["mean"]["map"] == pytest.approx(1 / 3)


def test_graded_ndcg_uses_judgement_values_as_gains() -> None:
    qrels = {"q": {"a": 3, "b": 1}}
    got = evaluate_run(qrels, {"q": {"b": 2.0, "a": 1.0}}, ["ndcg_cut_10"])
    ideal = 3 + 1 / math.log2(3)
    assert got["per_query"]["q"]["ndcg_cut_10"] == pytest.approx((1 + 3 / math.log2(3)) / ideal)


def test_measure_names_errors_come_from_the_table() -> None:
    with pytest.raises(OptionError, match="did you mean 'ndcg_cut_10'"):
        evaluate_run({"q": {"a": 1}}, {"q": {"a": 1.0}}, ["ndcg_cutt_10"])
    with pytest.raises(OptionError, match="needs a cutoff"):
        parse_measure("P")
    with pytest.raises(OptionError, match="takes no cutoff"):
        parse_measure("map_10")
    assert parse_measure("ndcg_cut.10")[0] == "ndcg_cut_10"
    assert {"map", "ndcg_cut", "recip_rank", "P", "recall"} <= set(MEASURES)


def test_bad_scores_and_disjoint_ids_are_data_errors() -> None:
    with pytest.raises(DataError, match="not a number"):
        evaluate_run({"q": {"a": 1}}, {"q": {"a": float("nan")}}, ["map"])
    with pytest.raises(DataError, match="share no id"):
        evaluate_run({"q1": {"a": 1}}, {"Q1": {"a": 1.0}}, ["map"])


def test_recall_levels_are_trec_evals() -> None:
    assert pytest.approx([i / 10 for i in range(11)]) == RECALL_LEVELS
