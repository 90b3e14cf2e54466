"""``index --ray`` on a real local Ray (2 CPUs): the same index as the local path.

One Ray session for the module (started through ``orchestrator.scale.connect``, the one place
our code starts Ray), shut down at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from postgres_support import QUERIES
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.errors import OrchestratorError
from orchestrator.retrieval import IndexSpec, IndexStore, build_index, open_retriever
from orchestrator.retrieval.dense import SentenceTransformerEmbedder
from orchestrator.retrieval.ray_embed import RayEmbedder
from orchestrator.scale import RaySession, connect, map_items

WORDS = [
    *("shock", "wave", "boundary", "layer", "flutter", "panel", "wing", "lift", "drag"),
    *("heat", "transfer", "nozzle", "jet", "noise", "supersonic", "hypersonic", "laminar"),
    *("turbulent", "skin", "friction", "cone", "cylinder", "pressure", "flow"),
]


@pytest.fixture(scope="module")
def ray_session() -> Iterator[RaySession]:
    import sys

    import ray
    from ray import cloudpickle

    # the workers cannot import this test module: ship its functions by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    session = connect("local", num_cpus=2)
    yield session
    ray.shutdown()


def _corpus(root: Path, n: int = 60) -> Path:
    """``n`` documents of varied length (several chunks each for some), as JSONL."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(n):
        length = int(rng.integers(5, 400))
        text = " ".join(WORDS[j] for j in rng.integers(0, len(WORDS), length))
        rows.append({"_id": f"d{i}", "title": f"doc {i}", "text": text})
    path = root / "docs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _same_index(a: IndexStore, b: IndexStore) -> None:
    assert [c.chunk_id for c in a.chunks] == [c.chunk_id for c in b.chunks]
    assert a.manifest["embedding"]["model"] == b.manifest["embedding"]["model"]
    assert a.vectors is not None and b.vectors is not None
    assert a.vectors.shape == b.vectors.shape
    assert float(np.abs(a.vectors - b.vectors).max()) <= 1e-6


def _results(index: Path | str | IndexSpec) -> list[list[tuple[str, float]]]:
    retriever = open_retriever(index, mode="hybrid", k=5)
    return [
        [(d.metadata["chunk_id"], round(d.metadata["score"], 5)) for d in retriever.invoke(q)]
        for q in [*QUERIES, "flutter of a panel", "heat transfer in a nozzle"]
    ]


def test_the_session_has_two_cpus_and_no_telemetry(ray_session: RaySession) -> None:
    import os

    from ray._common.usage import usage_lib

    assert ray_session.address == "local" and ray_session.cpus == 2
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    assert usage_lib.usage_stats_enabled() is False
    assert connect("auto") == RaySession("running", 2)  # one session per process, reused


def _pid_worker() -> object:
    import os

    pid, calls = os.getpid(), []

    def run(item: int) -> tuple[int, int, int]:
        calls.append(item)
        if item < 0:
            raise OrchestratorError(f"bad item {item}", fix="give a positive one")
        return item * item, pid, len(calls)

    return run


def test_map_items_keeps_order_and_builds_once_per_worker(ray_session: RaySession) -> None:
    done: list[int] = []
    out = map_items(_pid_worker, list(range(12)), workers=2, progress=done.append)
    assert [square for square, _, _ in out] == [i * i for i in range(12)]
    pids = {pid for _, pid, _ in out}
    assert 1 <= len(pids) <= 2
    # each worker built its function once and kept it: its call count grows to all its items
    for pid in pids:
        counts = sorted(n for _, p, n in out if p == pid)
        assert counts == list(range(1, len(counts) + 1))
    assert sum(done) == 12


def _broken_worker() -> object:
    raise OrchestratorError("the model file is missing", fix="pass -m PATH.gguf")


def test_an_item_error_comes_back_with_its_fix(ray_session: RaySession) -> None:
    with pytest.raises(OrchestratorError, match="bad item -1") as caught:
        map_items(_pid_worker, [1, -1, 2], workers=2)
    assert caught.value.fix == "give a positive one"
    with pytest.raises(OrchestratorError, match="the model file is missing") as failed:
        map_items(_broken_worker, [1, 2], workers=2)
    assert failed.value.fix == "pass -m PATH.gguf"


def test_cli_index_ray_equals_the_local_path(ray_session: RaySession, tmp_path: Path) -> None:
    docs = _corpus(tmp_path)
    runner = CliRunner()
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert runner.invoke(app, ["index", str(docs), "--index", str(local), "--json"]).exit_code == 0
    result = runner.invoke(
        app, ["index", str(docs), "--index", str(remote), "--ray", "local", "--json"]
    )
    assert result.exit_code == 0, result.output
    a, b = IndexStore.open(local), IndexStore.open(remote)
    assert len(a.chunks) > 64  # several Ray rows (64 texts each)
    _same_index(a, b)
    assert _results(local) == _results(remote)

    # --update --ray embeds the new document's chunks the same way
    extra = tmp_path / "extra.txt"
    extra.write_text("a new report on panel flutter in hypersonic flow " * 20)
    for index in (local, remote):
        args = ["index", str(extra), "--index", str(index), "--update", "--json"]
        assert (
            runner.invoke(app, args + (["--ray", "local"] if index == remote else [])).exit_code
            == 0
        )
    _same_index(IndexStore.open(local), IndexStore.open(remote))


def test_fp32_vectors_match_because_batches_match(ray_session: RaySession, tmp_path: Path) -> None:
    """The exact ONNX encoder pads within a call: Ray rows are the local path's calls."""
    docs = _corpus(tmp_path, 40)
    local = build_index(
        [docs], tmp_path / "a", embedding=SentenceTransformerEmbedder(backend="onnx")
    )
    remote = build_index(
        [docs],
        tmp_path / "b",
        embedding=RayEmbedder(SentenceTransformerEmbedder(backend="onnx"), workers=2),
    )
    _same_index(local, remote)
    assert local.vectors is not None and remote.vectors is not None
    assert np.array_equal(local.vectors, remote.vectors)
    # the caller's progress advances by the texts of each finished batch
    texts = [c.text for c in local.chunks]
    done: list[int] = []
    embedder = RayEmbedder(SentenceTransformerEmbedder(backend="onnx"), workers=2)
    again = embedder.embed_batches(texts, 64, done.append)
    assert sum(done) == len(texts) and np.array_equal(again, local.vectors)


def test_index_ray_into_postgres(
    ray_session: RaySession, tmp_path: Path, pg_dsn: str, index_name: str
) -> None:
    docs = _corpus(tmp_path, 30)
    local = tmp_path / "local"
    build_index([docs], local)
    result = CliRunner().invoke(
        app,
        [
            *("index", str(docs), "--index", index_name, "--backend", "postgres"),
            *("--dsn", pg_dsn, "--ray", "local", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["chunks"] == len(IndexStore.open(local).chunks)
    assert _results(local) == _results(IndexSpec.of(index_name, pg_dsn))
