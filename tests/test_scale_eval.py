"""``eval retrieval|rag|SUITE.yaml --ray`` on a real local Ray (2 CPUs): per-item results equal
the serial run's. One Ray session for the module, shut down at the end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from orchestrator.agents.pipelines import RagSpec
from orchestrator.cli.app import app
from orchestrator.evals.distributed import RayPlan, ray_retrieve
from orchestrator.evals.retrieval import ensure_index, evaluate_retriever
from orchestrator.evals.runner import run_suite
from orchestrator.evals.suite import load_suite
from orchestrator.retrieval import IndexSpec, load_beir, open_retriever
from orchestrator.scale import RaySession, connect

TOPICS = ["shock", "flutter", "nozzle", "buckling", "noise", "ablation", "lift", "heat"]
FILLER = ["flow", "pressure", "velocity", "boundary", "layer", "measured", "model", "wind"]
EXAMPLES = Path(__file__).resolve().parents[1] / "evals" / "examples"


@pytest.fixture(scope="module")
def ray_session() -> Iterator[RaySession]:
    import ray

    session = connect("local", num_cpus=2)
    yield session
    ray.shutdown()


@pytest.fixture
def beir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """40 documents, 24 judged queries (two batches of 16 and 8 in the serial loop)."""
    monkeypatch.setenv("ORCHESTRATOR_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(3)
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    docs, qrels, queries = [], [], []
    for i in range(40):
        topic = TOPICS[i % len(TOPICS)]
        words = [topic] * 3 + [FILLER[j] for j in rng.integers(0, len(FILLER), 40)]
        docs.append({"_id": f"d{i}", "title": f"{topic} report {i}", "text": " ".join(words)})
    for q in range(24):
        topic = TOPICS[q % len(TOPICS)]
        queries.append({"_id": f"q{q}", "text": f"{topic} {FILLER[q % len(FILLER)]}"})
        qrels += [f"q{q}\td{i}\t1" for i in range(40) if i % len(TOPICS) == q % len(TOPICS)]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(qrels))
    return root


def _rounded(run: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {q: {d: round(s, 6) for d, s in docs.items()} for q, docs in run.items()}


def test_retrieval_on_ray_equals_serial_per_query(ray_session: RaySession, beir: Path) -> None:
    data = load_beir(beir)
    index = ensure_index([beir])
    retriever = open_retriever(index, mode="hybrid", k=10)
    serial = evaluate_retriever(retriever, data, k=10)
    spec = RagSpec(indexes=[IndexSpec.of(index)], mode="hybrid", k=10)  # what workers open
    progressed: list[int] = []
    spread = evaluate_retriever(
        retriever,
        data,
        k=10,
        retrieve=ray_retrieve(RayPlan("local", 2), spec),
        progress=progressed.append,
    )
    assert list(spread.run) == list(serial.run)  # same queries, same order
    assert _rounded(spread.run) == _rounded(serial.run)
    assert spread.per_query == serial.per_query and spread.mean == serial.mean
    assert progressed == [16, 8] or sorted(progressed) == [8, 16]  # one step per batch


def test_cli_eval_retrieval_ray_prints_the_serial_means(
    ray_session: RaySession, beir: Path
) -> None:
    runner = CliRunner()
    base = ["eval", "retrieval", "--dataset", str(beir), "--mode", "bm25", "--k", "10", "--json"]
    serial = runner.invoke(app, base)
    spread = runner.invoke(app, [*base, "--ray", "local", "--ray-workers", "2"])
    assert serial.exit_code == 0 and spread.exit_code == 0, spread.output
    assert json.loads(spread.stdout) == json.loads(serial.stdout)


def test_retrieval_suite_on_ray_equals_serial(
    ray_session: RaySession, beir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(
        f"name: tiny\ndataset: {beir}\nk: 10\nmetrics: [map, ndcg_cut_10, recip_rank]\n"
        "configurations:\n  - {name: bm25, mode: bm25}\n  - {name: hybrid, mode: hybrid}\n"
    )
    spec, base = load_suite(path)
    serial = run_suite(spec, base, tmp_path / "serial", progress=False)
    cli = CliRunner().invoke(
        app, ["eval", str(path), "--out", str(tmp_path / "ray"), "--ray", "local", "--json"]
    )
    assert cli.exit_code == 0, cli.output
    spread = json.loads((tmp_path / "ray" / "results.json").read_text())
    for a, b in zip(serial["configurations"], spread["configurations"], strict=True):
        assert a["name"] == b["name"] and a["per_query"] == b["per_query"]
        assert a["mean"] == b["mean"]
    runs = [(tmp_path / d / "runs" / "hybrid.trec").read_text() for d in ("serial", "ray")]
    assert runs[0] == runs[1]


def _rag_suite(tmp_path: Path, metrics: str) -> Path:
    rows = [json.loads(line) for line in (EXAMPLES / "rag_qa.jsonl").read_text().splitlines()]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    path = tmp_path / "suite.yaml"
    path.write_text(
        f"name: rag-tiny\ndataset: qa.jsonl\ndocuments: [{EXAMPLES / 'rag_docs'}]\n"
        f"metrics: [{metrics}]\njudge: {{max_tokens: 96, timeout: 600}}\n"
        "configurations:\n  - {name: bm25, mode: bm25, k: 2, max_tokens: 24}\n"
    )
    return path


@pytest.mark.integration
def test_rag_suite_on_ray_answers_and_judges_as_serial(
    ray_session: RaySession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded GGUF answers and judges (faithfulness) on the workers, once per worker."""
    monkeypatch.setenv("ORCHESTRATOR_CACHE", str(tmp_path / "cache"))
    path = _rag_suite(tmp_path, "faithfulness, rouge, non_llm_context_recall")
    spec, base = load_suite(path)
    serial = run_suite(spec, base, tmp_path / "serial", progress=False)
    spread = run_suite(spec, base, tmp_path / "ray", progress=False, ray=RayPlan("local", 2))
    a, b = serial["configurations"][0], spread["configurations"][0]
    assert [s["id"] for s in a["samples"]] == [s["id"] for s in b["samples"]]
    for one, other in zip(a["samples"], b["samples"], strict=True):
        assert one["response"] and one["response"] == other["response"]
        assert one["retrieved_contexts"] == other["retrieved_contexts"]
        assert one["scores"] == other["scores"]
    assert a["failed"] == b["failed"] and a["mean"] == b["mean"]
    # the judge ran on every sample: a faithfulness score, or the judge's own failure
    judged = {s["id"] for s in a["samples"] if "faithfulness" in s["scores"]}
    judged |= {f["id"] for f in a["failed"] if f["metric"] == "faithfulness" and f["reason"]}
    assert judged == {s["id"] for s in a["samples"]}, a["failed"]


@pytest.mark.integration
def test_cli_eval_rag_ray_equals_serial_per_sample(ray_session: RaySession, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (EXAMPLES / "rag_qa.jsonl").read_text().splitlines()]
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    index = tmp_path / "index"
    runner = CliRunner()
    built = runner.invoke(
        app, ["index", str(EXAMPLES / "rag_docs"), "--index", str(index), "--modes", "bm25"]
    )
    assert built.exit_code == 0, built.output
    args = ["eval", "rag", "--dataset", str(qa), "--index", str(index), "--mode", "bm25"]
    args += ["--metrics", "rouge,non_llm_context_recall", "--k", "2", "--max-tokens", "24"]
    serial = runner.invoke(app, [*args, "--json"])
    spread = runner.invoke(app, [*args, "--json", "--ray", "local"])
    assert serial.exit_code == 0 and spread.exit_code == 0, spread.output
    alone = json.loads(serial.stdout)
    alone.pop("cache", None)  # the evaluation cache's counts: not kept on Ray
    assert json.loads(spread.stdout) == alone
