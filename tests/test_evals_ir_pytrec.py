"""The pytrec_eval wrapper: hand-computed values, and what it fixes around trec_eval's C code."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import pytrec_eval

from orchestrator.errors import DataError
from orchestrator.evals import evaluate_run, precision_recall_points
from orchestrator.extras import MissingDependencyError

# q: ranking c (judged 0), a (2), x (unjudged), b (1); d (1) is relevant and not retrieved.
QRELS = {"q": {"a": 2, "b": 1, "c": 0, "d": 1}, "q2": {"e": 1}}
RUN = {"q": {"c": 4.0, "a": 3.0, "x": 2.0, "b": 1.0}, "q2": {"e": 1.0}}
ALL = [
    "map",
    "map_cut_2",
    "recip_rank",
    "P_1",
    "P_2",
    "P_10",
    "recall_2",
    "recall_100",
    "Rprec",
    "success_1",
    "success_2",
    "ndcg_cut_10",
    "ndcg",
    "num_ret",
    "num_rel",
    "num_rel_ret",
]


def test_hand_computed_values() -> None:
    got = evaluate_run(QRELS, RUN, ALL)
    q = got["per_query"]["q"]
    dcg = 2 / math.log2(3) + 1 / math.log2(5)  # a at rank 2, b at rank 4
    ideal = 2 + 1 / math.log2(3) + 1 / math.log2(4)  # gains 2, 1, 1
    expected = {
        "map": (1 / 2 + 2 / 4) / 3,
        "map_cut_2": (1 / 2) / 3,
        "recip_rank": 1 / 2,
        "P_1": 0.0,
        "P_2": 1 / 2,
        "P_10": 2 / 10,
        "recall_2": 1 / 3,
        "recall_100": 2 / 3,
        "Rprec": 1 / 3,
        "success_1": 0.0,
        "success_2": 1.0,
        "ndcg_cut_10": dcg / ideal,
        "ndcg": dcg / ideal,
        "num_ret": 4.0,
        "num_rel": 3.0,
        "num_rel_ret": 2.0,
    }
    assert q == pytest.approx(expected, abs=1e-12)
    assert got["mean"]["map"] == pytest.approx((1 / 3 + 1) / 2)
    assert got["mean"]["num_ret"] == 5.0 and got["mean"]["num_rel"] == 4.0  # summed


def test_precision_recall_curve_hand_computed() -> None:
    # R = 3; relevant at ranks 2 and 4 (precision 1/2 both); trec_eval needs
    # int(level * 3 + 0.9) relevant documents, in doubles: 2 up to level 0.7 (0.7 * 3 + 0.9
    # is 2.9999999999999996), 3 (never reached) above.
    curve = precision_recall_points({"q": QRELS["q"]}, {"q": RUN["q"]})
    assert [level for level, _ in curve] == pytest.approx([i / 10 for i in range(11)])
    assert [value for _, value in curve] == pytest.approx([0.5] * 8 + [0.0] * 3)


def test_queries_with_only_negative_judgements_are_scored_not_crashed() -> None:
    # pytrec_eval on these qrels reports num_ret 0 for q0 (and can crash the process).
    qrels = {"q0": {"1": -2, "d1": -2}, "q1": {"1": 3}}
    run = {"q0": {"b": 0.5}, "q1": {"9": 0.0, "b": 1.0}}
    got = evaluate_run(qrels, run, ["map", "num_ret", "num_rel", "P_5"])
    assert got["per_query"]["q0"] == {"map": 0.0, "num_ret": 1.0, "num_rel": 0.0, "P_5": 0.0}
    assert got["per_query"]["q1"]["num_ret"] == 2.0


def test_negative_judgements_score_as_non_relevant() -> None:
    qrels = {"q": {"a": -1, "b": 1}}
    run = {"q": {"a": 2.0, "b": 1.0}}
    plain = evaluate_run({"q": {"a": 0, "b": 1}}, run, ALL)
    assert evaluate_run(qrels, run, ALL) == plain
    assert pytrec_eval.RelevanceEvaluator(qrels, set(ALL)).evaluate(run) == plain["per_query"]


def test_empty_ranking_counts_its_relevant_documents_in_a_fresh_process() -> None:
    # trec_eval reads num_rel 0 for an empty ranking until it has seen a non-empty one.
    code = (
        "import json; from orchestrator.evals import evaluate_run, precision_recall_points;"
        "r = evaluate_run({'q': {'a': 1, 'b': 2, 'c': 0}}, {'other': {}}, "
        "['num_rel', 'map', 'num_ret'], complete=True);"
        "print(json.dumps(r['per_query']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout) == {"q": {"num_rel": 2.0, "map": 0.0, "num_ret": 0.0}}


def test_an_empty_ranking_in_the_run_counts_and_scores_zero() -> None:
    got = evaluate_run({"q": {"a": 1}, "p": {"b": 1}}, {"q": {}, "p": {"b": 1.0}}, ["map", "P_5"])
    assert got["per_query"] == {"q": {"map": 0.0, "P_5": 0.0}, "p": {"map": 1.0, "P_5": 0.2}}
    curve = precision_recall_points({"q": {"a": 1}, "p": {"b": 1}}, {"q": {}, "p": {"b": 1.0}})
    assert curve[0] == (0.0, 0.5)  # the empty ranking adds 0, not NaN


def test_repeated_names_and_dotted_cutoffs() -> None:
    got = evaluate_run(QRELS, RUN, ["P_10", "P.10", "ndcg_cut.10"])
    assert list(got["mean"]) == ["P_10", "ndcg_cut_10"]


@pytest.mark.parametrize(
    ("qrels", "run", "message"),
    [
        ({"q": {"a": 1.5}}, {"q": {"a": 1.0}}, "judgement 1.5 is not an integer"),
        ({"q": {"a": True}}, {"q": {"a": 1.0}}, "judgement True is not an integer"),
        ({"q": {"a": 1}}, {"q": {"a": "high"}}, "score 'high' is not a number"),
    ],
)
def test_bad_values_are_data_errors_naming_query_and_document(
    qrels: dict, run: dict, message: str
) -> None:
    with pytest.raises(DataError, match=rf"query 'q', document 'a': {message}"):
        evaluate_run(qrels, run, ["map"])


def test_without_pytrec_eval_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytrec_eval", None)
    with pytest.raises(MissingDependencyError) as info:
        evaluate_run(QRELS, RUN, ["map"])
    assert info.value.fix == 'pip install "orchestrator[eval]"'
