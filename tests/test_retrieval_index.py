"""The persistent index: build, reopen in a new process, add/delete, atomicity, bad indexes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import DataError, OptionError
from orchestrator.retrieval import IndexStore, build_index, open_retriever
from orchestrator.retrieval.dense import LangChainEmbedder
from orchestrator.retrieval.ingest import to_source_documents
from orchestrator.testing import HashEmbeddings

DOCS = [
    {"doc_id": "wing", "text": "Lift on a swept wing in supersonic flow.", "title": "Wings"},
    {"doc_id": "heat", "text": "Heat transfer through a laminar boundary layer."},
    {"doc_id": "shell", "text": "Buckling of thin cylindrical shells under axial load."},
    {"doc_id": "panel", "text": "Flutter of flat panels at high Mach numbers."},
    {"doc_id": "jet", "text": "Noise of a subsonic jet exhausting into still air."},
]


def embedder() -> LangChainEmbedder:
    return LangChainEmbedder(HashEmbeddings(dim=128))


def build(tmp_path: Path, **kwargs) -> Path:  # type: ignore[no-untyped-def]
    index_dir = tmp_path / "index"
    build_index(DOCS, index_dir, embedding=embedder(), **kwargs)
    return index_dir


def test_build_writes_manifest_with_version_model_dimension_and_checksums(tmp_path) -> None:
    index_dir = build(tmp_path)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    assert manifest["embedding"]["model"] == "HashEmbeddings"
    assert manifest["embedding"]["dimension"] == 128
    assert manifest["counts"] == {"documents": 5, "chunks": 5}
    assert set(manifest["files"]) == {"chunks", "ids", "vectors", "dense", "bm25", "vocab"}
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    assert not list(index_dir.glob("*.pkl"))


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_every_mode_returns_documents_with_contract_metadata(tmp_path, mode) -> None:
    retriever = open_retriever(build(tmp_path), mode=mode, k=2, embedding=embedder())
    docs = retriever.invoke("buckling of cylindrical shells")
    assert docs[0].metadata["doc_id"] == "shell"
    for doc in docs:
        assert {"doc_id", "chunk_id", "source", "score"} <= set(doc.metadata)
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)


def test_reopen_in_a_new_process_gives_the_same_results(tmp_path) -> None:
    index_dir = build(tmp_path, modes=("bm25",))
    here = open_retriever(index_dir, mode="bm25", k=3).invoke("flutter of panels")
    code = (
        "import json, sys\n"
        "from orchestrator.retrieval import open_retriever\n"
        "docs = open_retriever(sys.argv[1], mode='bm25', k=3).invoke('flutter of panels')\n"
        "print(json.dumps([d.metadata['chunk_id'] for d in docs]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(index_dir)], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == [d.metadata["chunk_id"] for d in here]


def test_add_and_delete_without_rebuild_keep_other_chunks(tmp_path) -> None:
    index_dir = build(tmp_path)
    store = IndexStore.open(index_dir, embedder=embedder())
    kept_ids = {c.chunk_id for c in store.chunks if c.doc_id != "jet"}
    assert store.delete_documents(["jet"]) == 1
    rotor = {"doc_id": "rotor", "text": "Helicopter rotor blade vortex."}
    added = store.add_documents(to_source_documents([rotor]))
    assert added == 1
    store.save()
    reopened = IndexStore.open(index_dir, embedder=embedder())
    assert {c.chunk_id for c in reopened.chunks} >= kept_ids
    assert set(reopened.doc_ids) == {"wing", "heat", "shell", "panel", "rotor"}
    retriever = open_retriever(index_dir, mode="hybrid", k=1, embedding=embedder())
    assert retriever.invoke("rotor blade vortex")[0].metadata["doc_id"] == "rotor"
    assert all(d.metadata["doc_id"] != "jet" for d in retriever.invoke("jet noise", k=5))
    assert len(list(index_dir.glob("chunks.*.jsonl"))) == 1


def test_adding_a_known_doc_id_replaces_its_chunks(tmp_path) -> None:
    store = IndexStore.open(build(tmp_path), embedder=embedder())
    store.add_documents(to_source_documents([{"doc_id": "heat", "text": "Radiative cooling."}]))
    texts = [c.text for c in store.chunks if c.doc_id == "heat"]
    assert texts == ["Radiative cooling."]


def test_a_crash_before_the_manifest_swap_leaves_the_old_index_usable(tmp_path, monkeypatch):
    from orchestrator.retrieval import storage

    index_dir = build(tmp_path, modes=("bm25",))
    store = IndexStore.open(index_dir)
    store.delete_documents(["wing", "heat"])

    def crash(path: Path, payload: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(storage, "write_json", crash)
    with pytest.raises(OSError, match="disk full"):
        store.save()
    monkeypatch.undo()
    reopened = IndexStore.open(index_dir)
    assert len(reopened.chunks) == 5


def test_corrupted_file_is_a_clear_error(tmp_path) -> None:
    index_dir = build(tmp_path)
    vectors = next(index_dir.glob("vectors.*.npy"))
    vectors.write_bytes(vectors.read_bytes()[:-16] + b"\x7f" * 16)
    with pytest.raises(DataError, match="checksum mismatch") as err:
        IndexStore.open(index_dir, embedder=embedder())
    assert "rebuild" in (err.value.fix or "")


def test_other_embedding_model_or_version_is_refused(tmp_path) -> None:
    index_dir = build(tmp_path)
    with pytest.raises(DataError, match="built with embedding model 'HashEmbeddings'"):
        IndexStore.open(index_dir, embedder=LangChainEmbedder(HashEmbeddings(), name="other"))
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest["format_version"] = 99
    (index_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="format version 99"):
        IndexStore.open(index_dir)


def test_other_dimension_is_refused_at_query_time(tmp_path) -> None:
    index_dir = build(tmp_path)
    other = LangChainEmbedder(HashEmbeddings(dim=32), name="HashEmbeddings")
    retriever = open_retriever(index_dir, mode="dense", embedding=other)
    with pytest.raises(DataError, match="32-dim"):
        retriever.invoke("wing")


def test_missing_index_and_wrong_mode_are_option_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="not an index directory"):
        open_retriever(tmp_path)
    index_dir = build(tmp_path, modes=("bm25",))
    with pytest.raises(OptionError, match="needs the dense side"):
        open_retriever(index_dir, mode="hybrid")
    with pytest.raises(OptionError, match="did you mean 'fusion'"):
        open_retriever(index_dir, mode="bm25", fusio="rrf")
    with pytest.raises(OptionError, match="not an empty directory"):
        build_index(DOCS, index_dir, modes=("bm25",))


def test_backends_satisfy_the_protocols(tmp_path) -> None:
    from orchestrator.retrieval import Embedder, KeywordIndex, Reranker, VectorIndex
    from orchestrator.retrieval.rerank import LLMReranker

    store = IndexStore.open(build(tmp_path), embedder=embedder())
    assert isinstance(store.dense, VectorIndex)
    assert isinstance(store.bm25, KeywordIndex)
    assert isinstance(store.embedder, Embedder)
    assert isinstance(LLMReranker(), Reranker)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_every_faiss_kind_persists_and_deletes(tmp_path, kind) -> None:
    index_dir = build(tmp_path, modes=("dense",), index_kind=kind)
    store = IndexStore.open(index_dir, embedder=embedder())
    assert store.manifest["embedding"]["resolved_kind"] == kind
    store.delete_documents(["shell"])
    store.save()
    retriever = open_retriever(index_dir, mode="dense", k=4, embedding=embedder())
    found = {d.metadata["doc_id"] for d in retriever.invoke("buckling of cylindrical shells")}
    assert found == {"wing", "heat", "panel", "jet"}


def test_auto_kind_switches_to_hnsw_for_large_corpora() -> None:
    from orchestrator.retrieval.dense import AUTO_ANN_THRESHOLD, choose_kind

    assert choose_kind("auto", AUTO_ANN_THRESHOLD - 1) == "flat"
    assert choose_kind("auto", AUTO_ANN_THRESHOLD) == "hnsw"
    with pytest.raises(OptionError, match="did you mean 'hnsw'"):
        choose_kind("hnws", 10)


def test_search_many_equals_one_query_at_a_time(tmp_path) -> None:
    from orchestrator.retrieval import search_many

    retriever = open_retriever(build(tmp_path), k=3, embedding=embedder())
    queries = ["wing lift", "heat transfer", "jet noise"]
    batched = search_many(retriever, queries, k=3)
    single = [retriever.invoke(q, k=3) for q in queries]
    assert [[d.metadata["chunk_id"] for d in r] for r in batched] == [
        [d.metadata["chunk_id"] for d in r] for r in single
    ]
    assert [d.metadata["score"] for d in batched[1]] == [d.metadata["score"] for d in single[1]]


def test_rebuild_keyword_changes_bm25_without_touching_vectors(tmp_path) -> None:
    from orchestrator.retrieval import AnalyzerConfig, BM25Params

    index_dir = build(tmp_path)
    store = IndexStore.open(index_dir, embedder=embedder())
    vectors = store.vectors.copy()
    store.rebuild_keyword(AnalyzerConfig(stopwords="none", language="none"), BM25Params(k1=0.9))
    store.save()
    reopened = IndexStore.open(index_dir, embedder=embedder())
    assert reopened.manifest["bm25"]["params"]["k1"] == 0.9
    assert "a" in reopened.bm25.vocab  # a stop word, kept without a stop list
    assert (reopened.vectors == vectors).all()


def test_k_zero_empty_query_and_empty_batch(tmp_path: Path) -> None:
    from orchestrator.errors import OptionError
    from orchestrator.retrieval import build_index, open_retriever

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(["rotor blades", "wing flutter", "shock waves", "heat transfer"]):
        (docs / f"d{i}.txt").write_text(text)
    build_index([docs], tmp_path / "ix", modes=("bm25",))
    retriever = open_retriever(tmp_path / "ix", mode="bm25", k=2)
    with pytest.raises(OptionError, match="k must be"):
        retriever.invoke("rotor", k=0)
    with pytest.raises(OptionError, match="empty"):
        retriever.invoke("   ")
    assert retriever.search_many([], 2) == []


def test_min_similarity_in_bm25_mode(tmp_path: Path) -> None:
    from orchestrator.errors import OptionError
    from orchestrator.retrieval import build_index, open_retriever

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(["rotor blades spin", "wing flutter", "shock waves", "heat flow"]):
        (docs / f"d{i}.txt").write_text(text)
    build_index([docs], tmp_path / "both", modes=("dense", "bm25"))
    strict = open_retriever(tmp_path / "both", mode="bm25", k=2, min_similarity=0.99)
    assert strict.invoke("rotor blades") == [], "the floor applies in bm25 mode too"
    loose = open_retriever(tmp_path / "both", mode="bm25", k=2, min_similarity=0.0)
    assert loose.invoke("rotor blades")[0].metadata["doc_id"] == "d0.txt"
    build_index([docs], tmp_path / "kw", modes=("bm25",))
    with pytest.raises(OptionError, match="dense vectors"):
        open_retriever(tmp_path / "kw", mode="bm25", min_similarity=0.3).invoke("rotor")


def test_a_second_writer_cannot_undo_the_first(tmp_path: Path) -> None:
    from orchestrator.errors import DataError
    from orchestrator.retrieval import IndexStore, build_index, load_documents

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(["rotor blades", "wing flutter", "shock waves"]):
        (docs / f"d{i}.txt").write_text(text)
    build_index([docs], tmp_path / "ix", modes=("bm25",))
    first, second = IndexStore.open(tmp_path / "ix"), IndexStore.open(tmp_path / "ix")
    extra = tmp_path / "extra.txt"
    extra.write_text("heat transfer in nozzles")
    first.add_documents(list(load_documents([extra])))
    first.save()
    second.delete_documents(["d0.txt"])
    with pytest.raises(DataError, match="changed since it was opened"):
        second.save()
    reopened = IndexStore.open(tmp_path / "ix")
    assert extra.as_posix() in reopened.doc_ids and "d0.txt" in reopened.doc_ids


def test_a_busy_index_is_reported_not_corrupted(tmp_path: Path) -> None:
    import subprocess
    import sys

    from orchestrator.retrieval import storage

    code = (
        "import sys; from pathlib import Path; from orchestrator.retrieval import storage\n"
        "with storage.write_lock(Path(sys.argv[1])): pass\n"
    )
    with storage.write_lock(tmp_path):
        proc = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            capture_output=True,
            text=True,
            check=False,
        )
    assert proc.returncode != 0 and "another process is writing" in proc.stderr
