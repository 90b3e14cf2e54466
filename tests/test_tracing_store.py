"""The trace store (issue 21, point 1): schema by migrations, WAL, refusals, retention by age
and size, search and filters, the read API the viewer and replay use."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from tracing_support import greeting_chain, recorded

from orchestrator import tracing
from orchestrator.errors import DataError
from orchestrator.tracing import RunFilter, TraceStore, parse_time
from orchestrator.tracing.retention import Retention, prune, used_bytes
from orchestrator.tracing.schema import MIGRATIONS, connect


def _runs(path: Path, count: int, **options: object) -> None:
    with tracing.tracing(path, **options):  # type: ignore[arg-type]
        for n in range(count):
            with tracing.run("ask" if n % 2 else "rag", pipeline=f"p{n % 3}"):
                greeting_chain([f"answer number {n} " + "filler " * 200]).invoke({"name": f"n{n}"})


def test_the_store_is_a_migrated_wal_file(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite"
    _runs(path, 1)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    names = [r[0] for r in conn.execute("SELECT name FROM orchestrator_migrations")]
    assert names == [name for name, _ in MIGRATIONS]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_another_programs_database_and_a_newer_store_are_refused_untouched(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x)")
    before = other.read_bytes()
    with pytest.raises(DataError, match="another program") as caught:
        tracing.enable(other)
    assert "mv" in (caught.value.fix or "")
    assert other.read_bytes() == before and not tracing.is_enabled()
    newer = tmp_path / "newer.sqlite"
    connect(newer).execute("INSERT INTO orchestrator_migrations VALUES ('9999_future', 0)")
    with pytest.raises(DataError, match="newer than this code"):
        TraceStore(newer)


def test_runs_are_filtered_and_searched(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite"
    _runs(path, 4)
    with TraceStore(path) as store:
        assert [r.command for r in store.runs(RunFilter(command="ask"))] == ["ask", "ask"]
        assert [r.pipeline for r in store.runs(RunFilter(pipeline="p1"))] == ["p1"]
        assert len(store.runs(RunFilter(limit=3))) == 3
        assert store.runs(RunFilter(status="error")) == []
        assert len(store.runs(RunFilter(since=time.time() - 600))) == 4
        assert store.runs(RunFilter(until=time.time() - 600)) == []
        (hit,) = store.search("answer number 3")
        assert hit.run.output and hit.run.output.startswith("answer number 3")
        assert "[number]" in hit.snippet and hit.field == "answer"
        assert [h.run.command for h in store.search("answer", RunFilter(command="rag"))] == [
            "rag"
        ] * 2
        assert store.search('"quoted" -minus: star*') == []  # words, not FTS5 syntax
        run = store.runs()[0]
        assert store.run(run.run_id[:10]) == run
        with pytest.raises(DataError, match="no run has the id"):
            store.run("ffff0000")
    assert TraceStore(tmp_path / "missing.sqlite").runs() == []


def test_times_are_relative_or_iso() -> None:
    now = 1_000_000.0
    assert parse_time("2h", now) == now - 7200
    assert parse_time("1.5d", now) == now - 1.5 * 86400
    assert parse_time("2025-05-01T12:00:00+00:00") == 1746100800.0
    with pytest.raises(DataError):
        parse_time("yesterday")


def test_retention_drops_the_oldest_runs_by_age_and_by_size(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite"
    _runs(path, 30)
    conn = connect(path)
    oldest = conn.execute("SELECT run_id, started FROM runs ORDER BY started").fetchall()
    assert prune(conn, Retention(max_age_days=1), now=oldest[10][1] + 86400) == 10
    left = [r[0] for r in conn.execute("SELECT run_id FROM runs ORDER BY started")]
    assert left == [r[0] for r in oldest[10:]]
    assert conn.execute(
        "SELECT count(*) FROM spans WHERE run_id = ?", (oldest[0][0],)
    ).fetchone() == (0,)
    size = used_bytes(conn)
    limit = size // 2
    gone = prune(conn, Retention(max_bytes=limit))
    assert gone > 0 and used_bytes(conn) <= limit
    newest = conn.execute("SELECT run_id FROM runs ORDER BY started DESC LIMIT 1").fetchone()[0]
    assert newest == oldest[-1][0]  # the newest are kept
    assert conn.execute(
        "SELECT count(*) FROM texts WHERE run_id NOT IN (SELECT run_id FROM runs)"
    ).fetchone() == (0,)
    conn.close()
    file_size = path.stat().st_size
    _runs(path, 1, max_bytes=limit // 2)  # applied when tracing starts
    assert used_bytes(connect(path)) <= limit // 2 + 64 * 1024
    assert path.stat().st_size <= file_size  # freed pages went back to the file system
    with pytest.raises(Exception, match="keeps nothing"):
        Retention(max_age_days=0)


def test_recorded_runs_list_with_tokens_duration_and_spans(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite"
    _runs(path, 1)
    [(run, spans)] = recorded(path)
    assert run.duration_s is not None and run.duration_s >= 0
    assert {"run_id", "command", "pipeline", "model", "session", "status", "input_tokens",
            "output_tokens", "duration_s"} <= set(run.to_dict())  # fmt: skip
    assert {"span_id", "parent_id", "kind", "attributes", "duration_s"} <= set(spans[0].to_dict())
