"""The persistent index: chunks plus a dense (FAISS) and/or keyword (BM25) side, on disk.

Rows are chunks in insertion order; every chunk also has a stable int64 id (the FAISS key),
so deleting rows never renumbers the vector index. Adding a document whose ``doc_id`` is
already indexed replaces its chunks (upsert); only new chunks are embedded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.errors import DataError, OptionError
from orchestrator.retrieval import storage as st
from orchestrator.retrieval.analyzer import Analyzer, AnalyzerConfig
from orchestrator.retrieval.bm25 import IDF_VARIANTS, BM25Index, BM25Params
from orchestrator.retrieval.dense import FaissVectorIndex, choose_kind, index_embedder
from orchestrator.retrieval.index_rules import (
    MODES,
    check_embedder,
    check_idf,
    check_modes,
    check_unique_ids,
    embed_in_batches,
    open_embedder,
)
from orchestrator.retrieval.ingest import Chunker, ChunkerConfig, Skipped
from orchestrator.retrieval.progress import progress_task
from orchestrator.retrieval.types import Chunk, Embedder, SourceDocument


class IndexStore:
    """Chunks, their ids, and the enabled search structures; ``save()`` persists atomically.
    An :class:`~orchestrator.retrieval.backend.IndexWriter` (the folder backend's store)."""

    #: The BM25 idf variants this backend computes: all of them (numpy).
    idf_variants: tuple[str, ...] = IDF_VARIANTS

    def __init__(
        self, directory: Path, manifest: dict[str, Any], embedder: Embedder | None
    ) -> None:
        self.directory, self.manifest, self.embedder = directory, manifest, embedder
        self.chunks: list[Chunk] = []
        self.ids = np.zeros(0, dtype=np.int64)
        self.vectors: np.ndarray | None = None
        self.dense: FaissVectorIndex | None = None
        cfg = manifest.get("bm25")
        self.bm25 = (
            BM25Index(Analyzer(AnalyzerConfig(**cfg["analyzer"])), BM25Params(**cfg["params"]))
            if cfg is not None
            else None
        )
        self.chunker = Chunker(ChunkerConfig(**manifest["chunker"]))
        #: The manifest file's identity when this store was read (see ``storage.stamp``).
        self.stamp: tuple[int, int, int] | None = None
        #: Files the ``build_index``/``update_index`` call that returned this store left out.
        self.skipped: tuple[Skipped, ...] = ()
        self._shadowed: frozenset[int] | None = None

    # -- creation and opening -----------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: str | Path,
        *,
        modes: Sequence[str] = MODES,
        embedder: Embedder | None = None,
        index_kind: str = "auto",
        analyzer: AnalyzerConfig | None = None,
        bm25: BM25Params | None = None,
        chunker: ChunkerConfig | None = None,
    ) -> IndexStore:
        """A new empty index in ``directory`` (which must be empty or absent)."""
        path = Path(directory).expanduser()
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            st.check_finished(path)
            raise OptionError(
                f"{path} exists and is not an empty directory",
                fix="pick a new --index directory, or open the existing index to add documents",
            )
        chosen = check_modes(modes)
        choose_kind(index_kind, 0)
        if "bm25" in chosen:
            check_idf(bm25 or BM25Params(), cls.idf_variants, "folder")
        dense = "dense" in chosen
        embedder = (embedder or index_embedder()) if dense else None
        manifest: dict[str, Any] = {
            "format": st.FORMAT_NAME,
            "format_version": st.FORMAT_VERSION,
            "generation": 0,
            "next_id": 0,
            "modes": list(chosen),
            "embedding": {"model": embedder.name, "dimension": None, "index_kind": index_kind}
            if embedder is not None
            else None,
            "bm25": {
                "analyzer": (analyzer or AnalyzerConfig()).to_json(),
                "params": (bm25 or BM25Params()).to_json(),
            }
            if "bm25" in chosen
            else None,
            "chunker": vars(chunker or ChunkerConfig()),
            "files": {},
        }
        path.mkdir(parents=True, exist_ok=True)
        return cls(path, manifest, embedder)

    @classmethod
    def open(
        cls, directory: str | Path, *, embedder: Embedder | None = None, verify: bool = True
    ) -> IndexStore:
        """Reopen an index; a corrupted or mismatched one is a :class:`DataError` with the fix."""
        path = Path(directory).expanduser()
        stamp = st.stamp(path)
        manifest = st.read_manifest(path)
        store = cls(path, manifest, open_embedder(manifest, embedder, str(path), path))
        store.stamp = stamp
        store._load(verify)
        return store

    def _load(self, verify: bool) -> None:
        files, d = self.manifest["files"], self.directory
        if not files:
            return
        rows = st.read_jsonl_rows(st.verified(d, files["chunks"], verify))
        self.chunks = [Chunk.from_json(r) for r in rows]
        self.ids = st.load_npy(st.verified(d, files["ids"], verify))
        if "vectors" in files:
            self.vectors = np.array(st.load_npy(st.verified(d, files["vectors"], verify)))
            kind = self.manifest["embedding"]["resolved_kind"]
            self.dense = FaissVectorIndex.read(st.verified(d, files["dense"], verify), kind)
        if "bm25" in files and self.bm25 is not None:
            vocab = st.read_json(st.verified(d, files["vocab"], verify))
            arrays = st.load_npz(st.verified(d, files["bm25"], verify))
            self.bm25 = BM25Index.from_arrays(arrays, vocab, self.bm25.analyzer, self.bm25.params)
        self._check_consistent()

    def _check_consistent(self) -> None:
        n = len(self.chunks)
        sizes = {"chunks": n, "ids": len(self.ids)}
        if self.vectors is not None and self.dense is not None:
            sizes |= {"vectors": len(self.vectors), "faiss": len(self.dense)}
            dim = self.manifest["embedding"]["dimension"]
            if self.vectors.shape[1] != dim or self.dense.dimension != dim:
                raise DataError(
                    f"{self.directory}: vectors do not have dimension {dim}", fix=st.REBUILD_FIX
                )
        if self.bm25 is not None and "bm25" in self.manifest["files"]:
            sizes["bm25"] = len(self.bm25)
        if len(set(sizes.values())) > 1:
            raise DataError(
                f"{self.directory} is inconsistent: row counts {sizes}", fix=st.REBUILD_FIX
            )

    @property
    def label(self) -> str:
        return str(self.directory)

    # -- editing ------------------------------------------------------------------------------

    @property
    def doc_ids(self) -> list[str]:
        return list(dict.fromkeys(c.doc_id for c in self.chunks))

    def add_documents(self, docs: Sequence[SourceDocument], progress: bool = False) -> int:
        """Chunk, embed and index ``docs`` (replacing documents with the same id); new chunks.

        The same document twice in ``docs`` is stored once; two *different* documents with
        one id are a :class:`DataError` (which one was meant is unknowable). A chunk whose
        ``chunk_id`` is already stored is never added again."""
        check_unique_ids(docs)
        if docs:
            self.check_embedder()
        self.delete_documents({d.doc_id for d in docs})
        new = self.chunker.split_new(docs, {c.chunk_id for c in self.chunks}, progress)
        return self._append(new, progress)

    def _append(self, new: list[Chunk], progress: bool) -> int:
        """Embed and index ``new`` chunks as given (callers deduplicate)."""
        if not new:
            return 0
        start = int(self.manifest["next_id"])
        ids = np.arange(start, start + len(new), dtype=np.int64)
        if self.embedder is not None:
            self._add_vectors(ids, self._embed([c.text for c in new], progress))
        if self.bm25 is not None:
            with progress_task("keyword index", None, progress and len(new) > 1000) as advance:
                self.bm25.add([c.text for c in new])
                advance(1)
        self.chunks.extend(new)
        self.ids = np.concatenate([self.ids, ids])
        self.manifest["next_id"] = start + len(new)
        self._shadowed = None
        return len(new)

    def check_embedder(self) -> None:
        """Raise now if the index's embedding model may not be loaded, before any work."""
        check_embedder(self.embedder)

    def update(
        self,
        add: Sequence[SourceDocument] = (),
        delete: Sequence[str] = (),
        *,
        missing_ok: bool = True,
        progress: bool = False,
    ) -> tuple[int, int]:
        """Delete documents by id, add (replace) ``add``, and save: (added, removed chunks)."""
        removed = self.delete_documents(delete, missing_ok=missing_ok)
        added = self.add_documents(add, progress=progress)
        self.save()
        return added, removed

    def counts(self) -> dict[str, int]:
        """Documents and chunks held."""
        return {"documents": len(self.doc_ids), "chunks": len(self.chunks)}

    def drop(self) -> None:
        """Remove the index: its manifest first (readers then see no index), then its part
        files, and the folder if nothing else is in it. A folder without an index is left."""
        d = self.directory
        if not (d / st.MANIFEST).exists():
            return
        with st.write_lock(d):
            (d / st.MANIFEST).unlink()
            st.remove_stale(d, set())
        with contextlib.suppress(OSError):
            (d / st.LOCK_FILE).unlink()
            d.rmdir()

    @property
    def shadowed(self) -> frozenset[int]:
        """Rows repeating an earlier row's ``chunk_id`` (only in indexes written before
        duplicates were refused); search skips them so no chunk is returned twice."""
        if self._shadowed is None:
            seen: set[str] = set()
            rows = set()
            for row, chunk in enumerate(self.chunks):
                if chunk.chunk_id in seen:
                    rows.add(row)
                seen.add(chunk.chunk_id)
            self._shadowed = frozenset(rows)
        return self._shadowed

    def _embed(self, texts: list[str], progress: bool) -> np.ndarray:
        assert self.embedder is not None
        return embed_in_batches(self.embedder, texts, progress)

    def _add_vectors(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        emb = self.manifest["embedding"]
        if emb["dimension"] is not None and vectors.shape[1] != emb["dimension"]:
            raise DataError(
                f"the embedder gives {vectors.shape[1]}-dim vectors; the index holds "
                f"{emb['dimension']}-dim ones",
                fix="use the embedding model the index was built with, or rebuild it",
            )
        emb["dimension"] = int(vectors.shape[1])
        self.vectors = vectors if self.vectors is None else np.concatenate([self.vectors, vectors])
        if self.dense is None:
            emb["resolved_kind"] = choose_kind(emb["index_kind"], len(self.vectors))
            self.dense = FaissVectorIndex.build(emb["resolved_kind"], ids, vectors)
        else:
            self.dense.add(ids, vectors)

    def delete_documents(
        self, doc_ids: set[str] | Sequence[str], *, missing_ok: bool = True
    ) -> int:
        """Remove every chunk of the given documents; returns how many chunks went. With
        ``missing_ok=False`` an id the index does not hold is a :class:`DataError` naming it
        (a typo must not look like a successful delete)."""
        wanted = set(doc_ids)
        if not missing_ok:
            self._check_known(wanted)
        rows = np.array([i for i, c in enumerate(self.chunks) if c.doc_id in wanted], np.int64)
        if not rows.size:
            return 0
        keep = np.ones(len(self.chunks), dtype=bool)
        keep[rows] = False
        if self.dense is not None and self.vectors is not None:
            self.dense.remove(self.ids[rows])
            self.vectors = self.vectors[keep]
        if self.bm25 is not None:
            self.bm25.remove_rows(rows)
        self.chunks = [c for c, k in zip(self.chunks, keep, strict=True) if k]
        self.ids = self.ids[keep]
        self._shadowed = None
        return int(rows.size)

    def _check_known(self, wanted: set[str]) -> None:
        import difflib

        known = set(self.doc_ids)
        unknown = sorted(wanted - known)
        if not unknown:
            return
        close = difflib.get_close_matches(unknown[0], sorted(known), n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise DataError(
            f"{self.directory} holds no document with the id {', '.join(map(repr, unknown))}{hint}",
            fix="use the id the document was indexed under: a file's path relative to the "
            "folder you indexed (or as you passed it), or a JSONL line's _id/id",
        )

    def rebuild_keyword(
        self, analyzer: AnalyzerConfig | None = None, params: BM25Params | None = None
    ) -> None:
        """Rebuild the BM25 side with another analyzer or parameters (no re-embedding)."""
        if self.bm25 is None:
            raise OptionError(
                f"{self.directory} has no bm25 side",
                fix="rebuild the index with --modes dense,bm25",
            )
        config = analyzer or self.bm25.analyzer.config
        bm25 = BM25Index(Analyzer(config), params or self.bm25.params)
        bm25.add([c.text for c in self.chunks])
        self.bm25 = bm25
        self.manifest["bm25"] = {"analyzer": config.to_json(), "params": bm25.params.to_json()}

    # -- persistence --------------------------------------------------------------------------

    def save(self) -> None:
        """Write a new generation of every part, then swap the manifest (crash-safe). One
        writer at a time; a save over changes another process saved since this store was
        opened is refused rather than silently undoing them."""
        with st.write_lock(self.directory):
            self._check_unchanged_on_disk()
            self._write_generation()

    def _check_unchanged_on_disk(self) -> None:
        path = self.directory / st.MANIFEST
        if not path.exists():
            return
        on_disk = int(st.read_json(path).get("generation", 0))
        if on_disk != int(self.manifest["generation"]):
            raise DataError(
                f"the index {self.directory} changed since it was opened (generation {on_disk} "
                f"on disk, {self.manifest['generation']} here): another process saved it",
                fix="open the index again and repeat this change",
            )

    def _write_generation(self) -> None:
        gen = int(self.manifest["generation"]) + 1
        d, files = self.directory, {}

        def put(key: str, name: str, write: Any, payload: Any) -> None:
            write(d / name, payload)
            files[key] = {"name": name, "sha256": st.sha256_file(d / name)}

        put("chunks", f"chunks.{gen}.jsonl", st.write_jsonl, [c.to_json() for c in self.chunks])
        put("ids", f"ids.{gen}.npy", st.write_npy, self.ids)
        if self.dense is not None and self.vectors is not None:
            put("vectors", f"vectors.{gen}.npy", st.write_npy, self.vectors)
            put(
                "dense",
                f"dense.{gen}.faiss",
                lambda p, idx: st.atomic_write(p, idx.write),
                self.dense,
            )
        if self.bm25 is not None and len(self.chunks):
            put("bm25", f"bm25.{gen}.npz", st.write_npz, self.bm25.arrays())
            put("vocab", f"vocab.{gen}.json", st.write_json, self.bm25.vocab)
        self.manifest.update(
            generation=gen,
            files=files,
            counts={"documents": len(self.doc_ids), "chunks": len(self.chunks)},
        )
        st.write_json(d / st.MANIFEST, self.manifest)
        self.stamp = st.stamp(d)
        st.remove_stale(d, {f["name"] for f in files.values()})
