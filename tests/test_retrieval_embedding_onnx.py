"""ONNX Runtime embeddings (issue 14): the same vectors as sentence-transformers on real texts,
an export made once and reused, a cached file that does not match its manifest rebuilt (never
loaded), no network, and the fallback to sentence-transformers where ONNX cannot stand in."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orchestrator.errors import DataError, ModelLoadError
from orchestrator.retrieval import build_index, open_retriever
from orchestrator.retrieval import dense as dense_module
from orchestrator.retrieval import onnx_embedder as ox
from orchestrator.retrieval.dense import SentenceTransformerEmbedder, default_model_dir
from orchestrator.retrieval.index_rules import embedder_from_name

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent


def real_texts() -> list[str]:
    """Paragraphs of this project's own docs (real prose, code and tables, short and long),
    plus the cases a tokenizer may treat differently."""
    paragraphs = []
    for doc in ("docs/architecture.md", "README.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        paragraphs += [p.strip() for p in text.split("\n\n") if len(p.strip()) > 40]
    long_text = " ".join(paragraphs[:12])  # well past the 256 word-piece limit
    edge = ["  padded with spaces  ", "UPPER and lower Case", "naïve café — Zürich", "x", ""]
    return [*paragraphs[:40], long_text, *edge]


def refuse_remote(self: socket.socket, address: Any) -> None:
    raise AssertionError(f"the ONNX export tried to connect to {address!r}")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh cache with the bundled model exported once (fp32 and int8), with every
    socket connection refused while it is made."""
    root = tmp_path_factory.mktemp("onnx-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORCHESTRATOR_CACHE", str(root))
        patch.setattr(socket.socket, "connect", refuse_remote)
        SentenceTransformerEmbedder(backend="onnx").embed_documents(["warm up"])
        SentenceTransformerEmbedder(backend="onnx-int8").embed_documents(["warm up"])
    yield root


