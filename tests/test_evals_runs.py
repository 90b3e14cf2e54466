"""Runs that record items: ``eval retrieval --out``, a suite gated item by item against its
baseline (report: intervals, flips, per-item plot), and ``--repeat`` (evals/repeat.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.evals.repeat import combine, repeat_seeds, spread

TOPICS = [
    "propeller slipstream wing lift",
    "boundary layer flat plate",
    "heat conduction composite slabs",
    "shock wave blunt body",
    "buckling of thin cylindrical shells",
    "flutter of swept wings",
    "laminar flow transition",
    "hypersonic nozzle expansion",
    "panel vibration noise",
    "jet engine inlet distortion",
    "skin friction drag reduction",
    "ablation of reentry heat shields",
]
#: CORPUS, QUERIES and QRELS for conftest.py's ``beir`` fixture: one relevant document each.
CORPUS = {f"d{i}": f"a study of {t} in experiments" for i, t in enumerate(TOPICS)}
QUERIES = {str(i): t for i, t in enumerate(TOPICS)}
QRELS = [(str(i), f"d{i}", 1) for i in range(len(TOPICS))]


def test_eval_retrieval_out_writes_items_and_compares_with_itself(
    tmp_path: Path, beir: Path
) -> None:
    out = tmp_path / "run"
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
            "5",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert len(rows) == len(QUERIES) and rows[0]["configuration"] == "cli"
    assert rows[0]["sources"][0] == "d0" and set(rows[0]["metrics"]) >= {"map", "P_10"}
    assert rows[0]["model_sha256"] is None and len(rows[0]["spec_sha256"]) == 64
    same = CliRunner().invoke(app, ["eval", "compare", str(out), str(out), "--json"])
    assert same.exit_code == 0, same.output
    found = json.loads(same.stdout)["comparisons"][0]["metrics"]["map"]
    assert (found["difference"], found["p_value"], found["significant"]) == (0.0, 1.0, False)


def _suite(path: Path, dataset: Path) -> Path:
    path.write_text(
        f"name: twelve\ndataset: {dataset}\nk: 5\nmetrics: [map, recip_rank]\n"
        "configurations:\n  - {name: bm25, mode: bm25}\n"
    )
    return path


def test_suite_gate_pairs_items_with_the_baseline(tmp_path: Path, beir: Path) -> None:
    suite = _suite(tmp_path / "s.yaml", beir)
    runner = CliRunner()
    first = runner.invoke(app, ["eval", str(suite), "--out", str(tmp_path / "a"), "--json"])
    assert first.exit_code == 0, first.output
    baseline = tmp_path / "a" / "results.json"
    same = runner.invoke(
        app,
        [
            "eval",
            str(suite),
            "--out",
            str(tmp_path / "b"),
            "--baseline",
            str(baseline),
            "--fail-drop",
            "map=0.02",
        ],
    )
    assert same.exit_code == 0, same.output
    report = (tmp_path / "b" / "report.md").read_text()
    assert "## Against the baseline" in report and "| bm25 | map |" in report
    assert (tmp_path / "b" / "figures" / "per_item.png").is_file()
    assert "Against the baseline" in (tmp_path / "b" / "report.html").read_text()
    better = json.loads(baseline.read_text())  # a baseline better on every query
    config = better["configurations"][0]
    for values in config["per_query"].values():
        values["map"] += 0.25
    config["mean"]["map"] += 0.25
    (tmp_path / "better.json").write_text(json.dumps(better))
    worse = runner.invoke(
        app,
        [
            "eval",
            str(suite),
            "--out",
            str(tmp_path / "c"),
            "--json",
            "--baseline",
            str(tmp_path / "better.json"),
            "--fail-drop",
            "map=0.02",
        ],
    )
    assert worse.exit_code == 1
    (failure,) = json.loads(worse.stdout)["failures"]
    assert failure.startswith("bm25: map regressed") and "12 of 12 worse" in failure
    small = runner.invoke(
        app,
        [
            "eval",
            str(suite),
            "--out",
            str(tmp_path / "d"),
            "--baseline",
            str(tmp_path / "better.json"),
            "--fail-drop",
            "map=0.3",
        ],
    )
    assert small.exit_code == 0, small.output  # significant, but smaller than the stated size


def test_repeat_seeds_only_for_a_sampled_model_and_the_spread() -> None:
    assert repeat_seeds({"model": {}}, 5) == [None]
    assert repeat_seeds({"model": {"temperature": 0.0, "seed": 4}}, 5) == [None]
    assert repeat_seeds({"model": {"temperature": 0.7, "seed": 4}}, 3) == [4, 5, 6]
    assert repeat_seeds({"model": {"temperature": 0.7}}, 1) == [None]
    found = spread([{"map": 0.2}, {"map": 0.4}, {"map": 0.3}])["map"]
    assert found == pytest.approx({"mean": 0.3, "std": 0.1, "min": 0.2, "max": 0.4, "runs": 3})
    runs = [
        {
            "name": "c",
            "settings": {},
            "seconds": 1.0,
            "mean": {"m": 0.2},
            "failed": [],
            "samples": [{"id": "a", "scores": {"m": 0.0}}, {"id": "b", "scores": {"m": 0.4}}],
        },
        {
            "name": "c",
            "settings": {},
            "seconds": 2.0,
            "mean": {"m": 0.5},
            "failed": [],
            "samples": [{"id": "a", "scores": {"m": 1.0}}, {"id": "b", "scores": {}}],
        },
    ]
    combined = combine(runs, [7, 8])
    assert [s["scores"] for s in combined["samples"]] == [{"m": 0.5}, {"m": 0.4}]
    assert combined["mean"]["m"] == pytest.approx(0.45) and combined["seconds"] == 3.0
    assert [r["seed"] for r in combined["repeats"]] == [7, 8]


@pytest.mark.integration
def test_a_sampled_strategy_repeats_with_seeds_and_reports_the_spread(
    tmp_path: Path, beir: Path
) -> None:
    """The embedded model rewrites each query at temperature 1 with seeds 5 and 6."""
    (tmp_path / "s.yaml").write_text(
        f"name: sampled\ndataset: {beir}\nk: 5\nmetrics: [map]\nconfigurations:\n"
        "  - {name: rw, mode: bm25, strategy: rewrite, temperature: 1.0, seed: 5}\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["eval", str(tmp_path / "s.yaml"), "--out", str(out), "--repeat", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    config = json.loads((out / "results.json").read_text())["configurations"][0]
    assert [r["seed"] for r in config["repeats"]] == [5, 6]
    assert config["spread"]["map"]["runs"] == 2 and config["model_sha256"]
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert {(r["repeat"], r["seed"]) for r in rows} == {(0, 5), (1, 6)}
    assert "## Repeated runs" in (out / "report.md").read_text()


def test_eval_rag_out_writes_items_with_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_HOME", str(tmp_path / "home"))
    rows = [
        {"id": "a", "user_input": "When?", "reference": "In 1889.", "response": "In 1889.",
         "retrieved_contexts": ["Built in 1889."]},
        {"id": "b", "user_input": "Where?", "reference": "In Paris.", "response": "Lyon",
         "retrieved_contexts": ["It is in Paris."]},
    ]  # fmt: skip
    dataset = tmp_path / "qa.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["eval", "rag", "--dataset", str(dataset), "--metrics", "rouge", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert [(i["id"], i["answer"]) for i in items] == [("a", "In 1889."), ("b", "Lyon")]
    assert items[0]["metrics"]["rouge"] > items[1]["metrics"]["rouge"]
    assert items[0]["model_sha256"] is None  # answers given: no model used
    assert not (tmp_path / "home" / "eval-cache.sqlite3").exists()  # no model call: no cache
