"""Paired comparison (evals/compare.py), the gate on it (evals/gate.py), per-item files
(evals/items.py) and ``eval compare``: against exact enumeration, scipy and planted drops."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.errors import DataError, OptionError
from orchestrator.evals.compare import (
    bootstrap_ci,
    compare_items,
    drop_failures,
    minimum_detectable_effect,
    paired,
    parse_sizes,
    permutation_p,
)
from orchestrator.evals.gate import baseline_comparison, gate
from orchestrator.evals.items import load_items, read_rows, write_items


def test_permutation_p_equals_exact_enumeration_of_sign_flips() -> None:
    """The textbook paired permutation test: all 2^n swaps of the pairs, two-sided."""
    a = [0.2, 0.5, 0.4, 0.9, 0.3, 0.6, 0.1, 0.7]
    b = [0.4, 0.6, 0.4, 1.0, 0.6, 0.5, 0.4, 0.9]
    d = [y - x for x, y in zip(a, b, strict=True)]
    observed = abs(sum(d) / len(d))
    flips = list(itertools.product((1, -1), repeat=len(d)))
    extreme = sum(
        abs(sum(s * x for s, x in zip(signs, d, strict=True)) / len(d)) >= observed - 1e-12
        for signs in flips
    )
    assert permutation_p(a, b) == pytest.approx(extreme / len(flips))
    assert permutation_p(a, a) == 1.0


def test_bootstrap_ci_is_scipys_and_matches_the_normal_interval() -> None:
    rng = np.random.default_rng(1)
    d = rng.normal(0.03, 0.1, size=400)
    low, high = bootstrap_ci(list(d), seed=7)
    direct = stats.bootstrap(
        (d,), np.mean, confidence_level=0.95, method="BCa", rng=np.random.default_rng(7)
    ).confidence_interval
    assert (low, high) == pytest.approx((direct.low, direct.high))
    half = 1.96 * d.std(ddof=1) / math.sqrt(d.size)
    assert low == pytest.approx(d.mean() - half, abs=0.003)
    assert high == pytest.approx(d.mean() + half, abs=0.003)
    assert bootstrap_ci([0.05] * 10) == (0.05, 0.05)  # no spread: the interval is the value


def test_minimum_detectable_effect_is_the_paired_t_formula() -> None:
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 1, 50)
    b = a + rng.normal(0, 0.05, 50)
    sd = np.std(b - a, ddof=1)
    z = stats.t.ppf(0.975, 49) + stats.t.ppf(0.8, 49)
    assert minimum_detectable_effect(a, b) == pytest.approx(z * sd / math.sqrt(50))
    same = minimum_detectable_effect(a, a)  # identical runs: the independent-runs bound
    assert same == pytest.approx(z * math.sqrt(2 * np.var(a, ddof=1)) / math.sqrt(50))


def _runs(drop: float, seed: int, n: int = 225) -> tuple[dict[str, float], dict[str, float]]:
    """Per-item MAP-like values of run A and run B: B is A plus noise, minus ``drop``."""
    rng = random.Random(seed)
    a = {f"q{i}": rng.uniform(0.0, 0.8) for i in range(n)}
    b = {q: min(1.0, max(0.0, v + rng.gauss(0, 0.05) - drop)) for q, v in a.items()}
    return a, b


def test_gate_passes_noise_and_fails_a_planted_drop() -> None:
    for seed in range(5):
        a, b = _runs(0.0, seed)
        same = compare_items(
            {"bm25": {q: {"map": v} for q, v in a.items()}},
            {"bm25": {q: {"map": v} for q, v in b.items()}},
            seed=seed,
        )
        assert drop_failures(same, {"map": 0.02}) == []
        a, b = _runs(0.05, seed)
        dropped = compare_items(
            {"bm25": {q: {"map": v} for q, v in a.items()}},
            {"bm25": {q: {"map": v} for q, v in b.items()}},
            seed=seed,
        )
        result = dropped[0]["metrics"]["map"]
        assert result["significant"] and result["ci_high"] < 0
        (failure,) = drop_failures(dropped, {"map": 0.02})
        assert failure.startswith("bm25: map regressed from") and "p = 0.000" in failure
        assert drop_failures(dropped, {"map": 0.2}) == []  # real, but smaller than stated
        # beyond the size by its estimate, not by its whole interval: not failed
        between = (result["difference"] + result["ci_high"]) / 2
        assert drop_failures(dropped, {"map": -between}) == []


def test_paired_reports_flips_and_only_shared_scored_items() -> None:
    result = paired(
        "m", {"x": 0.5, "y": 0.2, "z": 0.1, "w": math.nan}, {"x": 0.4, "y": 0.6, "z": 0.1}
    )
    assert (result.n, result.better, result.worse) == (3, ["y"], ["x"])
    assert result.difference == pytest.approx(0.1)
    assert set(result.to_json()) >= {"difference", "ci_low", "ci_high", "p_value", "significant"}


def _results(values: dict[str, float], name: str = "bm25") -> dict[str, object]:
    mean = sum(values.values()) / len(values)
    per_query = {q: {"map": v, "num_ret": 10.0} for q, v in values.items()}
    config = {
        "name": name,
        "kind": "retrieval",
        "mean": {"map": mean, "num_ret": 10.0 * len(values)},
        "per_query": per_query,
        "settings": {"mode": "bm25"},
    }
    return {
        "suite": "s",
        "kind": "retrieval",
        "metrics": ["map", "num_ret"],
        "configurations": [config],
    }


def test_gate_against_a_baseline_run_pairs_items() -> None:
    a, b = _runs(0.05, 3)
    old, new = _results(a), _results(b)
    comparisons = baseline_comparison(new, old)
    assert list(comparisons[0]["metrics"]) == ["map"]  # num_ret is a sum: not paired
    failures = gate(new, baseline=old, fail_drop={"map": 0.02})
    assert len(failures) == 1 and "regressed" in failures[0] and "[95% CI" in failures[0]
    assert gate(new, baseline=old, fail_drop={"map": 0.2}) == []
    assert gate(new, baseline=new) == []
    edited = json.loads(json.dumps(old))  # a mean edited by hand: compared on means
    edited["configurations"][0]["mean"]["map"] = 0.99
    assert gate(old, baseline=edited) == [
        "bm25: map regressed from 0.9900 to "
        f"{old['configurations'][0]['mean']['map']:.4f} (baseline)"
    ]


def test_items_file_round_trips_and_repeats_are_averaged(tmp_path: Path) -> None:
    results = _results({"q1": 0.5, "q2": 0.25})
    config = results["configurations"][0]  # type: ignore[index]
    write_items(results, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rows} == {"q1", "q2"} and len(rows[0]["spec_sha256"]) == 64
    assert load_items(tmp_path) == {
        "bm25": {"q1": {"map": 0.5, "num_ret": 10.0}, "q2": {"map": 0.25, "num_ret": 10.0}}
    }
    config["repeats"] = [
        {"seed": 0, "per_query": {"q1": {"map": 0.4}}, "mean": {"map": 0.4}},
        {"seed": 1, "per_query": {"q1": {"map": 0.6}}, "mean": {"map": 0.6}},
    ]
    write_items(results, tmp_path)
    assert read_rows(tmp_path / "items.jsonl") == {"bm25": {"q1": {"map": 0.5}}}
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:1: not an items\.jsonl row"):
        load_items(tmp_path / "bad.jsonl")


def test_cli_compare_json_and_fail_drop(tmp_path: Path) -> None:
    a, b = _runs(0.05, 4)
    for name, values in (("a", a), ("b", b)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(_results(values)))
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json", "--metrics", "map"],
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)["comparisons"][0]["metrics"]["map"]
    assert found["significant"] and found["difference"] < -0.03 and found["p_value"] < 0.01
    failing = runner.invoke(
        app,
        [
            "eval",
            "compare",
            str(tmp_path / "a"),
            str(tmp_path / "b"),
            "--fail-drop",
            "map=0.02",
            "--out",
            str(tmp_path / "cmp"),
        ],
    )
    assert failing.exit_code == 1
    assert "regressed" in failing.output
    assert (tmp_path / "cmp" / "per_item.png").is_file()
    assert "Items that changed" in (tmp_path / "cmp" / "comparison.md").read_text()
    with pytest.raises(OptionError, match="METRIC=SIZE"):
        parse_sizes(["map"])
    with pytest.raises(OptionError, match=">= 0"):
        parse_sizes(["map=-1"])
