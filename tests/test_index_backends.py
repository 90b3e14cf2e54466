"""The index-backend conformance cases: the SAME tests on every backend of INDEX_BACKENDS.

A backend is reached only through an :class:`IndexSpec` and the public functions, so a new
backend passes by adding its spec to ``spec`` below. PostgreSQL is a real server
(tests/postgres_support.py); embeddings are ``HashEmbeddings`` (no model load), so it is fast.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document

from orchestrator.errors import DataError, OptionError, OrchestratorError
from orchestrator.retrieval import (
    INDEX_BACKENDS,
    IndexReader,
    IndexSpec,
    IndexWriter,
    build_index,
    open_retriever,
)
from orchestrator.retrieval.bm25 import IDF, BM25Params
from orchestrator.retrieval.embedders import LangChainEmbedder
from orchestrator.retrieval.retriever import drop_index, open_index, update_index
from orchestrator.retrieval.stores import IndexBackend
from orchestrator.testing import HashEmbeddings

FACTS = {
    "moon": "The moon orbits the earth every month.",
    "tea": "Green tea is brewed with water below boiling.",
    "rust": "Iron rusts when water and oxygen reach it.",
    "owl": "Owls hunt small mammals at night.",
}


def docs(facts: dict[str, str] = FACTS) -> list[Document]:
    return [Document(text, metadata={"doc_id": key}) for key, text in facts.items()]


@pytest.fixture(params=sorted(INDEX_BACKENDS))
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> IndexSpec:
    if request.param == "folder":
        return IndexSpec.of(tmp_path / "index")
    return IndexSpec.of(request.getfixturevalue("index_name"), request.getfixturevalue("pg_dsn"))


def build(spec: IndexSpec, **options: Any) -> Any:
    return build_index(docs(), spec, embedding=HashEmbeddings(), **options)


def top(spec: IndexSpec, query: str, mode: str = "hybrid", k: int = 1) -> list[str]:
    retriever = open_retriever(spec, mode=mode, k=k, embedding=HashEmbeddings())
    return [d.metadata["doc_id"] for d in retriever.invoke(query)]


def test_build_then_search_in_every_mode(spec: IndexSpec) -> None:
    store = build(spec)
    assert store.counts() == {"documents": 4, "chunks": 4}
    assert sorted(store.doc_ids) == sorted(FACTS)
    for mode in ("dense", "bm25", "hybrid"):
        assert top(spec, FACTS["tea"], mode) == ["tea"], mode
    assert top(spec, "owls at night", "bm25") == ["owl"]


def test_update_adds_replaces_and_deletes_in_one_call(spec: IndexSpec) -> None:
    build(spec)
    changed = {"tea": "Black tea is brewed with boiling water.", "kite": "Kites fly in wind."}
    _, added, removed = update_index(
        spec, docs(changed), ["rust"], embedding=HashEmbeddings(), missing_ok=False
    )
    assert (added, removed) == (2, 1)
    assert sorted(open_index(spec, embedding=HashEmbeddings()).doc_ids) == [
        "kite",
        "moon",
        "owl",
        "tea",
    ]
    assert top(spec, "kites fly in wind", "bm25") == ["kite"]
    assert top(spec, "rusts iron oxygen", "bm25", k=4) == []  # the deleted one is not served
    assert "Black" in open_retriever(spec, mode="bm25", k=1).invoke("black tea")[0].page_content


def test_an_unknown_id_to_delete_is_an_error_and_changes_nothing(spec: IndexSpec) -> None:
    build(spec)
    with pytest.raises(DataError, match="'mon'"):
        update_index(spec, delete=["mon"], embedding=HashEmbeddings())
    assert open_index(spec, embedding=HashEmbeddings()).counts()["documents"] == 4


def test_drop_removes_the_index_and_its_name_is_free_again(spec: IndexSpec) -> None:
    build(spec)
    with pytest.raises(OrchestratorError, match=r"already holds an index|not an empty"):
        build(spec)  # an index is never built over another
    drop_index(spec)
    with pytest.raises(DataError):
        open_retriever(spec, embedding=HashEmbeddings())
    with pytest.raises(DataError):
        drop_index(spec)
    build(spec, modes=("bm25",))
    assert top(spec, "moon orbits", "bm25") == ["moon"]


def test_the_manifest_records_how_the_index_was_built(spec: IndexSpec) -> None:
    manifest = build(spec, chunk_size=128, chunk_overlap=8).manifest
    assert manifest["modes"] == ["dense", "bm25"]
    assert manifest["embedding"]["model"] == "HashEmbeddings"
    assert manifest["embedding"]["dimension"] == 64
    assert manifest["bm25"]["params"]["idf"] == "lucene"
    assert manifest["chunker"] == {"chunk_size": 128, "chunk_overlap": 8}
    assert open_index(spec, embedding=HashEmbeddings()).manifest["modes"] == ["dense", "bm25"]


def test_another_embedding_model_is_refused_on_open(spec: IndexSpec) -> None:
    build(spec)
    other = LangChainEmbedder(HashEmbeddings(), name="other")
    with pytest.raises(DataError, match="built with embedding model 'HashEmbeddings'"):
        open_retriever(spec, embedding=other)
    with pytest.raises(DataError, match="not 'other'"):
        open_index(spec, embedding=other)
    assert top(spec, "owls at night", "bm25") == ["owl"]  # keyword search needs no model


def test_each_backend_builds_the_idf_variants_it_declares(spec: IndexSpec) -> None:
    declared = INDEX_BACKENDS[spec.backend].idf_variants
    assert set(declared) <= set(IDF) and "lucene" in declared
    for idf in IDF:
        params = BM25Params(idf=idf)
        if idf in declared:
            build(spec, modes=("bm25",), bm25=params)
            assert top(spec, "owls at night", "bm25") == ["owl"]
            drop_index(spec)
        else:
            with pytest.raises(OptionError, match=f"not {idf!r}"):
                build(spec, modes=("bm25",), bm25=params)


def members(protocol: type) -> set[str]:
    return {n for n in vars(protocol) if not n.startswith("_")} | set(
        getattr(protocol, "__annotations__", {})
    )


def check_conforms(obj: object, protocol: type) -> None:
    """Every member is there, and every method takes the protocol's parameters (mypy checks
    the same statically where ``INDEX_BACKENDS`` and the readers are typed)."""
    assert isinstance(obj, protocol), protocol.__name__
    for name in members(protocol):
        assert hasattr(obj, name), (type(obj).__name__, name)
        want = inspect.getattr_static(protocol, name, None)
        if not callable(want) or isinstance(want, property):
            continue
        got = inspect.signature(getattr(obj, name))
        expected = list(inspect.signature(want).parameters)[1:]  # without self
        assert list(got.parameters) == expected, (type(obj).__name__, name)


def test_stores_readers_and_backends_conform_to_the_protocols(spec: IndexSpec) -> None:
    store = build(spec)
    check_conforms(store, IndexWriter)
    check_conforms(open_index(spec, embedding=HashEmbeddings()), IndexWriter)
    searcher = open_retriever(spec, embedding=HashEmbeddings()).searcher
    check_conforms(searcher.backend, IndexReader)
    backend = INDEX_BACKENDS[spec.backend]
    assert backend.name == spec.backend
    for name in ("check", "build", "open", "manifest", "reader", "is_current"):
        got = list(inspect.signature(getattr(backend, name)).parameters)
        assert got == list(inspect.signature(getattr(IndexBackend, name)).parameters)[1:]


def test_index_spec_resolves_what_a_user_typed(tmp_path: Path) -> None:
    folder = IndexSpec.of(tmp_path / "ix")
    assert (folder.backend, folder.label) == ("folder", str(tmp_path / "ix"))
    pg = IndexSpec.of(" docs ", "postgresql://me:secret@db/x")
    assert (pg.backend, pg.name, pg.label) == ("postgres", "docs", "docs")
    assert "secret" not in repr(pg) and "secret" not in pg.where
    assert IndexSpec.of(pg) is pg and "secret" not in str(pg.to_dict())  # never written out
    assert IndexSpec.from_dict(pg.to_dict()) == IndexSpec.of("docs", "postgresql://me@db/x")
    assert folder.to_dict() == {"backend": "folder", "path": str(tmp_path / "ix")}
    with pytest.raises(OptionError, match="PostgreSQL connection string"):
        IndexSpec.of("docs", str(tmp_path))
    with pytest.raises(OptionError, match="did you mean 'path'"):
        IndexSpec.from_dict({"backend": "folder", "pth": "x"})
    with pytest.raises(OptionError, match="needs both a name and a DSN"):
        IndexSpec(backend="postgres", name="docs")
