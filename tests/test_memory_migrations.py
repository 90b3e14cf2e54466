"""The session store's schema migrates append-only, as the PostgreSQL index schema does: a
schema-1 file (written before migrations were recorded) upgrades in place with every row, a
migration runs in one transaction, and a file from newer code is refused untouched."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, message_to_dict

from orchestrator.errors import DataError, OrchestratorError
from orchestrator.memory import SQLiteStore, sqlite_schema
from orchestrator.migrations import check_order, pending

#: What schema-1 code (before migrations) created, verbatim.
SCHEMA_1 = (
    "CREATE TABLE IF NOT EXISTS orchestrator_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "session TEXT NOT NULL, data TEXT NOT NULL, created REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS messages_by_session ON messages (session, id)",
    "CREATE TABLE IF NOT EXISTS summaries (session TEXT PRIMARY KEY, text TEXT NOT NULL, "
    "covered INTEGER NOT NULL, updated REAL NOT NULL)",
    "INSERT OR IGNORE INTO orchestrator_meta (key, value) VALUES ('schema_version', '1')",
)
FIRST = sqlite_schema.MIGRATIONS[0][0]


def schema_1_store(path: Path, exchanges: int = 3) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        for statement in SCHEMA_1:
            conn.execute(statement)
        for i in range(exchanges):
            for message in (HumanMessage(f"q{i}"), AIMessage(f"a{i}")):
                conn.execute(
                    "INSERT INTO messages (session, data, created) VALUES (?, ?, ?)",
                    ("old", json.dumps(message_to_dict(message)), float(i)),
                )
        conn.execute("INSERT INTO summaries VALUES ('old', 'they talked', 2, 1.0)")
    conn.close()


def recorded(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM orchestrator_migrations ORDER BY name").fetchall()
        version = conn.execute(
            "SELECT value FROM orchestrator_meta WHERE key = 'schema_version'"
        ).fetchone()[0]
    conn.close()
    assert int(version) == len(rows)  # what schema-1 code reads to refuse a newer file
    return [r[0] for r in rows]


def test_a_schema_1_file_upgrades_in_place_with_every_row(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    schema_1_store(path)
    with SQLiteStore(path) as store:
        history = store.history("old")
        assert [m.content for m in history.messages] == ["q0", "a0", "q1", "a1", "q2", "a2"]
        assert history.load_summary() == ("they talked", 2)
        history.add_messages([HumanMessage("q3"), AIMessage("a3")])
    assert recorded(path) == [name for name, _ in sqlite_schema.MIGRATIONS]
    with SQLiteStore(path) as store:
        assert len(store.history("old")) == 8
    conn = sqlite3.connect(path, isolation_level=None)
    assert sqlite_schema.prepare(conn, path) == []  # nothing left to do
    conn.close()
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_new_store_records_its_migrations(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "new.db") as store:
        store.history("s").add_messages([HumanMessage("hi")])
    assert recorded(tmp_path / "new.db") == [name for name, _ in sqlite_schema.MIGRATIONS]


def test_a_later_migration_runs_once_and_keeps_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    schema_1_store(path)
    later = ("0002_session_titles", "CREATE TABLE titles (session TEXT PRIMARY KEY, title TEXT)")
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", (*sqlite_schema.MIGRATIONS, later))
    with SQLiteStore(path) as store:
        store.write([("INSERT INTO titles VALUES ('old', 'Old talk')", ())])
        assert len(store.history("old")) == 6
    assert recorded(path) == [FIRST, "0002_session_titles"]
    with SQLiteStore(path) as store:  # recorded: not run again (it would fail: table exists)
        assert store.read("SELECT title FROM titles") == [("Old talk",)]


def test_a_semicolon_inside_a_statement_does_not_split_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A string literal or a trigger body holding ';' stays one statement, and the migration
    still runs in one transaction with its row."""
    later = (
        "0002_notes",
        "CREATE TABLE notes (text TEXT NOT NULL);\n"
        "INSERT INTO notes VALUES ('first; second');\n"
        "CREATE TRIGGER notes_echo AFTER INSERT ON notes WHEN NEW.text NOT LIKE 'echo%'\n"
        "BEGIN INSERT INTO notes VALUES ('echo; ' || NEW.text); END;",
    )
    assert len(sqlite_schema.statements(later[1])) == 3
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", (*sqlite_schema.MIGRATIONS, later))
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.write([("INSERT INTO notes VALUES ('third')", ())])
        assert store.read("SELECT text FROM notes ORDER BY rowid") == [
            ("first; second",),
            ("third",),
            ("echo; third",),
        ]
    assert recorded(path) == [FIRST, "0002_notes"]


def test_a_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    schema_1_store(path)
    broken = ("0002_broken", "CREATE TABLE extra (x INTEGER); INSERT INTO no_such_table VALUES (1)")
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", (*sqlite_schema.MIGRATIONS, broken))
    with pytest.raises(OrchestratorError, match="no_such_table"):
        SQLiteStore(path)
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "extra" not in tables and "orchestrator_migrations" not in tables
    monkeypatch.undo()
    with SQLiteStore(path) as store:
        assert len(store.history("old")) == 6


@pytest.mark.parametrize("newer", ["migration", "schema_version"])
def test_a_store_from_newer_code_is_refused_untouched(tmp_path: Path, newer: str) -> None:
    path = tmp_path / "future.db"
    with SQLiteStore(path) as store:
        store.history("s").add_messages([HumanMessage("hi")])
    with sqlite3.connect(path) as conn:
        if newer == "migration":
            conn.execute("INSERT INTO orchestrator_migrations VALUES ('9999_from_the_future', 0)")
        else:  # a schema-1-era file that claims a later version and records no migrations
            conn.execute("DROP TABLE orchestrator_migrations")
            conn.execute("UPDATE orchestrator_meta SET value = '7' WHERE key = 'schema_version'")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(DataError, match="newer than this code") as caught:
        SQLiteStore(path)
    assert ("9999_from_the_future" if newer == "migration" else "schema_version=7") in str(
        caught.value
    )
    assert str(path) in caught.value.message
    assert "upgrade Orchestrator" in (caught.value.fix or "")
    assert path.read_bytes() == before


def test_the_runner_refuses_unknown_names_and_misordered_lists() -> None:
    steps = (("0001_a", "x"), ("0002_b", "y"))
    assert pending(steps, ["0001_a"], store="s", fix="f") == [("0002_b", "y")]
    assert pending(steps, [], store="s", fix="f") == list(steps)
    with pytest.raises(DataError, match="0003_c") as caught:
        pending(steps, ["0001_a", "0003_c"], store="the store x", fix="upgrade")
    assert "the store x" in caught.value.message and caught.value.fix == "upgrade"
    with pytest.raises(OrchestratorError) as typed:
        pending(steps, ["0009"], store="s", fix="f", error=OrchestratorError)
    assert type(typed.value) is OrchestratorError
    for bad in ((("0002_b", "y"), ("0001_a", "x")), (("0001_a", "x"), ("0001_a", "y")), ()):
        with pytest.raises(ValueError, match="sort in run order"):
            check_order(bad)
