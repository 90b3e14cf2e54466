"""The SQL of one write transaction (called by :mod:`.store` inside ``Database.write``).

Rows are bulk-copied in binary (``COPY ... FROM STDIN``), chunk keys are drawn from the
sequence in one call and assigned in insertion order (so ties rank by insertion, as in the
local index), and the HNSW index of an index's vectors is created after its first bulk load
(building the graph once is much faster than growing it row by row).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.errors import DataError

if TYPE_CHECKING:
    from orchestrator.retrieval.postgres.store import Batch, IndexRow

#: Memory for building an HNSW graph in one go (PostgreSQL's default 64 MB spills at ~40k
#: 384-dim vectors and builds several times slower).
HNSW_BUILD_MEMORY = "512MB"
#: Rows added at once (or a tenth of the index, if more) after which tables are re-analysed.
ANALYZE_AT = 1000
_CHUNK_TYPES = ["int8", "int4", "text", "text", "text", "text", "int4", "jsonb", "int4", "vector"]


def hnsw_name(index_id: int) -> Any:
    """The name of index ``index_id``'s HNSW index (a quoted identifier)."""
    from psycopg import sql

    return sql.Identifier(f"orch_chunks_hnsw_{int(index_id)}")


def insert_index(conn: Any, name: str, manifest: dict[str, Any]) -> int:
    from psycopg.types.json import Jsonb

    sql_text = "INSERT INTO orch_indexes (name, manifest) VALUES (%s, %s) RETURNING id"
    return int(conn.execute(sql_text, (name, Jsonb(manifest))).fetchone()[0])


def check_known(conn: Any, index_id: int, wanted: set[str], label: str) -> None:
    """An id to delete that the index does not hold is an error naming it (a typo must not
    look like a successful delete)."""
    if not wanted:
        return
    found = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT doc_id FROM orch_chunks WHERE index_id = %s AND doc_id = ANY(%s)",
            (index_id, sorted(wanted)),
        )
    }
    unknown = sorted(wanted - found)
    if unknown:
        raise DataError(
            f"the {label} holds no document with the id {', '.join(map(repr, unknown))}",
            fix="use the id the document was indexed under: a file's path relative to the "
            "folder you indexed (or as you passed it), or a JSONL line's _id/id",
        )


def delete_docs(conn: Any, index_id: int, doc_ids: set[str]) -> int:
    """Remove every chunk (and its postings) of ``doc_ids``; the totals follow. Returns the
    number of chunks removed."""
    if not doc_ids:
        return 0
    gone = conn.execute(
        "DELETE FROM orch_chunks WHERE index_id = %s AND doc_id = ANY(%s) RETURNING id, length",
        (index_id, sorted(doc_ids)),
    ).fetchall()
    if not gone:
        return 0
    conn.execute(
        "DELETE FROM orch_postings WHERE index_id = %s AND chunk = ANY(%s)",
        (index_id, [r[0] for r in gone]),
    )
    conn.execute(
        "UPDATE orch_indexes SET n_chunks = n_chunks - %s, total_length = total_length - %s "
        "WHERE id = %s",
        (len(gone), sum(r[1] for r in gone), index_id),
    )
    return len(gone)


