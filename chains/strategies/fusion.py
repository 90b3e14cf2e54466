"""Fusing ranked lists of chunks (several queries, several indexes) into one ranking."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from langchain_core.documents import Document

from orchestrator.retrieval.fusion import rrf_fusion


def chunk_key(doc: Document) -> Hashable:
    """What makes two retrieved chunks the same one (for fusion and "new source" checks)."""
    meta = doc.metadata
    key = meta.get("chunk_id") or doc.id
    return key if key is not None else (meta.get("doc_id"), doc.page_content)


def fuse_documents(
    lists: Sequence[Sequence[Document]], k: int, *, labels: Sequence[str] | None = None
) -> list[Document]:
    """Reciprocal-rank fusion (:func:`orchestrator.retrieval.fusion.rrf_fusion`) of ranked
    chunk lists, top ``k``. A chunk keeps the metadata of its best-ranked copy; ``score`` and
    ``fused`` become the fused score (RRF needs no calibration between lists that came from
    different queries or indexes). With ``labels`` (one per list, e.g. an index name), chunks
    of different lists never merge and carry ``index=<label>``."""
    first: dict[Hashable, Document] = {}
    ranked: list[list[tuple[Hashable, float]]] = []
    for i, docs in enumerate(lists):
        pairs = []
        for doc in docs:
            key = (labels[i], chunk_key(doc)) if labels is not None else chunk_key(doc)
            if key not in first:
                meta = dict(doc.metadata)
                if labels is not None:
                    meta["index"] = labels[i]
                first[key] = Document(page_content=doc.page_content, metadata=meta, id=doc.id)
            pairs.append((key, float(doc.metadata.get("score", 0.0))))
        ranked.append(pairs)
    out = []
    for key, score in rrf_fusion(ranked)[:k]:
        doc = first[key]
        doc.metadata["score"] = score
        doc.metadata["fused"] = score
        out.append(doc)
    return out
