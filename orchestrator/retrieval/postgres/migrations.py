"""The PostgreSQL schema as an append-only list of migrations (the rule of
:mod:`orchestrator.migrations`, which the SQLite session store follows too).

Each migration has a name that sorts after the previous one and runs once, in one transaction
with the row recording it in ``orchestrator_migrations``; a migration is never edited once
released, only followed by a new one. A database that lists a migration this code does not
know was migrated by a newer Orchestrator: it is refused (writing to it with older code could
corrupt what the newer code relies on), with the fix to upgrade.

Concurrent first connections are serialised by a transaction-scoped advisory lock.
"""

from __future__ import annotations

from typing import Any

from orchestrator.migrations import Migration, check_order, pending
from orchestrator.retrieval.postgres.connection import DatabaseError

TABLE = "orchestrator_migrations"
#: ``pg_advisory_xact_lock`` key held while migrating ("orch" in ASCII).
LOCK_KEY = 0x6F726368

_INITIAL = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE orch_indexes (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    manifest jsonb NOT NULL,
    n_chunks bigint NOT NULL DEFAULT 0,
    total_length bigint NOT NULL DEFAULT 0,
    n_terms integer NOT NULL DEFAULT 0,
    generation bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orch_chunks (
    id bigserial PRIMARY KEY,
    index_id integer NOT NULL REFERENCES orch_indexes (id) ON DELETE CASCADE,
    chunk_id text NOT NULL,
    doc_id text NOT NULL,
    text text NOT NULL,
    source text NOT NULL DEFAULT '',
    position integer NOT NULL DEFAULT 0,
    metadata jsonb NOT NULL DEFAULT '{}',
    length integer NOT NULL,
    embedding vector,
    UNIQUE (index_id, chunk_id)
);
CREATE INDEX orch_chunks_doc ON orch_chunks (index_id, doc_id);
CREATE TABLE orch_vocab (
    index_id integer NOT NULL REFERENCES orch_indexes (id) ON DELETE CASCADE,
    term text NOT NULL,
    term_id integer NOT NULL,
    PRIMARY KEY (index_id, term),
    UNIQUE (index_id, term_id)
);
CREATE TABLE orch_postings (
    index_id integer NOT NULL,
    term_id integer NOT NULL,
    chunk bigint NOT NULL,
    tf real NOT NULL,
    length integer NOT NULL,
    PRIMARY KEY (index_id, term_id, chunk)
);
CREATE INDEX orch_postings_chunk ON orch_postings (chunk);
"""

#: (name, SQL), oldest first. Append only: never edit or reorder a released entry.
MIGRATIONS: tuple[Migration, ...] = (("0001_indexes_chunks_vocab_postings", _INITIAL),)
check_order(MIGRATIONS)


def applied(conn: Any) -> list[str]:
    """Names of the migrations recorded in the database (empty before the first)."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()[0]
    if not exists:
        return []
    return [row[0] for row in conn.execute(f"SELECT name FROM {TABLE} ORDER BY name")]


def check_not_newer(names: list[str]) -> list[Migration]:
    """Refuse a database migrated by newer code (it lists migrations we do not know); returns
    the migrations it lacks."""
    return pending(
        MIGRATIONS,
        names,
        store="the database",
        error=DatabaseError,
        fix='upgrade Orchestrator (pip install -U "orchestrator[postgres]") or use another '
        "database; older code does not write to a newer schema",
    )


def migrate(conn: Any) -> list[str]:
    """Apply the migrations ``conn``'s database lacks; returns the names applied now."""
    if not check_not_newer(applied(conn)):
        return []
    ran = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        # another process may have migrated while we waited
        for name, sql in check_not_newer(applied(conn)):
            conn.execute(sql)
            conn.execute(f"INSERT INTO {TABLE} (name) VALUES (%s)", (name,))
            ran.append(name)
    return ran