def apply(conn: Any, index_id: int, batch: Batch) -> IndexRow:
    """Append ``batch`` to the index (the caller removed replaced documents first) and
    return the index's new row."""
    from psycopg import sql
    from psycopg.types.json import Jsonb

    from orchestrator.retrieval.postgres.store import IndexRow

    row = IndexRow(
        *conn.execute(
            "SELECT id, name, manifest, n_chunks, total_length, n_terms, generation "
            "FROM orch_indexes WHERE id = %s FOR UPDATE",
            (index_id,),
        ).fetchone()
    )
    stored = dict(row.manifest)
    dim = _check_dimension(stored, batch)
    if batch.chunks:
        ids = _chunk_keys(conn, len(batch.chunks))
        _copy_chunks(conn, index_id, ids, batch)
        n_terms = _copy_postings(conn, index_id, ids, batch, row.n_terms)
    else:
        n_terms = row.n_terms
    if dim is not None and not stored["embedding"]["dimension"]:
        stored["embedding"] = {**stored["embedding"], "dimension": dim}
        memory = sql.Literal(HNSW_BUILD_MEMORY)
        conn.execute(sql.SQL("SET LOCAL maintenance_work_mem = {}").format(memory))
        conn.execute(
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS {name} ON orch_chunks USING hnsw "
                "((embedding::vector({dim})) vector_cosine_ops) WHERE index_id = {id}"
            ).format(name=hnsw_name(index_id), dim=sql.Literal(dim), id=sql.Literal(index_id))
        )
    if len(batch.chunks) >= max(ANALYZE_AT, row.n_chunks // 10):
        # fresh statistics, so the planner sees the new rows: without them it estimates a
        # handful of chunks per index and sorts them all instead of walking the HNSW graph
        conn.execute("ANALYZE orch_chunks")
        conn.execute("ANALYZE orch_postings")
    length = sum(sum(t.values()) for t in batch.terms)
    new = conn.execute(
        "UPDATE orch_indexes SET n_chunks = n_chunks + %s, total_length = total_length + %s, "
        "n_terms = %s, generation = generation + 1, manifest = %s, updated_at = now() "
        "WHERE id = %s RETURNING id, name, manifest, n_chunks, total_length, n_terms, generation",
        (len(batch.chunks), length, n_terms, Jsonb(stored), index_id),
    ).fetchone()
    return IndexRow(*new)


def _check_dimension(manifest: dict[str, Any], batch: Batch) -> int | None:
    if batch.vectors is None or not len(batch.vectors):
        return None
    dim = int(batch.vectors.shape[1])
    known = manifest["embedding"]["dimension"]
    if known and known != dim:
        raise DataError(
            f"the embedder gives {dim}-dim vectors; the index holds {known}-dim ones",
            fix="use the embedding model the index was built with, or rebuild it",
        )
    return dim


def _chunk_keys(conn: Any, n: int) -> list[int]:
    """``n`` fresh chunk keys, ascending (assigned in insertion order)."""
    rows = conn.execute(
        "SELECT nextval('orch_chunks_id_seq') FROM generate_series(1, %s)", (n,)
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def _copy_chunks(conn: Any, index_id: int, ids: list[int], batch: Batch) -> None:
    from psycopg.types.json import Jsonb

    vectors = batch.vectors
    columns = "id, index_id, chunk_id, doc_id, text, source, position, metadata, length, embedding"
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY orch_chunks ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy,
    ):
        copy.set_types(_CHUNK_TYPES)
        for n, (key, chunk, terms) in enumerate(zip(ids, batch.chunks, batch.terms, strict=True)):
            copy.write_row(
                (
                    key,
                    index_id,
                    chunk.chunk_id,
                    chunk.doc_id,
                    chunk.text,
                    chunk.source,
                    chunk.position,
                    Jsonb(chunk.metadata),
                    sum(terms.values()),
                    None if vectors is None else vectors[n],
                )
            )


def _copy_postings(conn: Any, index_id: int, ids: list[int], batch: Batch, n_terms: int) -> int:
    """Vocabulary ids for new terms (first-seen order, as the local index numbers columns),
    then the postings. Returns the vocabulary size."""
    order = list(dict.fromkeys(t for terms in batch.terms for t in terms))
    if not order:
        return n_terms
    vocab = dict(
        conn.execute(
            "SELECT term, term_id FROM orch_vocab WHERE index_id = %s AND term = ANY(%s)",
            (index_id, order),
        ).fetchall()
    )
    new = [t for t in order if t not in vocab]
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY orch_vocab (index_id, term, term_id) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(["int4", "text", "int4"])
        for offset, term in enumerate(new):
            vocab[term] = n_terms + offset
            copy.write_row((index_id, term, n_terms + offset))
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY orch_postings (index_id, term_id, chunk, tf, length) "
            "FROM STDIN WITH (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(["int4", "int4", "int8", "float4", "int4"])
        for key, terms in zip(ids, batch.terms, strict=True):
            length = sum(terms.values())
            for term, tf in terms.items():
                copy.write_row((index_id, vocab[term], key, float(tf), length))
    return n_terms + len(new)


def drop(conn: Any, index_id: int) -> None:
    """Remove an index: its postings, HNSW index, then its row (chunks and vocabulary
    cascade)."""
    from psycopg import sql

    conn.execute("DELETE FROM orch_postings WHERE index_id = %s", (index_id,))
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(hnsw_name(index_id)))
    conn.execute("DELETE FROM orch_indexes WHERE id = %s", (index_id,))
