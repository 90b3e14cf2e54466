"""Embedding an index's chunks with Ray Data: ``orchestrator index ... --ray``.

:class:`RayEmbedder` wraps the embedder an index is built with and is an
:class:`~orchestrator.retrieval.types.Embedder` itself (same name, same dimension), so the
index code and every backend that calls ``embed_documents`` stay as they are. Its
``embed_batches`` (which :class:`~orchestrator.retrieval.index.IndexStore` uses when present)
cuts the texts into the batches the local path embeds, turns each batch into one row of a
Ray Dataset and runs ``map_batches`` over a pool of embedding actors
(``ActorPoolStrategy``); each actor builds the embedder once, the way the local path builds
it (model name or path, backend, batch size).

Why whole batches per row: the fp32 ONNX encoder sorts a call's texts by length and pads
within groups of 4, so a text's vector depends (below 1e-6, but still) on the texts beside it
in the call; giving every actor call exactly the local path's batches makes the vectors the
local path's. Rows carry their position and are put back in order on the driver.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.retrieval.dense import SentenceTransformerEmbedder
from orchestrator.retrieval.location import IndexSpec
from orchestrator.retrieval.types import Embedder
from orchestrator.scale import connect, import_ray, worker_env

#: Texts per Ray row: the batch the local index build embeds per call (``index_rules.EMBED_BATCH``).
DEFAULT_BATCH = 64


def embedder_recipe(embedder: Embedder) -> Callable[[], Embedder]:
    """A picklable way to build ``embedder`` again in a worker: ours by model and backend
    (a local model folder by its absolute path), any other embedder pickled as it is."""
    if isinstance(embedder, SentenceTransformerEmbedder):
        ref = embedder.model_ref
        path = Path(ref).expanduser()
        if path.exists():
            ref = str(path.resolve())
        return functools.partial(
            SentenceTransformerEmbedder,
            ref,
            device=embedder.device,
            batch_size=embedder._batch_size,
            backend=embedder.backend,
        )
    return functools.partial(_same, embedder)


def _same(embedder: Embedder) -> Embedder:
    return embedder


class EmbedActor:
    """One Ray Data actor: builds the embedder once, embeds one local-path batch per row."""

    def __init__(self, recipe: Callable[[], Embedder]) -> None:
        self.embedder = recipe()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        vectors, dims = [], []
        for texts in batch["texts"]:
            block = self.embedder.embed_documents([str(t) for t in texts])
            block = np.ascontiguousarray(block, dtype=np.float32)
            vectors.append(block.tobytes())
            dims.append(block.shape[1] if block.ndim == 2 else 0)
        return {
            "position": np.asarray(batch["position"], dtype=np.int64),
            "vectors": np.array(vectors, dtype=object),
            "dim": np.asarray(dims, dtype=np.int64),
        }


class RayEmbedder:
    """An :class:`Embedder` whose bulk embedding runs on Ray (module doc).

    ``address`` is ``--ray``'s value (``auto``, ``local`` or a cluster address, see
    :func:`orchestrator.scale.connect`); ``workers`` the size of the actor pool (default: one
    per CPU of the cluster). Queries and small lists are embedded here by the wrapped
    embedder: shipping one text to a worker would only add latency.
    """

    def __init__(
        self,
        inner: Embedder,
        *,
        address: str = "auto",
        workers: int | None = None,
        batch_size: int = DEFAULT_BATCH,
        num_cpus: int | None = None,
    ) -> None:
        self.inner, self.address, self.workers = inner, address, workers
        self.batch_size, self.num_cpus = batch_size, num_cpus

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) <= self.batch_size:
            return self.inner.embed_documents(texts)
        return self.embed_batches(texts, self.batch_size)

    def embed_batches(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        advance: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Vectors for ``texts`` in order, embedded ``batch_size`` texts per worker call
        (the caller's local batches); ``advance(n)`` as batches finish."""
        size = batch_size or self.batch_size
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        rows = [
            {"position": n, "texts": list(texts[start : start + size])}
            for n, start in enumerate(range(0, len(texts), size))
        ]
        blocks = self._run(rows, advance)
        return np.concatenate(blocks).astype(np.float32, copy=False)

    def _run(self, rows: list[dict[str, Any]], advance: Callable[[int], None] | None) -> list[Any]:
        session = connect(self.address, num_cpus=self.num_cpus)
        ray = import_ray("--ray (distributed indexing)")
        data = ray.data
        pool = min(session.workers(self.workers), len(rows))
        dataset = data.from_items(rows, override_num_blocks=min(len(rows), pool * 4))
        embedded = dataset.map_batches(
            EmbedActor,
            fn_constructor_kwargs={"recipe": embedder_recipe(self.inner)},
            compute=data.ActorPoolStrategy(size=pool),
            batch_size=1,
            batch_format="numpy",
            num_cpus=1,
            runtime_env={"env_vars": worker_env()},
        )
        blocks: list[Any] = [None] * len(rows)
        for row in embedded.iter_rows():
            position, dim = int(row["position"]), int(row["dim"])
            vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(-1, dim)
            blocks[position] = vectors
            if advance:
                advance(len(vectors))
        return blocks


def ray_embedding(
    embedding: Any,
    address: str,
    *,
    workers: int | None = None,
    index: IndexSpec | str | Path | None = None,
) -> Embedder | None:
    """What ``index --ray`` hands the index code as ``embedding``: a :class:`RayEmbedder`
    around the embedder the local path would use (``embedding``; for an existing ``index``
    the one it was built with; else :func:`~orchestrator.retrieval.dense.index_embedder`).
    An embedder that may not be loaded is returned as it is, so the index code raises its
    own error before any work."""
    from orchestrator.retrieval.dense import UnavailableEmbedder, index_embedder
    from orchestrator.retrieval.embedders import as_embedder

    inner = as_embedder(embedding)
    if inner is None and index is not None:
        inner = _index_embedder(IndexSpec.of(index))
    if inner is None and index is None:
        inner = index_embedder()
    if inner is None or isinstance(inner, UnavailableEmbedder):
        return inner
    connect(address)  # a wrong address is an error now, before documents are read
    return RayEmbedder(inner, address=address, workers=workers)


def _index_embedder(index: IndexSpec) -> Embedder | None:
    """The embedder an existing index was built with (None for a keyword-only index)."""
    from orchestrator.retrieval.index_rules import open_embedder
    from orchestrator.retrieval.stores import backend_of

    manifest = backend_of(index).manifest(index)
    return open_embedder(manifest, None, index.where, Path(index.label))
