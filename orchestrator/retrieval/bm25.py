"""BM25Okapi over a sparse term-frequency matrix.

Scores equal ``rank_bm25.BM25Okapi`` on the same tokens (same idf with its epsilon floor for
terms in more than half the documents, same length normalisation, repeated query terms counted
again), but a query touches only the columns of its terms: one sparse column slice and a
mat-vec instead of a Python loop over every document, so it stays fast at 100k+ chunks.

Rows are chunks in index order; adding appends rows, deleting drops rows, and the derived
weights are recomputed vectorised (no re-tokenisation of the corpus).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from orchestrator.errors import OptionError, unknown_option
from orchestrator.retrieval.analyzer import Analyzer
from orchestrator.retrieval.types import Hit


def lucene_idf(df: np.ndarray, n_docs: int, epsilon: float) -> np.ndarray:
    """Lucene's idf: log(1 + (N - df + .5) / (df + .5)), always positive (0 for unseen terms).
    The PostgreSQL backend computes the same formula in SQL (``postgres/search.py``)."""
    return np.where(df > 0, np.log1p((n_docs - df + 0.5) / (df + 0.5)), 0.0)


def okapi_idf(df: np.ndarray, n_docs: int, epsilon: float) -> np.ndarray:
    """rank-bm25's idf: log((N - df + .5) / (df + .5)), negatives floored at eps * mean idf."""
    idf = np.zeros_like(df)
    present = df > 0
    if not present.any():
        return idf
    raw = np.log(n_docs - df[present] + 0.5) - np.log(df[present] + 0.5)
    floor = epsilon * (float(raw.sum()) / raw.size)
    idf[present] = np.where(raw < 0, floor, raw)
    return idf


#: The idf variants by name: ``f(df, n_docs, epsilon) -> idf`` per term column. A backend
#: declares which names it can compute (``INDEX_BACKENDS[name].idf_variants``).
IDF: dict[str, Callable[[np.ndarray, int, float], np.ndarray]] = {
    "okapi": okapi_idf,
    "lucene": lucene_idf,
}
IDF_VARIANTS = tuple(IDF)


@dataclass(frozen=True)
class BM25Params:
    """BM25 parameters. Defaults tuned on Cranfield (docs/benchmarks.md): k1=1.5, b=0.9, idf
    "lucene"; ``BM25Params(b=0.75, idf="okapi")`` is exactly rank-bm25's BM25Okapi.

    ``idf="okapi"`` is rank-bm25's idf: 0 for a term in half the documents and floored at
    ``epsilon * mean idf`` above that, so in a tiny corpus common query terms match nothing.
    ``idf="lucene"`` is ``log(1 + (N - df + .5) / (df + .5))``, always positive.
    """

    k1: float = 1.5
    b: float = 0.9
    epsilon: float = 0.25
    idf: str = "lucene"

    def __post_init__(self) -> None:
        if self.k1 < 0 or not 0.0 <= self.b <= 1.0:
            raise OptionError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={self.k1}, b={self.b}")
        if self.idf not in IDF_VARIANTS:
            raise unknown_option(self.idf, IDF_VARIANTS, where="BM25 idf")

    def to_json(self) -> dict[str, float]:
        return asdict(self)


