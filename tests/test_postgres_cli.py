"""The CLI with ``--dsn``: db start/stop, index/search/rag/eval retrieval, chat, agent, serve."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from postgres_support import write_beir
from typer.testing import CliRunner

from orchestrator.cli.app import app

runner = CliRunner()
CLI = [sys.executable, "-m", "orchestrator.cli.app"]


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, result.output
    return " ".join(result.output.split())


@pytest.fixture()
def beir(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "beir")


@pytest.fixture()
def own_tmp() -> Iterator[Path]:
    """A folder outside pytest's: another pytest run resets ``/tmp/pytest-of-USER`` to mode
    0700, which locks the server's own user (``pgserver`` under root) out of a live data
    directory (seen: PANIC, could not open pg_control: Permission denied)."""
    root = Path(tempfile.mkdtemp(prefix="orchestrator-db-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_db_start_prints_the_dsn_last_and_the_server_outlives_the_command(
    own_tmp: Path,
) -> None:
    import psycopg

    directory = own_tmp / "db"
    start = subprocess.run(
        [*CLI, "db", "start", "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    dsn = start.stdout.strip().splitlines()[-1]
    assert dsn.startswith("postgresql://")
    with psycopg.connect(dsn) as conn:  # the command has exited; the server runs on
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert conn.execute("SELECT count(*) FROM orchestrator_migrations").fetchone()[0] >= 1
    again = subprocess.run(
        [*CLI, "db", "start", "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert again.stdout.strip().splitlines()[-1] == dsn  # already running: same server
    stop = subprocess.run(
        [*CLI, "db", "stop", "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "stopped" in stop.stdout
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=5)
    assert "was not running" in invoke("db", "stop", "--dir", str(directory))


def test_index_search_update_delete_with_dsn(beir: Path, pg_dsn: str, index_name: str) -> None:
    built = json.loads(
        invoke(
            "index",
            str(beir),
            "--index",
            index_name,
            "--backend",
            "postgres",
            "--dsn",
            pg_dsn,
            "--json",
        )
    )
    assert (built["index"], built["documents"], built["chunks"]) == (index_name, 8, 8)
    found = json.loads(
        invoke(
            "search", "shell buckling", "--index", index_name, "--dsn", pg_dsn, "--json", "-k", "2"
        )
    )
    assert found["results"][0]["doc_id"] == "shells"
    assert {"chunk_id", "source", "score", "similarity"} <= set(found["results"][0])
    gone = json.loads(
        invoke("index", "--index", index_name, "--dsn", pg_dsn, "--delete", "shells", "--json")
    )
    assert (gone["documents"], gone["removed_chunks"]) == (7, 1)
    found = json.loads(
        invoke(
            "search", "shell buckling", "--index", index_name, "--dsn", pg_dsn, "--json", "-k", "8"
        )
    )
    assert "shells" not in [r["doc_id"] for r in found["results"]]
    note = beir.parent / "note.txt"
    note.write_text("A note about shell buckling and thin shells under axial load.")
    added = json.loads(
        invoke("index", str(note), "--index", index_name, "--dsn", pg_dsn, "--update", "--json")
    )
    assert (added["documents"], added["added_chunks"]) == (8, 1)
    assert "is for the local index" in fails(
        "index", str(beir), "--index", "other", "--dsn", pg_dsn, "--index-kind", "flat"
    )
    assert "needs --dsn" in fails("index", str(beir), "--index", "x", "--backend", "postgres")
    assert "is not a PostgreSQL connection string" in fails(
        "search", "q", "--index", index_name, "--dsn", "/tmp/not-a-dsn"
    )
    assert f"no index named '{index_name}zz'" in fails(
        "search", "q", "--index", f"{index_name}zz", "--dsn", pg_dsn
    )


def test_search_run_and_eval_retrieval_with_dsn(
    beir: Path, pg_dsn: str, index_name: str, tmp_path: Path
) -> None:
    invoke("index", str(beir), "--index", index_name, "--dsn", pg_dsn, "--json")
    run = tmp_path / "run.trec"
    invoke(
        "search",
        "--index",
        index_name,
        "--dsn",
        pg_dsn,
        "--queries",
        str(beir / "queries.jsonl"),
        "--run-out",
        str(run),
        "--json",
    )
    first = {line.split()[0]: line.split()[2] for line in reversed(run.read_text().splitlines())}
    assert first == {"1": "shells", "2": "wedge"}
    scores = json.loads(
        invoke(
            "eval",
            "retrieval",
            "--dataset",
            str(beir),
            "--index",
            index_name,
            "--dsn",
            pg_dsn,
            "--json",
        )
    )
    assert scores["map"] == pytest.approx(1.0)
    assert "--dsn needs --index NAME" in fails(
        "eval", "retrieval", "--dataset", str(beir), "--dsn", pg_dsn
    )


@pytest.mark.integration
def test_rag_cites_the_postgres_index_sources(beir: Path, pg_dsn: str, index_name: str) -> None:
    invoke("index", str(beir), "--index", index_name, "--dsn", pg_dsn, "--json")
    out = json.loads(
        invoke(
            "rag",
            "What buckles thin cylindrical shells?",
            "--index",
            index_name,
            "--dsn",
            pg_dsn,
            "--max-tokens",
            "24",
            "--json",
        )
    )
    assert out["sources"][0]["doc_id"] == "shells"
    assert out["sources"][0]["n"] == 1 and "shells" in out["sources"][0]["text"]
    assert all(s["source"] for s in out["sources"])
    assert isinstance(out["citations"], list)


@pytest.mark.integration
def test_chat_index_with_dsn_answers_one_line(beir: Path, pg_dsn: str, index_name: str) -> None:
    invoke("index", str(beir), "--index", index_name, "--dsn", pg_dsn, "--json")
    proc = subprocess.run(
        [
            *CLI,
            "chat",
            "--index",
            index_name,
            "--dsn",
            pg_dsn,
            "--max-tokens",
            "20",
            "--seed",
            "0",
            "--temperature",
            "0",
        ],
        input="What buckles thin shells?\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1
    assert "no index named" in fails("chat", "--index", "missing-kb", "--dsn", pg_dsn)


def test_agent_knowledge_base_over_dsn(beir: Path, pg_dsn: str, index_name: str) -> None:
    from orchestrator.agents.tools.knowledge import open_knowledge_base
    from orchestrator.retrieval import IndexSpec

    invoke("index", str(beir), "--index", index_name, "--dsn", pg_dsn, "--json")
    retriever = open_knowledge_base(IndexSpec.of(index_name, pg_dsn)).retriever
    assert retriever.invoke("flutter of panels")[0].metadata["doc_id"] == "flutter"
    # a wrong index fails before the model loads
    assert "no index named 'nokb'" in fails(
        "agent", "q", "--tools", "knowledge_base", "--index", "nokb", "--dsn", pg_dsn
    )


@pytest.mark.integration
def test_serve_rag_over_dsn(beir: Path, pg_dsn: str, index_name: str, tmp_path: Path) -> None:
    from server_harness import running_server

    invoke("index", str(beir), "--index", index_name, "--dsn", pg_dsn, "--json")
    with running_server(tmp_path, "--index", index_name, "--dsn", pg_dsn) as server:
        reply: Any = httpx.post(
            f"{server.v1}/chat/completions",
            json={
                "model": "rag",
                "max_tokens": 8,
                "temperature": 0,
                "seed": 0,
                "messages": [{"role": "user", "content": "What is panel flutter?"}],
            },
            timeout=120,
        ).json()
    assert reply["sources"][0]["doc_id"] == "flutter"
