"""The query pipeline over an :class:`IndexStore`: dense, BM25, fusion, feedback, rerank.

Stages, in order (each can be switched off; defaults measured on Cranfield, see
docs/benchmarks.md):

1. candidates: BM25 top ``depth`` and/or FAISS top ``depth`` (cosine); ``depth`` grows to
   ``k`` when more results are asked for.
2. fusion (hybrid): ``weighted`` (min-max, dense weight 0.5) or ``rrf``.
3. pseudo-relevance feedback (``feedback_docs > 0``): the top first-pass chunks expand the BM25
   query with their strongest terms (RM3-style) and move the query vector towards their mean
   (Rocchio), then stage 1-2 run again with the expanded queries. No extra model call.
4. rerank (optional): a cross-encoder or the local LLM rescores the top ``rerank_depth``;
   their score becomes the reranker's, and chunks below them get scores under the lowest
   reranked one (``floor - rank``), so scores always fall with rank.

Every score is "higher is better". Hits carry their parts: ``similarity`` (the cosine of the
chunk to the query, comparable across queries, used for "nothing relevant" thresholds),
``bm25`` (raw BM25 when the chunk was a keyword candidate) and ``fused``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from orchestrator.errors import DataError, OptionError, unknown_option
from orchestrator.retrieval.backend import SearchBackend, as_backend
from orchestrator.retrieval.fusion import get_fusion
from orchestrator.retrieval.index_rules import SIDES
from orchestrator.retrieval.types import Hit, Reranker

SEARCH_MODES = ("dense", "bm25", "hybrid")


@dataclass(frozen=True)
class SearchConfig:
    """Query-time settings (closed: unknown names are rejected by :func:`search_config`)."""

    mode: str = "hybrid"
    fusion: str = "weighted"
    dense_weight: float = 0.5
    depth: int = 100
    feedback_docs: int = 5
    feedback_terms: int = 10
    feedback_query_weight: float = 0.5
    feedback_vector_weight: float = 1.0
    rerank_depth: int = 20

    def __post_init__(self) -> None:
        if self.mode not in SEARCH_MODES:
            raise unknown_option(self.mode, SEARCH_MODES, where="search mode")
        get_fusion(self.fusion)
        if not 0.0 <= self.dense_weight <= 1.0 or not 0.0 <= self.feedback_query_weight <= 1.0:
            raise OptionError("dense_weight and feedback_query_weight must be in [0, 1]")
        if self.depth < 1 or self.feedback_docs < 0 or self.rerank_depth < 1:
            raise OptionError("depth and rerank_depth must be >= 1, feedback_docs >= 0")


def search_config(**options: Any) -> SearchConfig:
    """A :class:`SearchConfig` from keyword options, rejecting misspelled ones with a hint."""
    known = SearchConfig.__dataclass_fields__
    for name in options:
        if name not in known:
            raise unknown_option(name, known, where="search options")
    return replace(SearchConfig(), **options)


class Searcher:
    """Runs :class:`SearchConfig` pipelines against one open index: a local
    :class:`~orchestrator.retrieval.index.IndexStore` or any
    :class:`~orchestrator.retrieval.backend.SearchBackend` (PostgreSQL), with the same rules."""

    def __init__(self, store: Any, config: SearchConfig, reranker: Reranker | None = None):
        self.store, self.config, self.reranker = store, config, reranker
        self.backend: SearchBackend = as_backend(store)
        modes = self.backend.manifest["modes"]
        missing = [m for m in SIDES[config.mode] if m not in modes]
        if missing:
            raise OptionError(
                f"search mode {config.mode!r} needs the {', '.join(missing)} side, but "
                f"{self.backend.label} was built with modes {modes}",
                fix=f"use --mode {modes[0]}, or rebuild with --modes dense,bm25",
            )
        if self.uses_dense:
            self.backend.check_embedder()

    @property
    def uses_dense(self) -> bool:
        return self.config.mode in ("dense", "hybrid")

    @property
    def uses_keyword(self) -> bool:
        return self.config.mode != "dense" and "bm25" in self.backend.manifest["modes"]

    def search(
        self, queries: Sequence[str], k: int, *, dense_texts: Sequence[str] | None = None
    ) -> list[list[Hit]]:
        """Top ``k`` hits per query, best first. ``dense_texts`` (one per query) are embedded
        as the dense queries instead of the queries themselves (HyDE: a hypothetical answer's
        vector, the question's words); keyword search, feedback and rerank keep the query."""
        if dense_texts is not None and len(dense_texts) != len(queries):
            raise OptionError(
                f"dense_texts has {len(dense_texts)} texts for {len(queries)} queries",
                fix="give one dense text per query",
            )
        if k < 1:
            raise OptionError(f"k must be >= 1, got {k}")
        blank = [i for i, q in enumerate(queries) if not q.strip()]
        if blank:
            raise OptionError(
                f"query {blank[0] + 1} of {len(queries)} is empty", fix="search for some words"
            )
        if not queries or not self.backend.has_chunks():
            return [[] for _ in queries]
        dense = self.uses_dense and self.backend.has_vectors()
        vectors = self._embed(queries if dense_texts is None else dense_texts) if dense else None
        results = []
        for i, query in enumerate(queries):
            qvec = None if vectors is None else vectors[i]
            hits = self._one(query, qvec, max(k, self.config.rerank_depth if self.reranker else k))
            results.append(hits[:k])
        return results

    def _embed(self, queries: Sequence[str]) -> np.ndarray:
        embedder = self.backend.embedder
        assert embedder is not None
        vectors = embedder.embed_documents(list(queries))
        dim = self.backend.manifest["embedding"]["dimension"]
        if vectors.shape[1] != dim:
            raise DataError(
                f"the query embedder gives {vectors.shape[1]}-dim vectors; the index holds "
                f"{dim}-dim ones",
                fix="query with the embedding model the index was built with",
            )
        return vectors

    def _one(self, query: str, qvec: np.ndarray | None, k: int) -> list[Hit]:
        cfg = self.config
        terms = self.backend.query_terms(query) if self.uses_keyword else {}
        depth = max(cfg.depth, k)
        hits = self._pass(terms, qvec, depth)
        if cfg.feedback_docs and hits:
            moved_terms, moved = self._feedback(hits[: cfg.feedback_docs], terms, qvec)
            hits = self._pass(moved_terms, moved, depth)
        hits = self._distinct(hits)
        if self.reranker is not None and hits:
            hits = self._rerank(query, hits)
        self._set_similarity(hits[:k], qvec)
        return hits[:k]

    def _pass(self, terms: dict[int, float], qvec: np.ndarray | None, depth: int) -> list[Hit]:
        """One retrieval pass: each side's top ``depth`` candidates, fused in hybrid mode."""
        cfg, shadowed = self.config, self.backend.shadowed
        depth += len(shadowed)
        lists: list[list[Hit]] = []
        if cfg.mode != "bm25" and qvec is not None:
            lists.append(self.backend.dense_hits(qvec, depth))
        if self.uses_keyword:
            lists.append(self.backend.keyword_hits(terms, depth) if terms else [])
        if shadowed:  # an old index may hold a chunk twice: search one copy only
            lists = [[h for h in hits if h.row not in shadowed] for hits in lists]
        if len(lists) <= 1:
            return lists[0] if lists else []
        return self._fuse(lists)

    def _fuse(self, lists: list[list[Hit]]) -> list[Hit]:
        cfg = self.config
        by_row: dict[int, Hit] = {}
        for hits in lists:
            for hit in hits:
                by_row.setdefault(hit.row, Hit(hit.row, 0.0)).parts.update(hit.parts)
        fused = get_fusion(cfg.fusion)(
            [[(h.row, h.score) for h in hits] for hits in lists],
            [cfg.dense_weight, 1.0 - cfg.dense_weight],
        )
        out = []
        for row, score in fused:
            hit = by_row[row]
            hit.score = score
            hit.parts["fused"] = score
            out.append(hit)
        return out

    def _distinct(self, hits: list[Hit]) -> list[Hit]:
        """The first (best) hit of each ``chunk_id``: a result never repeats a chunk."""
        keys = self.backend.chunk_keys([h.row for h in hits])
        seen, out = set(), []
        for hit, cid in zip(hits, keys, strict=True):
            if cid not in seen:
                seen.add(cid)
                out.append(hit)
        return out

    def _feedback(
        self, top: list[Hit], terms: dict[int, float], qvec: np.ndarray | None
    ) -> tuple[dict[int, float], np.ndarray | None]:
        cfg, backend = self.config, self.backend
        rows = [h.row for h in top]
        if terms and self.uses_keyword:
            terms = expand_terms(
                backend.term_counts(rows),
                np.arange(len(rows)),
                terms,
                cfg.feedback_terms,
                cfg.feedback_query_weight,
            )
        if qvec is not None and backend.has_vectors() and cfg.feedback_vector_weight > 0:
            moved = qvec + cfg.feedback_vector_weight * backend.vectors_of(rows).mean(axis=0)
            qvec = (moved / (np.linalg.norm(moved) or 1.0)).astype(np.float32)
        return terms, qvec

    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        assert self.reranker is not None
        head = hits[: self.config.rerank_depth]
        texts = [c.text for c in self.backend.chunks_of([h.row for h in head])]
        scores = self.reranker.score(query, texts)
        for hit, score in zip(head, scores, strict=True):
            hit.parts["rerank"] = float(score)
            hit.score = float(score)
        order = sorted(range(len(head)), key=lambda i: (-head[i].score, i))
        tail = hits[len(head) :]
        floor = min(h.score for h in head)
        for rank, hit in enumerate(tail, 1):  # below every reranked chunk, order kept
            hit.score = floor - rank
        return [head[i] for i in order] + tail

    def _set_similarity(self, hits: list[Hit], qvec: np.ndarray | None) -> None:
        """Cosine of each hit to the original query (not the feedback-moved one)."""
        if qvec is None or not hits or not self.backend.has_vectors():
            return
        vectors = self.backend.vectors_of([h.row for h in hits])
        for hit, vector in zip(hits, vectors, strict=True):
            hit.parts["similarity"] = float(vector @ qvec)


def expand_terms(
    counts: Any, rows: np.ndarray, terms: dict[int, float], n_terms: int, query_weight: float
) -> dict[int, float]:
    """RM3-style query: ``w * P(t|query) + (1 - w) * P(t|feedback chunks)`` over top terms."""
    block = counts[rows]
    lengths = np.asarray(block.sum(axis=1, dtype=np.float64)).ravel()
    lengths[lengths == 0] = 1.0
    relevance = np.asarray(block.multiply(1.0 / lengths[:, None]).sum(axis=0)).ravel()
    relevance /= len(rows)
    if n_terms <= 0 or not relevance.any():
        return terms
    top = np.argsort(-relevance, kind="stable")[:n_terms]
    top = top[relevance[top] > 0]
    expansion = relevance[top] / relevance[top].sum()
    total = sum(terms.values()) or 1.0
    out = {col: query_weight * w / total for col, w in terms.items()}
    for col, weight in zip(top.tolist(), expansion.tolist(), strict=True):
        out[col] = out.get(col, 0.0) + (1.0 - query_weight) * weight
    return out
