"""Thread defaults (issue 14): one thread per core that other work leaves free, generation
giving a core up sooner than embedding; ``$ORCHESTRATOR_THREADS`` overrides; the choice is made
once per process and workload; the embedder asks for the single-query count for one text and
the batch count for several. The CPU load is faked: no figure here depends on the machine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orchestrator import settings
from orchestrator.errors import OptionError
from orchestrator.retrieval import dense
from orchestrator.retrieval.dense import SentenceTransformerEmbedder
from orchestrator.settings import thread_count, threads_for_load


@pytest.fixture()
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """No override, 2 cores, a settable fake load from other processes, no earlier choice."""
    monkeypatch.delenv("ORCHESTRATOR_THREADS", raising=False)
    monkeypatch.setattr(settings, "available_cores", lambda: 2)
    load = {"now": 0.0}
    monkeypatch.setattr(settings, "other_cpu_load", lambda: load["now"])
    settings._chosen_threads.cache_clear()
    yield load
    settings._chosen_threads.cache_clear()


@pytest.mark.parametrize(
    ("cores", "load", "workload", "threads"),
    [
        (2, 0.0, "generation", 2),
        (2, 0.49, "generation", 2),
        (2, 0.5, "generation", 1),  # a core half taken: generation gives it up
        (2, 0.5, "batch-embedding", 2),  # embedding still gains from it (1.45x measured)
        (2, 0.74, "query-embedding", 2),
        (2, 0.75, "batch-embedding", 1),
        (2, 1.0, "generation", 1),
        (2, 6.0, "batch-embedding", 1),  # never below one thread
        (1, 0.0, "generation", 1),
        (16, 0.2, "generation", 8),  # at most MAX_THREADS
        (16, 10.4, "generation", 6),
        (16, 10.4, "batch-embedding", 6),
        (16, 10.8, "batch-embedding", 5),
        (2, -1.0, "generation", 2),
    ],
)
def test_the_thread_rule(cores: int, load: float, workload: str, threads: int) -> None:
    assert threads_for_load(cores, load, workload) == threads


def test_the_count_follows_the_load_when_first_asked(fresh: Any) -> None:
    fresh["now"] = 0.2
    assert thread_count("batch-embedding") == 2
    assert settings.default_threads() == thread_count("generation") == 2
    fresh["now"] = 3.0  # later load changes no choice already made in this process
    assert thread_count("batch-embedding") == 2
    assert thread_count("query-embedding") == 1  # first asked now
    settings._chosen_threads.cache_clear()
    assert thread_count("generation") == 1


def test_the_environment_overrides_the_rule(fresh: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh["now"] = 9.0
    monkeypatch.setenv("ORCHESTRATOR_THREADS", "3")
    assert [thread_count(w) for w in settings.THREAD_WORKLOADS] == [3, 3, 3]
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("ORCHESTRATOR_THREADS", bad)
        with pytest.raises(OptionError) as caught:
            thread_count("generation")
        assert "ORCHESTRATOR_THREADS=" in (caught.value.fix or "")


def test_an_unknown_workload_is_named() -> None:
    with pytest.raises(OptionError) as caught:
        thread_count("batch-embeding")
    assert "batch-embedding" in (caught.value.fix or "")


def write_stat(path: Path, user: int, idle: int) -> str:
    path.write_text(f"cpu  {user} 0 0 {idle} 0 0 0 0 0 0\ncpu0 {user} 0 0 {idle} 0 0 0 0 0 0\n")
    return str(path)


def test_the_load_is_the_busy_cpu_time_of_others(tmp_path: Path) -> None:
    before = settings.cpu_times(write_stat(tmp_path / "a", user=1000, idle=3000))
    after = settings.cpu_times(write_stat(tmp_path / "b", user=1150, idle=3050))
    assert before == (4000, 3000) and after == (4200, 3050)
    assert settings.busy_cores(before, after, cores=2) == pytest.approx(1.5)  # 150 of 200 busy
    assert settings.busy_cores(before, before, cores=2) == 0.0
    (tmp_path / "c").write_text("intr 1 2 3\n")
    with pytest.raises(ValueError, match="no aggregate cpu line"):
        settings.cpu_times(str(tmp_path / "c"))


def test_this_process_own_cpu_time_is_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = iter([(0, 0), (200, 0)])  # both cores fully busy during the sample...
    monkeypatch.setattr(settings, "cpu_times", lambda: next(samples))
    monkeypatch.setattr(settings, "available_cores", lambda: 2)
    own = iter([10.0, 10.0 + 2 * settings.SAMPLE_SECONDS])  # ...by this process's 2 threads
    monkeypatch.setattr(settings, "process_seconds", lambda: next(own))
    monkeypatch.setattr(settings.time, "sleep", lambda s: None)
    clock = iter([0.0, settings.SAMPLE_SECONDS])
    monkeypatch.setattr(settings.time, "perf_counter", lambda: next(clock))
    assert settings.other_cpu_load() == pytest.approx(0.0)


def test_without_proc_stat_the_load_average_then_one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable() -> tuple[int, int]:
        raise OSError("no /proc here")

    monkeypatch.setattr(settings, "cpu_times", unreadable)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.5, 0.0, 0.0))
    assert settings.other_cpu_load() == 2.5
    monkeypatch.delattr(os, "getloadavg")
    assert settings.other_cpu_load() == 1.0  # Windows: one core assumed taken
    assert threads_for_load(4, 1.0, "generation") == 3


class RecordingEncoder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def encode(self, texts: list[str], *, threads: int, batch_size: int) -> np.ndarray:
        self.calls.append((len(texts), threads))
        return np.ones((len(texts), 4), np.float32)


def test_one_text_uses_the_query_count_and_many_the_batch_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts = {"query-embedding": 1, "batch-embedding": 2}
    monkeypatch.setattr(dense, "thread_count", counts.__getitem__)
    embedder = SentenceTransformerEmbedder(backend="onnx")
    encoder = RecordingEncoder()
    embedder.__dict__["encoder"] = encoder  # the real one is tested in test_..._onnx.py
    embedder.embed_query("one question")
    embedder.embed_documents(["a", "b", "c"])
    assert encoder.calls == [(1, 1), (3, 2)]


def test_the_cache_directory_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_CACHE", str(tmp_path))
    assert settings.cache_home() == tmp_path
    monkeypatch.delenv("ORCHESTRATOR_CACHE")
    assert settings.cache_home() == Path("~/.cache/orchestrator").expanduser()


def test_faiss_searches_one_query_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss

    monkeypatch.setattr(dense, "thread_count", lambda workload: 2)
    before = faiss.omp_get_max_threads()
    try:
        vectors = np.eye(4, dtype=np.float32)
        index = dense.FaissVectorIndex.build("flat", np.arange(4), vectors)
        assert faiss.omp_get_max_threads() == 2  # building: the batch count
        index.search(vectors[:1], 2)
        assert faiss.omp_get_max_threads() == 1
        index.search(vectors, 2)
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)