@pytest.fixture()
def in_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ORCHESTRATOR_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """sentence-transformers itself, defaults, on the real texts."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(default_model_dir()), device="cpu", local_files_only=True)
    return np.asarray(model.encode(real_texts(), normalize_embeddings=True), np.float32)


def test_onnx_vectors_equal_sentence_transformers(in_cache: Path, reference: np.ndarray) -> None:
    embedder = SentenceTransformerEmbedder(backend="onnx")
    vectors = embedder.embed_documents(real_texts())
    assert vectors.shape == reference.shape == (len(real_texts()), 384)
    cosine = (vectors * reference).sum(axis=1)
    assert cosine.min() > 1 - 1e-5
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
    one = embedder.embed_query(real_texts()[3])  # the single-query path
    np.testing.assert_allclose(one, reference[3], atol=1e-5)


def test_the_default_backend_is_onnx_under_the_plain_model_name(in_cache: Path) -> None:
    default = SentenceTransformerEmbedder()
    assert default.engine == "onnx" and default.dimension == 384
    assert default.name == SentenceTransformerEmbedder(backend="torch").name == "all-MiniLM-L6-v2"
    assert embedder_from_name("all-MiniLM-L6-v2", in_cache).engine == "onnx"  # type: ignore[attr-defined]
    named = embedder_from_name("all-MiniLM-L6-v2@onnx-int8", in_cache)
    assert named.name == "all-MiniLM-L6-v2@onnx-int8"


def test_int8_vectors_are_close_and_named_apart(in_cache: Path, tmp_path: Path) -> None:
    texts = real_texts()[:20]
    exact = SentenceTransformerEmbedder().embed_documents(texts)
    int8 = SentenceTransformerEmbedder(backend="onnx-int8")
    quantised = int8.embed_documents(texts)
    cosine = (exact * quantised).sum(axis=1)
    assert cosine.mean() > 0.995 and cosine.min() > 0.99
    assert np.abs(exact - quantised).max() > 1e-4  # really quantised, hence its own name
    alone = int8.embed_documents([texts[2]])[0]  # one text per call: no neighbour effect
    np.testing.assert_array_equal(alone, quantised[2])
    spread = int8.encoder.encode(texts, threads=2, batch_size=1)  # two workers, same vectors
    np.testing.assert_array_equal(spread, int8.encoder.encode(texts, threads=1, batch_size=1))
    index = tmp_path / "index"
    docs = [{"doc_id": str(i), "text": t} for i, t in enumerate(texts)]
    build_index(docs, index, modes=("dense",), embedding=int8)
    with pytest.raises(DataError, match="onnx-int8"):
        open_retriever(index, mode="dense", embedding=SentenceTransformerEmbedder())
    hits = open_retriever(index, mode="dense").invoke(texts[5], k=1)  # the manifest's backend
    assert hits[0].metadata["doc_id"] == "5"


def test_the_export_is_made_once_and_reused(
    in_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = SentenceTransformerEmbedder().layout
    first = ox.cached_onnx(layout, in_cache)
    stamp = first.stat().st_mtime_ns

    def no_export(*args: Any) -> None:
        raise AssertionError("exported again although a verified file was cached")

    monkeypatch.setattr(ox, "export", no_export)
    monkeypatch.setattr(ox, "quantize", no_export)
    assert ox.cached_onnx(layout, in_cache) == first
    assert first.stat().st_mtime_ns == stamp
    vectors = SentenceTransformerEmbedder(backend="onnx").embed_documents(real_texts()[:3])
    assert vectors.shape == (3, 384)
    assert ox.cached_onnx(layout, in_cache, int8=True).parent.name == "int8"
    folders = list((in_cache / "onnx").iterdir())
    assert len(folders) == 1 and {p.name for p in folders[0].iterdir()} == {"fp32", "int8"}


def test_a_corrupted_cached_model_is_rebuilt_never_loaded(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: np.ndarray
) -> None:
    shutil.copytree(cache / "onnx", tmp_path / "onnx")
    monkeypatch.setenv("ORCHESTRATOR_CACHE", str(tmp_path))
    (folder,) = (tmp_path / "onnx").iterdir()
    manifest = json.loads((folder / "fp32" / "manifest.json").read_text())
    model = folder / "fp32" / manifest["file"]
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    model.write_bytes(bytes(data))
    loaded: list[str] = []
    real_session = ox.session
    monkeypatch.setattr(ox, "_SESSIONS", {})

    def recording_session(path: Path, threads: int) -> Any:
        loaded.append(ox.file_digest(path))
        return real_session(path, threads)

    monkeypatch.setattr(ox, "session", recording_session)
    vectors = SentenceTransformerEmbedder(backend="onnx").embed_documents(real_texts())
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
    rebuilt = json.loads((folder / "fp32" / "manifest.json").read_text())
    assert loaded == [rebuilt["sha256"]]
    assert ox.verified_file(folder / "fp32") is not None


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "manifest", "no-manifest"])
def test_every_mismatch_between_file_and_manifest_is_detected(tmp_path: Path, damage: str) -> None:
    built: list[bytes] = []

    def build(target: Path) -> None:
        built.append(b"onnx bytes %d" % len(built))
        target.write_bytes(built[-1])

    first = ox.record(tmp_path, build)
    assert ox.verified_file(tmp_path) == first
    manifest = tmp_path / "manifest.json"
    if damage == "flip":
        first.write_bytes(b"onnx bytes 9")
    elif damage == "truncate":
        first.write_bytes(first.read_bytes()[:4])
    elif damage == "delete":
        first.unlink()
    elif damage == "manifest":
        manifest.write_text("{not json")
    else:
        manifest.unlink()
    assert ox.verified_file(tmp_path) is None
    second = ox.record(tmp_path, build)
    assert ox.verified_file(tmp_path) == second and second.read_bytes() == built[-1]
    assert [p.name for p in tmp_path.glob("model-*.onnx")] == [second.name]


def write_model(folder: Path, *, pooling: dict[str, Any], model_type: str = "bert") -> Path:
    folder.mkdir()
    kind = "sentence_transformers.models."
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": kind + "Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": kind + "Pooling"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    config = {"model_type": model_type, "hidden_size": 8, "num_attention_heads": 2}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text("{}")
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder


def test_models_onnx_cannot_reproduce_say_why_and_fall_back(tmp_path: Path) -> None:
    cls = write_model(tmp_path / "cls", pooling={"pooling_mode_cls_token": True})
    assert "only mean pooling" in str(ox.inspect_model(cls))
    roberta = write_model(tmp_path / "rob", pooling={"pooling_mode": "mean"}, model_type="roberta")
    assert "only BERT" in str(ox.inspect_model(roberta))
    mean = write_model(tmp_path / "mean", pooling={"pooling_mode_mean_tokens": True})
    layout = ox.inspect_model(mean)
    assert isinstance(layout, ox.ModelLayout) and not layout.normalize
    assert SentenceTransformerEmbedder(str(cls)).engine == "torch"
    with pytest.raises(ModelLoadError) as caught:
        SentenceTransformerEmbedder(str(cls), backend="onnx").embed_documents(["text"])
    assert "backend='torch'" in (caught.value.fix or "")


def test_without_onnxruntime_auto_is_sentence_transformers(
    monkeypatch: pytest.MonkeyPatch, reference: np.ndarray
) -> None:
    real_find_spec = dense_module.importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "onnxruntime" else real_find_spec(name, *args)

    monkeypatch.setattr(dense_module.importlib.util, "find_spec", find_spec)
    embedder = SentenceTransformerEmbedder()
    assert embedder.engine == "torch" and embedder.name == "all-MiniLM-L6-v2"
    np.testing.assert_allclose(embedder.embed_documents(real_texts()), reference, atol=1e-5)


def test_new_indexes_use_int8_and_older_ones_keep_exact_vectors(
    in_cache: Path, tmp_path: Path
) -> None:
    docs = [{"doc_id": str(i), "text": t} for i, t in enumerate(real_texts()[:12])]
    fresh = build_index(docs, tmp_path / "new", modes=("dense",))
    assert fresh.manifest["embedding"]["model"] == "all-MiniLM-L6-v2@onnx-int8"
    exact = build_index(
        docs, tmp_path / "old", modes=("dense",), embedding=SentenceTransformerEmbedder()
    )
    assert exact.manifest["embedding"]["model"] == "all-MiniLM-L6-v2"  # as before this change
    reopened = open_retriever(tmp_path / "old", mode="dense")
    assert reopened.searcher.store.embedder.engine == "onnx"  # type: ignore[union-attr]
    assert reopened.invoke(real_texts()[7], k=1)[0].metadata["doc_id"] == "7"


def test_without_onnxruntime_new_indexes_get_exact_vectors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = dense_module.importlib.util.find_spec
    monkeypatch.setattr(
        dense_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a),
    )
    chosen = dense_module.index_embedder()
    assert chosen.engine == "torch" and chosen.name == "all-MiniLM-L6-v2"


def test_int8_refuses_a_graph_whose_feed_forward_it_cannot_find(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [2, 2], [1.0, 0.0, 0.0, 1.0])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="only")],
        "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [weight],
    )
    source = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph), str(source))
    with pytest.raises(ModelLoadError, match="feed-forward output projections"):
        ox.quantize(source, tmp_path / "int8.onnx")
    assert not (tmp_path / "int8.onnx").exists()
