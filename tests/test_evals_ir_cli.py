"""``eval retrieval`` and ``eval SUITE`` take ``--model`` / ``-m``: the GGUF of ``--rerank llm``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.settings import embedded_model_path

runner = CliRunner()

#: CORPUS, QUERIES and QRELS: the tiny BEIR directory of conftest.py's ``beir`` fixture.
CORPUS = {
    "d1": "the wing lift increases in a propeller slipstream",
    "d2": "boundary layer flow over a flat plate at high speed",
    "d3": "heat conduction in composite slabs",
}
QUERIES = {"1": "propeller slipstream wing lift", "2": "heat conduction slabs"}
QRELS = [("1", "d1", 2), ("2", "d3", 1)]


class RecordingReranker:
    """Stands in for LLMReranker: records the model it was given; scores 7.5, 6.5, ..."""

    models: ClassVar[list[str | None]] = []

    def __init__(self, model_path: str | None = None) -> None:
        self.models.append(model_path)

    @property
    def llm(self) -> None:
        return None

    def score(self, query: str, passages: list[str]) -> list[float]:
        return [7.5 - i for i in range(len(passages))]


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> type[RecordingReranker]:
    RecordingReranker.models = []
    monkeypatch.setattr("orchestrator.retrieval.rerank.LLMReranker", RecordingReranker)
    return RecordingReranker


def _eval(*args: str) -> Any:
    return runner.invoke(app, ["eval", *args])


def test_eval_retrieval_reranks_with_the_model_given(
    beir: Path, tmp_path: Path, recording: type[RecordingReranker]
) -> None:
    model = tmp_path / "chosen.gguf"  # a real GGUF: its header is read at start
    model.symlink_to(embedded_model_path())
    args = ["retrieval", "--dataset", str(beir), "--mode", "bm25", "--rerank", "llm"]
    run = tmp_path / "run.trec"
    result = _eval(*args, "-m", str(model), "--metrics", "P_1", "--run-file", str(run), "--json")
    assert result.exit_code == 0, result.output
    assert recording.models == [str(model)]
    assert json.loads(result.output) == {"P_1": 1.0}
    tops = [line.split() for line in run.read_text().splitlines() if line.split()[3] == "1"]
    assert [(t[0], t[4]) for t in tops] == [("1", "7.5"), ("2", "7.5")]  # the reranker's scores


def test_eval_retrieval_model_without_llm_rerank_is_refused(beir: Path) -> None:
    result = _eval("retrieval", "--dataset", str(beir), "--mode", "bm25", "--model", "x.gguf")
    output = " ".join(result.output.split())
    assert result.exit_code == 2
    assert "--model chooses the GGUF of --rerank llm" in output and "fix:" in output


def test_eval_retrieval_missing_model_fails_before_indexing(beir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.gguf"
    result = _eval("retrieval", "--dataset", str(beir), "--rerank", "llm", "-m", str(missing))
    assert result.exit_code == 2 and "nowhere.gguf" in result.output
    assert not (tmp_path / "cache").exists()  # no index was built for a run that cannot rerank


def _suite(path: Path, dataset: Path, rerank: str) -> Path:
    path.write_text(
        f"name: tiny\ndataset: {dataset}\nk: 10\nmetrics: [P_1]\n"
        f"configurations:\n  - name: reranked\n    mode: bm25\n    rerank: {rerank}\n"
    )
    return path


def test_eval_suite_passes_the_model_to_llm_rerank(
    beir: Path, tmp_path: Path, recording: type[RecordingReranker]
) -> None:
    suite = _suite(tmp_path / "s.yaml", beir, "llm")
    model = tmp_path / "chosen.gguf"
    model.symlink_to(embedded_model_path())
    out = tmp_path / "out"
    result = _eval(str(suite), "--out", str(out), "--model", str(model), "--json")
    assert result.exit_code == 0, result.output
    assert recording.models == [str(model)]
    assert json.loads(result.output)["mean"] == {"reranked": {"P_1": 1.0}}
    assert "7.5" in (out / "runs" / "reranked.trec").read_text().split()
    saved = json.loads((out / "results.json").read_text())
    assert saved["configurations"][0]["settings"]["model"]["model"] == str(model)


def test_eval_suite_model_without_llm_rerank_is_refused(beir: Path, tmp_path: Path) -> None:
    suite = _suite(tmp_path / "s.yaml", beir, "none")
    result = _eval(str(suite), "--out", str(tmp_path / "out"), "-m", "x.gguf")
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and "no configuration reranks with the LLM" in output


@pytest.mark.integration
def test_eval_retrieval_llm_rerank_on_a_real_gguf(beir: Path, tmp_path: Path) -> None:
    model = tmp_path / "renamed.gguf"
    model.symlink_to(embedded_model_path())
    args = ["retrieval", "--dataset", str(beir), "--mode", "bm25", "--rerank", "llm"]
    result = _eval(*args, "--model", str(model), "--k", "3", "--metrics", "map,P_1", "--json")
    assert result.exit_code == 0, result.output
    mean = json.loads(result.output)
    assert set(mean) == {"map", "P_1"} and 0.0 <= mean["map"] <= 1.0
