"""The PostgreSQL + pgvector index backend against a real server (tests/postgres_support.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from postgres_support import QUERIES, PgServer, documents

from orchestrator.errors import DataError, OptionError
from orchestrator.retrieval import IndexSpec, build_index, open_retriever
from orchestrator.retrieval.postgres import writes
from orchestrator.retrieval.postgres.connection import Database, DatabaseError, redact_dsn
from orchestrator.retrieval.retriever import drop_index, open_index, update_index


def ranked(retriever: object, query: str, k: int = 5) -> list[tuple[str, float, float]]:
    """(doc_id, score, similarity or -1 in bm25 mode) of each hit, best first."""
    docs = retriever.invoke(query, k=k)  # type: ignore[attr-defined]
    return [
        (d.metadata["doc_id"], d.metadata["score"], d.metadata.get("similarity", -1.0))
        for d in docs
    ]


def test_hybrid_search_matches_the_local_backend(
    pg_dsn: str, index_name: str, tmp_path: Path
) -> None:
    """Same chunks, same rules: the same documents in the same order with the same scores
    (dense via HNSW, BM25 in SQL, fusion and feedback shared), for every search mode."""
    build_index(documents(), tmp_path / "local")
    store = build_index(documents(), IndexSpec.of(index_name, pg_dsn))
    assert store.counts() == {"documents": 8, "chunks": 8}
    for mode in ("hybrid", "dense", "bm25"):
        local = open_retriever(tmp_path / "local", mode=mode, k=5)
        remote = open_retriever(IndexSpec.of(index_name, pg_dsn), mode=mode, k=5)
        for query in QUERIES:
            want, got = ranked(local, query), ranked(remote, query)
            assert [d for d, _, _ in got] == [d for d, _, _ in want], (mode, query)
            for (_, s1, c1), (_, s2, c2) in zip(want, got, strict=True):
                assert s2 == pytest.approx(s1, abs=1e-4)
                assert c2 == pytest.approx(c1, abs=1e-4)


def test_dense_texts_search_the_same_way_on_both_backends(
    pg_dsn: str, index_name: str, tmp_path: Path
) -> None:
    """HyDE's search: another text's vector on the dense side, the query's words on the
    keyword side; equal on both backends, and one dense text per query or an error."""
    build_index(documents(), tmp_path / "local")
    build_index(documents(), IndexSpec.of(index_name, pg_dsn))
    local = open_retriever(tmp_path / "local", k=3)
    remote = open_retriever(IndexSpec.of(index_name, pg_dsn), k=3)
    texts = ["ablating heat shields of reentry vehicles"]
    want = local.search_many(["jet noise"], dense_texts=texts)[0]
    got = remote.search_many(["jet noise"], dense_texts=texts)[0]
    assert [d.metadata["doc_id"] for d in got] == [d.metadata["doc_id"] for d in want]
    assert "ablation" in [d.metadata["doc_id"] for d in got]
    plain = [d.metadata["doc_id"] for d in local.search_many(["jet noise"])[0]]
    assert [d.metadata["doc_id"] for d in want] != plain
    with pytest.raises(OptionError, match="dense_texts has 2 texts for 1 queries"):
        local.search_many(["jet noise"], dense_texts=texts * 2)


def test_documents_carry_the_citation_metadata(pg_dsn: str, index_name: str) -> None:
    build_index(documents(), IndexSpec.of(index_name, pg_dsn))
    doc = open_retriever(IndexSpec.of(index_name, pg_dsn), k=1).invoke("shock on a wedge")[0]
    assert doc.metadata["doc_id"] == "wedge"
    assert doc.metadata["source"] == "wedge.txt"
    assert doc.metadata["position"] == 0
    assert len(doc.metadata["chunk_id"]) == 20
    for key in ("score", "similarity", "bm25", "fused"):
        assert isinstance(doc.metadata[key], float)
    assert "supersonic wedge" in doc.page_content


def test_several_indexes_by_name_in_one_database(pg_dsn: str, index_name: str) -> None:
    a, b = f"{index_name}a", f"{index_name}b"
    build_index(documents()[:4], IndexSpec.of(a, pg_dsn), modes=("bm25",))
    build_index(documents()[4:], IndexSpec.of(b, pg_dsn))
    assert {
        d.metadata["doc_id"]
        for d in open_retriever(IndexSpec.of(a, pg_dsn), mode="bm25", k=8).invoke(
            "shells shock heat noise wings flutter ablation turbulence"
        )
    } == {"shells", "wedge", "heat", "jets"}
    assert open_retriever(IndexSpec.of(b, pg_dsn), k=1).invoke("panel flutter")[0].metadata[
        "doc_id"
    ] == ("flutter")
    with pytest.raises(DataError, match="already holds an index named"):
        build_index(documents(), IndexSpec.of(a, pg_dsn))
    drop_index(IndexSpec.of(a, pg_dsn))
    with pytest.raises(DataError, match=f"no index named '{a}'"):
        open_retriever(IndexSpec.of(a, pg_dsn))
    assert open_retriever(IndexSpec.of(b, pg_dsn), k=1).invoke("swept wings")[0].metadata[
        "doc_id"
    ] == ("wings")


def test_update_replaces_and_delete_of_unknown_id_changes_nothing(
    pg_dsn: str, index_name: str
) -> None:
    build_index(documents(), IndexSpec.of(index_name, pg_dsn), modes=("bm25",))
    new = {"doc_id": "jets", "text": "propeller whirl in gyroscopic rotors", "source": "j2"}
    store, added, removed = update_index(IndexSpec.of(index_name, pg_dsn), [new], ["heat"])
    assert (added, removed) == (1, 1)
    assert store.counts() == {"documents": 7, "chunks": 7}
    retriever = open_retriever(IndexSpec.of(index_name, pg_dsn), mode="bm25", k=3)
    assert ranked(retriever, "gyroscopic rotors")[0][0] == "jets"
    assert "heat" not in [d for d, _, _ in ranked(retriever, "heat transfer laminar")]
    with pytest.raises(DataError, match="no document with the id 'nope'"):
        update_index(IndexSpec.of(index_name, pg_dsn), [documents()[2]], ["nope"])
    assert store.counts() == {"documents": 7, "chunks": 7}  # the add did not happen either


def test_a_failure_mid_write_rolls_back_everything(
    pg_dsn: str, index_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks are copied before the postings: a failure between them leaves the index as it
    was (an add) or absent (a build), never half-written."""
    build_index(documents()[:4], IndexSpec.of(index_name, pg_dsn), modes=("bm25",))

    def boom(*args: object, **kwargs: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(writes, "_copy_postings", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        update_index(IndexSpec.of(index_name, pg_dsn), documents()[4:], ["shells"])
    with pytest.raises(RuntimeError, match="disk full"):
        build_index(documents(), IndexSpec.of(f"{index_name}new", pg_dsn), modes=("bm25",))
    monkeypatch.undo()
    store = open_index(IndexSpec.of(index_name, pg_dsn))
    assert store.counts() == {"documents": 4, "chunks": 4}
    assert sorted(store.doc_ids) == ["heat", "jets", "shells", "wedge"]
    assert store.row.n_chunks == 4 and store.row.generation == 1
    with pytest.raises(DataError, match="no index named"):
        open_retriever(IndexSpec.of(f"{index_name}new", pg_dsn))


def test_a_second_process_sees_adds_and_deletes_on_its_next_query(
    pg_dsn: str, index_name: str, tmp_path: Path
) -> None:
    build_index(documents(), IndexSpec.of(index_name, pg_dsn), modes=("bm25",))
    retriever = open_retriever(IndexSpec.of(index_name, pg_dsn), mode="bm25", k=3)
    assert ranked(retriever, "gyroscopic whirl") == []
    script = textwrap.dedent(
        """
        import sys
        from orchestrator.retrieval import IndexSpec
        from orchestrator.retrieval.retriever import update_index
        dsn, name, action = sys.argv[1:4]
        doc = {"doc_id": "gyro", "text": "gyroscopic whirl of propellers"}
        if action == "add":
            update_index(IndexSpec.of(name, dsn), [doc])
        else:
            update_index(IndexSpec.of(name, dsn), delete=["gyro"])
        """
    )
    for action, expected in (("add", ["gyro"]), ("delete", [])):
        subprocess.run(
            [sys.executable, "-c", script, pg_dsn, index_name, action], check=True, timeout=120
        )
        assert [d for d, _, _ in ranked(retriever, "gyroscopic whirl")] == expected


def test_dsn_password_is_never_shown() -> None:
    assert redact_dsn("postgresql://ann:s3cret@db.example:5433/rag") == (
        "postgresql://ann@db.example:5433/rag"
    )
    assert "s3cret" not in redact_dsn("host=db user=ann password=s3cret dbname=rag")
    with pytest.raises(DatabaseError) as caught:
        Database("postgresql://ann:s3cret@/rag?host=/nonexistent-socket-dir").connection()
    assert "s3cret" not in str(caught.value)
    assert "postgresql://ann@/rag?host=/nonexistent-socket-dir" in caught.value.message
    assert "orchestrator db start" in (caught.value.fix or "")


def test_lost_connection_is_a_clear_error_then_reads_recover(tmp_path: Path) -> None:
    """Server gone: a DatabaseError naming the server and the fix. Server back: the next
    query reconnects by itself (a read is retried on a fresh connection)."""
    from orchestrator.retrieval.postgres.server import start_server, stop_server

    directory = tmp_path / "pg"
    dsn = start_server(directory)
    try:
        build_index(documents(), IndexSpec.of("lost", dsn), modes=("bm25",))
        retriever = open_retriever(IndexSpec.of("lost", dsn), mode="bm25", k=1)
        assert ranked(retriever, "panel flutter")[0][0] == "flutter"
        assert stop_server(directory)
        with pytest.raises(DatabaseError) as caught:
            retriever.invoke("panel flutter")
        assert redact_dsn(dsn) in caught.value.message
        assert "orchestrator db start" in (caught.value.fix or "")
        with pytest.raises(DatabaseError):
            update_index(IndexSpec.of("lost", dsn), delete=["flutter"])
        assert start_server(directory) == dsn
        assert ranked(retriever, "panel flutter")[0][0] == "flutter"
    finally:
        stop_server(directory)


def test_a_newer_schema_is_refused(pg_server: PgServer) -> None:
    from orchestrator.retrieval.postgres.migrations import MIGRATIONS

    admin = Database(pg_server.dsn)
    admin.connection().execute("CREATE DATABASE future_schema")
    dsn = pg_server.database_dsn("future_schema")
    conn = Database(dsn).connection()  # migrates the new database to this code's schema
    names = [r[0] for r in conn.execute("SELECT name FROM orchestrator_migrations")]
    assert names == [name for name, _ in MIGRATIONS]
    conn.execute("INSERT INTO orchestrator_migrations (name) VALUES ('9999_from_the_future')")
    with pytest.raises(DatabaseError, match="9999_from_the_future") as caught:
        Database(dsn).connection()
    assert "newer than this code" in caught.value.message
    assert "upgrade Orchestrator" in (caught.value.fix or "")


def test_a_dropped_connection_is_retried_only_when_safe(pg_dsn: str) -> None:
    """The server ends the session mid-transaction: an idempotent write (or a read) runs
    again on a fresh connection; any other write is a DatabaseError, with nothing written."""
    db = Database(pg_dsn)
    calls: list[int] = []

    def work(conn: object) -> int:
        calls.append(1)
        if len(calls) == 1:
            conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # type: ignore[attr-defined]
        return int(conn.execute("SELECT 42").fetchone()[0])  # type: ignore[attr-defined]

    assert db.write(work, idempotent=True) == 42
    assert len(calls) == 2
    calls.clear()
    with pytest.raises(DatabaseError, match="lost the connection") as caught:
        db.write(work, idempotent=False)
    assert len(calls) == 1
    assert "nothing was written" in caught.value.message
    assert db.read(lambda conn: conn.execute("SELECT 1").fetchone()[0]) == 1


@pytest.mark.parametrize("module", ["psycopg", "pgserver"])
def test_without_the_postgres_extra_the_error_names_it(
    module: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from orchestrator.extras import MissingDependencyError
    from orchestrator.retrieval.postgres.server import start_server

    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(MissingDependencyError) as caught:
        if module == "psycopg":
            Database("postgresql://ann@/rag?host=/nowhere").connection()
        else:
            start_server(tmp_path / "db")
    assert caught.value.fix == 'pip install "orchestrator[postgres]"'
