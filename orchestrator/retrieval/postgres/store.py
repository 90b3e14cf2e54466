"""An index inside PostgreSQL: chunks, metadata, vectors and BM25 term statistics, by name.

One row of ``orch_indexes`` per index (its manifest: modes, embedding model and dimension,
analyzer, BM25 parameters, chunker; and the running totals BM25 needs); its chunks (with a
pgvector embedding) in ``orch_chunks``; its vocabulary (term ids in first-seen order, as the
local index numbers its columns) in ``orch_vocab``; term frequencies in ``orch_postings``.
Each index gets its own partial HNSW index (cosine) on its vectors, so several indexes of any
dimensions share the tables.

Every change is one transaction: chunking and embedding happen first, outside it; then the
index row is locked (writers to one index queue), old chunks go, new ones are copied in, and
the totals move, all committed together or not at all. Adds replace documents by id and
deletes remove by id, so repeating one after a lost connection is safe and is retried once.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.errors import DataError
from orchestrator.retrieval.analyzer import Analyzer, AnalyzerConfig
from orchestrator.retrieval.bm25 import BM25Params
from orchestrator.retrieval.index_rules import (
    MODES,
    check_embedder,
    check_idf,
    check_modes,
    check_unique_ids,
    open_embedder,
)
from orchestrator.retrieval.ingest import Chunker, ChunkerConfig, Skipped
from orchestrator.retrieval.location import check_name
from orchestrator.retrieval.postgres import writes
from orchestrator.retrieval.postgres.connection import Database, database
from orchestrator.retrieval.types import Chunk, Embedder, SourceDocument

FORMAT_NAME = "orchestrator-index-postgres"
_COLUMNS = "id, name, manifest, n_chunks, total_length, n_terms, generation"


@dataclass(frozen=True)
class IndexRow:
    """An index's row in ``orch_indexes`` as of one transaction."""

    id: int
    name: str
    manifest: dict[str, Any]
    n_chunks: int
    total_length: int
    n_terms: int
    generation: int


def fetch_index(conn: Any, name: str, *, lock: bool = False) -> IndexRow | None:
    sql = f"SELECT {_COLUMNS} FROM orch_indexes WHERE name = %s" + (" FOR UPDATE" if lock else "")
    row = conn.execute(sql, (name,)).fetchone()
    return IndexRow(*row) if row is not None else None


def index_names(db: Database) -> list[str]:
    """Names of the indexes in the database, sorted."""
    return db.read(lambda c: [r[0] for r in c.execute("SELECT name FROM orch_indexes ORDER BY 1")])


def no_such_index(db: Database, name: str) -> DataError:
    known = index_names(db)
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    return DataError(
        f"the database {db.label} holds no index named {name!r}{hint}; it holds "
        + (", ".join(map(repr, known)) if known else "none"),
        fix=f"build it: orchestrator index PATH... --index {name} --backend postgres "
        "--dsn DSN (Python: build_index(paths, IndexSpec.of(NAME, DSN)))",
    )


@dataclass
class Batch:
    """Chunks ready to write: their vectors (or ``None``) and term counts in first-seen order."""

    chunks: list[Chunk]
    vectors: np.ndarray | None
    terms: list[Counter[str]]