class BM25Index:
    """Keyword index: term counts per chunk plus the vocabulary; scoring is BM25Okapi."""

    def __init__(
        self,
        analyzer: Analyzer | None = None,
        params: BM25Params | None = None,
        vocab: dict[str, int] | None = None,
        counts: sp.csr_matrix | None = None,
    ) -> None:
        self.analyzer = analyzer or Analyzer()
        self.params = params or BM25Params()
        self.vocab: dict[str, int] = dict(vocab or {})
        self.counts = counts if counts is not None else sp.csr_matrix((0, len(self.vocab)))
        self.counts = sp.csr_matrix(self.counts, dtype=np.float32)
        self._prepare()

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    # -- building -----------------------------------------------------------------------------

    def add(self, texts: Sequence[str]) -> None:
        """Analyse ``texts`` and append them as new rows."""
        self.add_tokens([self.analyzer(t) for t in texts])

    def add_tokens(self, docs: Iterable[Sequence[str]]) -> None:
        """Append pre-tokenised documents (used to compare with rank-bm25 on equal tokens)."""
        indptr, indices, data = [0], [], []
        for tokens in docs:
            for term, n in Counter(tokens).items():
                col = self.vocab.setdefault(term, len(self.vocab))
                indices.append(col)
                data.append(n)
            indptr.append(len(indices))
        new = sp.csr_matrix(
            (np.asarray(data, np.float32), np.asarray(indices, np.int64), np.asarray(indptr)),
            shape=(len(indptr) - 1, len(self.vocab)),
        )
        old = self.counts
        old.resize((old.shape[0], len(self.vocab)))
        self.counts = sp.csr_matrix(sp.vstack([old, new], format="csr"), dtype=np.float32)
        self._prepare()

    def remove_rows(self, rows: np.ndarray) -> None:
        """Drop the given row positions; later rows move up."""
        keep = np.ones(len(self), dtype=bool)
        keep[np.asarray(rows, dtype=np.int64)] = False
        self.counts = sp.csr_matrix(self.counts[keep])
        self._prepare()

    def _prepare(self) -> None:
        """Derive idf and the per-(doc, term) saturation weights from the raw counts."""
        counts = self.counts
        n_docs = counts.shape[0]
        self.doc_len = np.asarray(counts.sum(axis=1, dtype=np.float64)).ravel()
        df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float64)
        self.idf = IDF[self.params.idf](df, n_docs, self.params.epsilon)
        if n_docs == 0 or counts.nnz == 0:
            self._weights = sp.csc_matrix(counts.shape, dtype=np.float64)
            return
        k1, b = self.params.k1, self.params.b
        avgdl = float(self.doc_len.sum()) / n_docs
        norm = k1 * (1.0 - b + b * self.doc_len / avgdl)
        rows = np.repeat(np.arange(n_docs), np.diff(counts.indptr))
        tf = counts.data.astype(np.float64)
        data = tf * (k1 + 1.0) / (tf + norm[rows])
        weights = sp.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape)
        self._weights = weights.tocsc()

    # -- querying -----------------------------------------------------------------------------

    def query_terms(self, query: str) -> dict[int, float]:
        """Column -> repeat count of the query's known terms (unknown terms score 0)."""
        terms = Counter(self.analyzer(query))
        return {self.vocab[t]: float(n) for t, n in terms.items() if t in self.vocab}

    def scores_for(self, terms: dict[int, float]) -> np.ndarray:
        """BM25 score of every row for weighted query terms ``{column: weight}``."""
        if not terms or len(self) == 0:
            return np.zeros(len(self))
        cols = np.fromiter(terms, dtype=np.int64, count=len(terms))
        weights = np.fromiter(terms.values(), dtype=np.float64, count=len(terms))
        return np.asarray(self._weights[:, cols] @ (self.idf[cols] * weights)).ravel()

    def get_scores(self, tokens: Sequence[str]) -> np.ndarray:
        """Scores for a tokenised query, exactly as ``rank_bm25.BM25Okapi.get_scores``."""
        counts = Counter(t for t in tokens if t in self.vocab)
        return self.scores_for({self.vocab[t]: float(n) for t, n in counts.items()})

    def top_k(self, query: str, k: int) -> list[Hit]:
        """The ``k`` best rows with a positive score (a chunk sharing no term is not a match)."""
        return top_hits(self.scores_for(self.query_terms(query)), k, "bm25")

    # -- persistence (plain arrays, no pickle) -------------------------------------------------

    def arrays(self) -> dict[str, np.ndarray]:
        c = self.counts
        return {
            "data": c.data,
            "indices": c.indices,
            "indptr": c.indptr,
            "shape": np.asarray(c.shape, dtype=np.int64),
        }

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, Any], vocab: dict[str, int], analyzer: Analyzer, params: BM25Params
    ) -> BM25Index:
        shape = tuple(int(x) for x in arrays["shape"])
        counts = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
        return cls(analyzer=analyzer, params=params, vocab=vocab, counts=counts)


def top_hits(scores: np.ndarray, k: int, part: str) -> list[Hit]:
    """The ``k`` highest positive scores as hits, best first (ties by row for determinism)."""
    positive = np.flatnonzero(scores > 0)
    if positive.size == 0 or k <= 0:
        return []
    if positive.size > k:
        best = np.argpartition(-scores[positive], k - 1)[:k]
        positive = positive[best]
    order = np.lexsort((positive, -scores[positive]))
    return [Hit(int(r), float(scores[r]), {part: float(scores[r])}) for r in positive[order]]


__all__ = ["IDF", "BM25Index", "BM25Params", "lucene_idf", "okapi_idf", "top_hits"]
