"""The search side of a PostgreSQL index: a :class:`SearchBackend` answered in SQL.

Dense candidates come from the index's HNSW graph (pgvector, cosine); keyword candidates are
BM25 computed in SQL from the stored term statistics, with the same analyzer, parameters,
idf ("lucene") and length normalisation as the local index, so both backends rank alike. The
pipeline around them (fusion, pseudo-relevance feedback, rerank) is the shared
:class:`~orchestrator.retrieval.search.Searcher`.

Rows are chunk keys (``orch_chunks.id``). A search runs inside :meth:`PgBackend.read`: one
read-only snapshot, so all of a query's round trips see the same committed state, and a
change another process committed is seen by the next query.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from orchestrator.errors import DataError
from orchestrator.retrieval.postgres.store import PgIndexStore, fetch_index, no_such_index
from orchestrator.retrieval.types import Chunk, Embedder, Hit

T = TypeVar("T")

#: HNSW candidate list per dense query: at least this, and twice the depth asked for
#: (pgvector returns at most ``ef_search`` rows; 1000 is its ceiling).
MIN_EF_SEARCH, MAX_EF_SEARCH = 100, 1000

_BM25 = """
WITH q(term_id, w) AS (SELECT * FROM unnest(%(terms)s::int[], %(weights)s::float8[])),
d AS (
    SELECT p.term_id, count(*)::float8 AS df FROM orch_postings p JOIN q USING (term_id)
    WHERE p.index_id = %(index)s GROUP BY p.term_id
)
SELECT p.chunk, sum(
    q.w * ln(1 + (%(n)s - d.df + 0.5) / (d.df + 0.5))
    * p.tf * (%(k1)s + 1) / (p.tf + %(k1)s * (1 - %(b)s + %(b)s * p.length / %(avgdl)s))
) AS score
FROM orch_postings p JOIN q USING (term_id) JOIN d USING (term_id)
WHERE p.index_id = %(index)s
GROUP BY p.chunk ORDER BY score DESC, p.chunk LIMIT %(depth)s
"""


def as_array(value: Any) -> np.ndarray:
    """A stored pgvector value as float32 numpy (pgvector gives ``Vector`` objects)."""
    data = value.to_numpy() if hasattr(value, "to_numpy") else value
    return np.asarray(data, dtype=np.float32)


class PgBackend:
    """Search reads over one :class:`PgIndexStore` (see the module doc)."""

    shadowed: frozenset[int] = frozenset()  # a chunk id is unique per index (a constraint)

    def __init__(self, store: PgIndexStore) -> None:
        self.store = store
        self._local = threading.local()  # the snapshot's connection, per thread

    @property
    def _conn(self) -> Any:
        return getattr(self._local, "conn", None)

    @property
    def label(self) -> str:
        return self.store.label

    @property
    def manifest(self) -> dict[str, Any]:
        return self.store.manifest

    @property
    def embedder(self) -> Embedder | None:
        return self.store.embedder

    def check_embedder(self) -> None:
        self.store.check_embedder()

    # -- one consistent view --------------------------------------------------------------------

    def read(self, work: Callable[[], T]) -> T:
        """``work()`` inside one read-only snapshot (retried once if the connection drops);
        the index's row is re-read first, so totals and settings are current."""
        missing = False

        def within(conn: Any) -> T | None:
            nonlocal missing
            row = fetch_index(conn, self.store.name)
            if row is None:
                missing = True
                return None
            if row.id != self.store.row.id:  # dropped and built again: new settings
                self.store = PgIndexStore(self.store.db, row, self.store.embedder)
            self.store._replace_row(row)
            self._local.conn = conn
            try:
                return work()
            finally:
                self._local.conn = None

        result = self.store.db.read(within)
        if missing:
            raise no_such_index(self.store.db, self.store.name)
        return result  # type: ignore[return-value]

    def _rows(self, query: Any, params: Any) -> list[Any]:
        if self._conn is not None:
            return list(self._conn.execute(query, params).fetchall())
        return self.store.db.read(lambda c: list(c.execute(query, params).fetchall()))

    # -- SearchBackend --------------------------------------------------------------------------

    def has_chunks(self) -> bool:
        return self.store.row.n_chunks > 0

    def has_vectors(self) -> bool:
        emb = self.manifest.get("embedding")
        return bool(emb and emb.get("dimension"))

    def query_terms(self, query: str) -> dict[int, float]:
        """Term id -> repeat count of the query's terms the index knows (as the local
        index: unknown terms are dropped before feedback weighs the query)."""
        if self.store.analyzer is None:
            return {}
        counts = Counter(self.store.analyzer(query))
        if not counts:
            return {}
        ids = dict(
            self._rows(
                "SELECT term, term_id FROM orch_vocab WHERE index_id = %s AND term = ANY(%s)",
                (self.store.row.id, list(counts)),
            )
        )
        return {int(ids[t]): float(n) for t, n in counts.items() if t in ids}

    def keyword_hits(self, terms: dict[int, float], depth: int) -> list[Hit]:
        row, params = self.store.row, self.store.params
        if not terms or row.n_chunks == 0:
            return []
        found = self._rows(
            _BM25,
            {
                "terms": list(terms),
                "weights": list(terms.values()),
                "index": row.id,
                "n": float(row.n_chunks),
                "avgdl": max(row.total_length / row.n_chunks, 1e-9),
                "k1": params.k1,
                "b": params.b,
                "depth": depth,
            },
        )
        return [Hit(int(c), float(s), {"bm25": float(s)}) for c, s in found if s > 0]

    def dense_hits(self, qvec: np.ndarray, depth: int) -> list[Hit]:
        from psycopg import sql

        dim, index_id = int(self.manifest["embedding"]["dimension"]), self.store.row.id
        ef = min(MAX_EF_SEARCH, max(MIN_EF_SEARCH, 2 * depth))
        vec = sql.SQL("embedding::vector({})").format(sql.Literal(dim))
        query = sql.SQL(
            "SELECT id, 1 - ({vec} <=> %(q)s::vector({dim})) FROM orch_chunks "
            "WHERE index_id = {index} ORDER BY {vec} <=> %(q)s::vector({dim}) LIMIT %(depth)s"
        ).format(vec=vec, dim=sql.Literal(dim), index=sql.Literal(index_id))
        params = {"q": np.asarray(qvec, dtype=np.float32), "depth": depth}

        def run(conn: Any) -> list[Any]:
            conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(ef)))
            return list(conn.execute(query, params).fetchall())

        found = run(self._conn) if self._conn is not None else self.store.db.read(run)
        return [Hit(int(r), float(s), {"similarity": float(s)}) for r, s in found]

    def term_counts(self, rows: Sequence[int]) -> Any:
        import scipy.sparse as sp

        found = self._rows(
            "SELECT chunk, term_id, tf FROM orch_postings WHERE index_id = %s AND chunk = ANY(%s)",
            (self.store.row.id, list(rows)),
        )
        position = {r: i for i, r in enumerate(rows)}
        shape = (len(rows), max(self.store.row.n_terms, 1))
        if not found:
            return sp.csr_matrix(shape, dtype=np.float32)
        chunk, term, tf = zip(*found, strict=True)
        return sp.csr_matrix(
            (np.asarray(tf, np.float32), ([position[c] for c in chunk], np.asarray(term))),
            shape=shape,
        )

    def vectors_of(self, rows: Sequence[int]) -> np.ndarray:
        sql = "SELECT id, embedding FROM orch_chunks WHERE id = ANY(%s)"
        found = dict(self._rows(sql, (list(rows),)))
        self._check_found(rows, found)
        return np.stack([as_array(found[r]) for r in rows])

    def chunk_keys(self, rows: Sequence[int]) -> list[str]:
        return [str(r) for r in rows]  # key <-> chunk id is one-to-one within an index

    def chunks_of(self, rows: Sequence[int]) -> list[Chunk]:
        found = {
            r[0]: Chunk(
                chunk_id=r[1], doc_id=r[2], text=r[3], source=r[4], position=r[5], metadata=r[6]
            )
            for r in self._rows(
                "SELECT id, chunk_id, doc_id, text, source, position, metadata FROM orch_chunks "
                "WHERE id = ANY(%s)",
                (list(rows),),
            )
        }
        self._check_found(rows, found)
        return [found[r] for r in rows]

    def _check_found(self, rows: Sequence[int], found: dict[Any, Any]) -> None:
        missing = [r for r in rows if r not in found]
        if missing:
            raise DataError(
                f"chunks {missing[:5]} of the {self.label} vanished during the search",
                fix="search again (another process changed the index)",
            )