class PgIndexStore:
    """A named index in a PostgreSQL database (see the module doc); every method commits.
    An :class:`~orchestrator.retrieval.backend.IndexWriter` (the postgres backend's store)."""

    #: The BM25 idf variants this backend computes in SQL (``search._BM25``).
    idf_variants: tuple[str, ...] = ("lucene",)

    def __init__(self, db: Database, row: IndexRow, embedder: Embedder | None) -> None:
        self.db, self.row, self.embedder = db, row, embedder
        self.name, self.manifest = row.name, row.manifest
        cfg = self.manifest.get("bm25")
        self.analyzer = Analyzer(AnalyzerConfig(**cfg["analyzer"])) if cfg else None
        self.params = BM25Params(**cfg["params"]) if cfg else BM25Params()
        self.chunker = Chunker(ChunkerConfig(**self.manifest["chunker"]))
        #: Files the ``build_index``/``update_index`` call that returned this store left out.
        self.skipped: tuple[Skipped, ...] = ()

    @property
    def label(self) -> str:
        return f"index {self.name!r} in {self.db.label}"

    # -- creation and opening -------------------------------------------------------------------

    @classmethod
    def new(
        cls,
        dsn: str,
        name: str,
        *,
        modes: Sequence[str] = MODES,
        embedder: Embedder | None = None,
        analyzer: AnalyzerConfig | None = None,
        bm25: BM25Params | None = None,
        chunker: ChunkerConfig | None = None,
    ) -> PgIndexStore:
        """An index not yet in the database: :meth:`build` writes it, all at once."""
        from orchestrator.retrieval.dense import index_embedder

        chosen = check_modes(modes)
        params = bm25 or BM25Params()
        if "bm25" in chosen:
            check_idf(params, cls.idf_variants, "postgres")
        embedder = (embedder or index_embedder()) if "dense" in chosen else None
        manifest: dict[str, Any] = {
            "format": FORMAT_NAME,
            "modes": list(chosen),
            "embedding": {"model": embedder.name, "dimension": None} if embedder else None,
            "bm25": {
                "analyzer": (analyzer or AnalyzerConfig()).to_json(),
                "params": params.to_json(),
            }
            if "bm25" in chosen
            else None,
            "chunker": vars(chunker or ChunkerConfig()),
        }
        row = IndexRow(0, check_name(name), manifest, 0, 0, 0, 0)
        return cls(database(dsn), row, embedder)

    @classmethod
    def open(cls, dsn: str, name: str, *, embedder: Embedder | None = None) -> PgIndexStore:
        """The index ``name`` in the database at ``dsn``; a missing one is a DataError."""
        db = database(dsn)
        row = db.read(lambda c: fetch_index(c, check_name(name)))
        if row is None:
            raise no_such_index(db, name)
        where = f"the index {name!r} in {db.label}"
        return cls(db, row, open_embedder(row.manifest, embedder, where, Path(name)))

    def refresh(self) -> PgIndexStore:
        """This index as now committed (another process may have changed it)."""
        return type(self).open(self.db.dsn, self.name, embedder=self.embedder)

    # -- editing ----------------------------------------------------------------------------

    def build(self, docs: Sequence[SourceDocument], progress: bool = False) -> int:
        """Create the index with ``docs`` in one transaction; a name in use is a DataError.
        Not retried (creating is not idempotent); a failure leaves no index behind."""
        check_unique_ids(docs)
        batch = self._prepare(docs, {}, progress)

        def work(conn: Any) -> IndexRow:
            if fetch_index(conn, self.name) is not None:
                raise DataError(
                    f"the database {self.db.label} already holds an index named {self.name!r}",
                    fix="add to it with --update, pick another --index NAME, or drop it "
                    "(Python: drop_index(IndexSpec.of(NAME, DSN)))",
                )
            index_id = writes.insert_index(conn, self.name, self.manifest)
            return writes.apply(conn, index_id, batch)

        self._replace_row(self.db.write(work, idempotent=False))
        return len(batch.chunks)

    def update(
        self,
        add: Sequence[SourceDocument] = (),
        delete: Sequence[str] = (),
        *,
        missing_ok: bool = True,
        progress: bool = False,
    ) -> tuple[int, int]:
        """Delete documents by id and add (replace) ``add`` in one transaction: (added chunks,
        removed chunks). With ``missing_ok=False`` an unknown id in ``delete`` is an error
        naming it and nothing changes."""
        check_unique_ids(add)
        if not add and not delete:
            return 0, 0
        if add:
            self.check_embedder()
        reuse = self._stored_vectors(add)
        batch = self._prepare(add, reuse, progress)
        wanted = set(delete)

        def work(conn: Any) -> tuple[IndexRow, int]:
            row = fetch_index(conn, self.name, lock=True)
            if row is None:
                raise no_such_index(self.db, self.name)
            if not missing_ok:
                writes.check_known(conn, row.id, wanted, self.label)
            removed = writes.delete_docs(conn, row.id, wanted)  # counted, as locally
            writes.delete_docs(conn, row.id, {d.doc_id for d in add} - wanted)  # replaced
            return writes.apply(conn, row.id, batch), removed

        row, removed = self.db.write(work, idempotent=True)
        self._replace_row(row)
        return len(batch.chunks), removed

    def add_documents(self, docs: Sequence[SourceDocument], progress: bool = False) -> int:
        """Add (replace by id) ``docs``; the number of chunks written."""
        return self.update(add=docs, progress=progress)[0]

    def delete_documents(
        self, doc_ids: Sequence[str] | set[str], *, missing_ok: bool = True
    ) -> int:
        """Remove every chunk of the given documents; the number of chunks removed."""
        return self.update(delete=list(doc_ids), missing_ok=missing_ok)[1]

    def drop(self) -> None:
        """Remove the index and everything in it (one transaction)."""

        def work(conn: Any) -> None:
            row = fetch_index(conn, self.name, lock=True)
            if row is not None:
                writes.drop(conn, row.id)

        self.db.write(work, idempotent=True)

    def save(self) -> None:
        """Nothing to do: every change is committed when its method returns (kept so code
        written for the local index works unchanged)."""

    def check_embedder(self) -> None:
        """Raise now if the index's embedding model may not be loaded, before any work."""
        check_embedder(self.embedder)

    # -- reading ------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Documents and chunks now committed."""
        sql = "SELECT count(DISTINCT doc_id), count(*) FROM orch_chunks WHERE index_id = %s"
        docs, chunks = self.db.read(lambda c: c.execute(sql, (self.row.id,)).fetchone())
        return {"documents": int(docs), "chunks": int(chunks)}

    @property
    def doc_ids(self) -> list[str]:
        sql = "SELECT DISTINCT doc_id FROM orch_chunks WHERE index_id = %s ORDER BY 1"
        return self.db.read(lambda c: [r[0] for r in c.execute(sql, (self.row.id,))])

    # -- helpers ------------------------------------------------------------------------------

    def _replace_row(self, row: IndexRow) -> None:
        self.row, self.manifest = row, row.manifest

    def _stored_vectors(self, docs: Sequence[SourceDocument]) -> dict[str, np.ndarray]:
        """Vectors already stored for chunks of ``docs`` (a chunk id is a hash of its document
        id and text, so the same id means the same vector): a re-added file is not re-embedded
        except for the chunks that changed."""
        if not docs or self.embedder is None or not self.row.id:
            return {}
        ids = [c.chunk_id for d in docs for c in self.chunker.split(d)]
        sql = (
            "SELECT chunk_id, embedding FROM orch_chunks WHERE index_id = %s "
            "AND chunk_id = ANY(%s) AND embedding IS NOT NULL"
        )
        rows = self.db.read(lambda c: c.execute(sql, (self.row.id, ids)).fetchall())
        from orchestrator.retrieval.postgres.search import as_array

        return {cid: as_array(vec) for cid, vec in rows}

    def _prepare(
        self, docs: Sequence[SourceDocument], reuse: dict[str, np.ndarray], progress: bool
    ) -> Batch:
        chunks = self.chunker.split_new(docs, set(), progress)
        vectors = self._vectors(chunks, reuse, progress) if self.embedder is not None else None
        analyzer = self.analyzer
        terms = [Counter(analyzer(c.text)) if analyzer else Counter() for c in chunks]
        return Batch(chunks, vectors, terms)

    def _vectors(
        self, chunks: list[Chunk], reuse: dict[str, np.ndarray], progress: bool
    ) -> np.ndarray:
        from orchestrator.retrieval.index_rules import embed_in_batches

        assert self.embedder is not None
        todo = [c.text for c in chunks if c.chunk_id not in reuse]
        fresh: Iterator[np.ndarray] = iter(embed_in_batches(self.embedder, todo, progress))
        rows = [reuse[c.chunk_id] if c.chunk_id in reuse else next(fresh) for c in chunks]
        dim = self.manifest["embedding"]["dimension"] or (len(rows[0]) if rows else 0)
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
