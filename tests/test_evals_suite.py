"""Suites: strict YAML (errors name file and line), a real run with reports, the CI gate, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.errors import DataError, OptionError
from orchestrator.evals.report import write_reports
from orchestrator.evals.runner import gate, parse_fail_below, run_suite
from orchestrator.evals.suite import load_suite

#: CORPUS, QUERIES and QRELS: the tiny BEIR directory of conftest.py's ``beir`` fixture.
CORPUS = {
    "d1": "the wing lift increases in a propeller slipstream",
    "d2": "boundary layer flow over a flat plate at high speed",
    "d3": "heat conduction in composite slabs",
    "d4": "shock waves ahead of a blunt body in supersonic flow",
}
QUERIES = {
    "1": "propeller slipstream wing lift",
    "2": "heat conduction slabs",
    "3": "supersonic shock wave blunt body",
}
QRELS = [("1", "d1", 2), ("2", "d3", 1), ("3", "d4", 3), ("3", "d2", 1)]


def _suite(path: Path, dataset: Path, extra: str = "") -> Path:
    path.write_text(
        f"name: tiny\n"
        f"dataset: {dataset}\n"
        f"k: 10\n"
        f"metrics: [map, ndcg_cut_10, recip_rank, P_5, recall_100]\n"
        f"configurations:\n"
        f"  - name: bm25\n"
        f"    mode: bm25\n"
        f"  - name: bm25-again\n"
        f"    mode: bm25\n"
        f"{extra}"
    )
    return path


def test_typo_in_a_key_names_file_line_and_fix(tmp_path: Path, beir: Path) -> None:
    path = (
        _suite(tmp_path / "s.yaml", beir)
        .read_text()
        .replace("    mode: bm25\n  - name: b", "    mdoe: bm25\n  - name: b")
    )
    (tmp_path / "s.yaml").write_text(path)
    with pytest.raises(DataError, match=r"s\.yaml:7: unknown key 'mdoe'") as info:
        load_suite(tmp_path / "s.yaml")
    assert info.value.fix == "did you mean 'mode'?"


@pytest.mark.parametrize(
    ("edit", "line", "message"),
    [
        (("k: 10", "k: 0"), 3, "k: Input should be greater than or equal to 1"),
        (("recall_100]", "recal_100]"), 4, "unknown option 'recal_100'"),
        (
            ("mode: bm25\n  - name: bm25-again", "mode: sparse\n  - name: bm25-again"),
            7,
            "configurations.0.mode",
        ),
        (("name: tiny", "nmae: tiny"), 1, "unknown key 'nmae'"),
    ],
)
def test_bad_values_name_file_and_line(
    tmp_path: Path, beir: Path, edit: tuple[str, str], line: int, message: str
) -> None:
    path = _suite(tmp_path / "s.yaml", beir)
    path.write_text(path.read_text().replace(*edit, 1))
    with pytest.raises(DataError, match=rf"s\.yaml:{line}: .*{message}"):
        load_suite(path)


def test_threshold_on_an_unmeasured_metric_is_an_error(tmp_path: Path, beir: Path) -> None:
    path = _suite(tmp_path / "s.yaml", beir, "thresholds:\n  P_10: 0.1\n")
    with pytest.raises(DataError, match=r"s\.yaml:11: threshold on 'P_10'"):
        load_suite(path)


def test_run_suite_writes_results_and_reports_with_figures(tmp_path: Path, beir: Path) -> None:
    suite, base = load_suite(_suite(tmp_path / "s.yaml", beir, "thresholds:\n  map: 0.5\n"))
    results = run_suite(suite, base, tmp_path / "out", progress=False)
    names = [c["name"] for c in results["configurations"]]
    assert names == ["bm25", "bm25-again"]
    first = results["configurations"][0]
    assert set(first["per_query"]) == set(QUERIES)
    assert first["mean"]["recip_rank"] == 1.0  # every query's words are in its relevant doc
    assert first["mean"] == results["configurations"][1]["mean"]
    assert (tmp_path / "out" / "runs" / "bm25.trec").read_text().startswith("1 Q0 d1 1 ")
    assert gate(results) == []
    paths = write_reports(results, tmp_path / "out")
    saved = json.loads(paths["results"].read_text())
    assert saved["gate"] == {"passed": True, "failures": []}
    html = paths["html"].read_text()
    assert html.count("data:image/png;base64,") == 3
    assert "<h2>Per query</h2>" in html and "<summary>bm25 (3 queries)</summary>" in html
    for name in ("comparison", "distribution", "pr_curve"):
        png = tmp_path / "out" / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](figures/{name}.png)" in paths["markdown"].read_text()
        assert f"<figcaption>{name}</figcaption>" in html


def test_gate_thresholds_and_baseline_regressions() -> None:
    results = {
        "thresholds": {"map": 0.3},
        "configurations": [
            {"name": "a", "mean": {"map": 0.25, "P_10": 0.4, "num_ret": 5.0}},
            {"name": "b", "mean": {"map": 0.35, "P_10": None, "num_ret": 9.0}},
        ],
    }
    baseline = {
        "configurations": [{"name": "a", "mean": {"map": 0.2, "P_10": 0.5, "num_ret": 9.0}}]
    }
    failures = gate(results, thresholds={"P_10": 0.1}, baseline=baseline)
    assert failures == [
        "a: map = 0.2500 is below 0.3",
        "a: P_10 regressed from 0.5000 to 0.4000 (baseline)",
        "b: P_10 = n/a is below 0.1",
    ]
    assert gate(results, baseline=baseline, tolerance=0.2, thresholds={"map": 0.1}) == []
    assert parse_fail_below(["map=0.3", "P_10=0.25"]) == {"map": 0.3, "P_10": 0.25}
    with pytest.raises(OptionError, match="METRIC=VALUE"):
        parse_fail_below(["map"])


def test_cli_suite_exit_codes_and_json(tmp_path: Path, beir: Path) -> None:
    path = _suite(tmp_path / "s.yaml", beir)
    runner = CliRunner()
    out = tmp_path / "out"
    ok = runner.invoke(app, ["eval", str(path), "--out", str(out), "--json"])
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.stdout)
    assert payload["passed"] is True and payload["mean"]["bm25"]["recip_rank"] == 1.0
    failing = runner.invoke(
        app,
        [
            "eval",
            "suite",
            str(path),
            "--out",
            str(tmp_path / "o2"),
            "--fail-below",
            "map=1.01",
            "--json",
        ],
    )
    assert failing.exit_code == 1
    first_failure = json.loads(failing.stdout)["failures"][0]
    assert re.match(r"bm25: map = [01]\.\d{4} is below 1\.01$", first_failure)
    regressed = runner.invoke(
        app,
        [
            "eval",
            str(path),
            "--out",
            str(tmp_path / "o3"),
            "--baseline",
            str(_better_baseline(out, tmp_path)),
        ],
    )
    assert regressed.exit_code == 1
    assert "regressed" in regressed.output


def _better_baseline(out: Path, tmp_path: Path) -> Path:
    data = json.loads((out / "results.json").read_text())
    data["configurations"][0]["mean"]["ndcg_cut_10"] = 1.5
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(data))
    return path


def test_cli_reports_bad_suite_with_file_line_and_exit_2(tmp_path: Path, beir: Path) -> None:
    path = _suite(tmp_path / "bad.yml", beir, "treshold:\n  map: 0.1\n")
    result = CliRunner().invoke(app, ["eval", str(path)])
    assert result.exit_code == 2
    output = " ".join(result.output.split())  # Rich wraps long lines
    assert "bad.yml:10: unknown key 'treshold'" in output
    assert "did you mean 'thresholds'?" in output


def test_cli_retrieval_json_keys_are_trec_measures(tmp_path: Path, beir: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "retrieval",
            "--dataset",
            str(beir),
            "--mode",
            "bm25",
            "--k",
            "10",
            "--json",
            "--run-file",
            str(tmp_path / "run.trec"),
        ],
    )
    assert result.exit_code == 0, result.output
    mean = json.loads(result.stdout)
    assert set(mean) == {"map", "ndcg_cut_10", "recip_rank", "P_10", "recall_100"}
    assert mean["recip_rank"] == 1.0
    assert (tmp_path / "run.trec").is_file()


def test_cli_retrieval_rejects_unknown_mode(beir: Path) -> None:
    result = CliRunner().invoke(
        app, ["eval", "retrieval", "--dataset", str(beir), "--mode", "hybird"]
    )
    assert result.exit_code == 2
    assert "did you mean 'hybrid'?" in " ".join(result.output.split())


def test_fail_below_rejects_a_non_finite_threshold() -> None:
    from orchestrator.errors import OptionError
    from orchestrator.evals.runner import parse_fail_below

    assert parse_fail_below(["map=0.3"]) == {"map": 0.3}
    for bad in ("map=nan", "map=inf"):
        with pytest.raises(OptionError, match="finite"):
            parse_fail_below([bad])
