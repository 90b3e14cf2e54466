"""Cheap model constructors and a fast GGUF metadata read.

Constructing ``ChatLlamaCpp`` / ``LlamaCpp`` runs only :func:`check_gguf_header` (a stat and
24 bytes); the full ``GGUFReader`` parse happens on first use of ``.info`` / ``.engine``, before
llama.cpp opens the file. The reader is ``GGUFReader`` with a faster walk over long arrays,
which must build exactly the fields the plain reader builds.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from tiny_phi3 import build_tiny_phi3, write_metadata_only

from orchestrator.errors import ModelLoadError
from orchestrator.gguf_info import _fast_reader_class, check_gguf_header, read_gguf_info
from orchestrator.settings import embedded_model_path

# ---- the fast path builds the plain reader's fields ------------------------------------------


def _every_array_kind(path: Path) -> Path:
    """A metadata-only file with one array of each kind the walk treats differently."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_array("test.strings", ["", "a", "héllo", "<|im_start|>", "x" * 300])
    writer.add_array("test.bools", [True, False, True])
    writer.add_array("test.floats", [0.5, -1.25, 3.0])
    writer.add_array("test.nested", [[1, 2], [3]])
    writer.add_key_value("test.u64", [2**40, 7], gguf.GGUFValueType.ARRAY,
                         sub_type=gguf.GGUFValueType.UINT64)
    writer.add_key_value("test.f64", [1.5, 2.5], gguf.GGUFValueType.ARRAY,
                         sub_type=gguf.GGUFValueType.FLOAT64)
    writer.add_key_value("test.i8", [-1, 5], gguf.GGUFValueType.ARRAY,
                         sub_type=gguf.GGUFValueType.INT8)
    writer.add_uint32("test.scalar", 42)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return _insert_empty_array(path, "test.empty")


def _insert_empty_array(path: Path, key: str) -> Path:
    """Add an empty INT32 array after the last key (GGUFWriter refuses to write one, other
    writers do not), counting it in the header."""
    fields = gguf.GGUFReader(str(path)).fields
    last = fields[next(reversed(fields))]
    end = last.offset + sum(int(part.nbytes) for part in last.parts)
    entry = struct.pack("<Q", len(key)) + key.encode() + struct.pack(
        "<IIQ", gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT32, 0
    )
    data = bytearray(path.read_bytes())
    n_kv = int.from_bytes(data[16:24], "little")
    data[16:24] = (n_kv + 1).to_bytes(8, "little")
    path.write_bytes(bytes(data[:end] + entry + data[end:]))
    return path


def _same_parts(left: list[np.ndarray], right: list[np.ndarray], where: str) -> None:
    assert len(left) == len(right), where
    for a, b in zip(left, right, strict=True):
        assert (a.dtype, a.shape, a.tobytes()) == (b.dtype, b.shape, b.tobytes()), where


def _assert_same_reader(fast: Any, plain: Any) -> None:
    assert list(fast.fields) == list(plain.fields)
    for key, field in plain.fields.items():
        mine = fast.fields[key]
        assert (mine.offset, mine.name, mine.data, mine.types) == (
            field.offset, field.name, field.data, field.types
        ), key
        _same_parts(mine.parts, field.parts, key)
        assert mine.contents() == field.contents(), key
    assert (fast.data_offset, fast.alignment, fast.byte_order) == (
        plain.data_offset, plain.alignment, plain.byte_order
    )
    assert len(fast.tensors) == len(plain.tensors)
    for mine, tensor in zip(fast.tensors, plain.tensors, strict=True):
        assert (mine.name, mine.tensor_type, mine.n_elements, mine.n_bytes, mine.data_offset) == (
            tensor.name, tensor.tensor_type, tensor.n_elements, tensor.n_bytes,
            tensor.data_offset,
        )
        assert (mine.data.shape, mine.data.dtype) == (tensor.data.shape, tensor.data.dtype)
        assert mine.shape.tolist() == tensor.shape.tolist()
        _same_parts(mine.field.parts, tensor.field.parts, mine.name)


def _embedded(tmp_path: Path) -> Path:
    return embedded_model_path()


MAKERS: dict[str, Callable[[Path], Path]] = {
    "embedded SmolLM2 (49k tokens, merges, token types)": _embedded,
    "tiny phi3 (float scores, tensors)": lambda d: build_tiny_phi3(d / "tiny.gguf"),
    "every array kind": lambda d: _every_array_kind(d / "arrays.gguf"),
    "metadata only": lambda d: write_metadata_only(d / "m.gguf", "qwen3", control=("<c>",)),
}


@pytest.mark.parametrize("which", list(MAKERS))
def test_fast_reader_builds_the_plain_readers_fields(tmp_path: Path, which: str) -> None:
    path = MAKERS[which](tmp_path)
    _assert_same_reader(_fast_reader_class()(str(path)), gguf.GGUFReader(str(path)))


def test_every_array_kind_reads_back(tmp_path: Path) -> None:
    fields = _fast_reader_class()(str(_every_array_kind(tmp_path / "a.gguf"))).fields
    assert fields["test.strings"].contents() == ["", "a", "héllo", "<|im_start|>", "x" * 300]
    assert fields["test.empty"].contents() == []
    assert fields["test.bools"].contents() == [True, False, True]
    assert fields["test.floats"].contents() == [0.5, -1.25, 3.0]
    assert fields["test.u64"].contents() == [2**40, 7]
    assert fields["test.i8"].contents(1) == 5
    assert fields["test.scalar"].contents() == 42


def _array_length_offset(path: Path, key: str) -> int:
    field = gguf.GGUFReader(str(path)).fields[key]
    return field.offset + 8 + len(key) + 4 + 4  # key length, key, value type, item type


@pytest.mark.parametrize("key", ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type"])
def test_absurd_array_length_is_a_load_error(tmp_path: Path, key: str) -> None:
    path = write_metadata_only(tmp_path / "m.gguf", "llama")
    data = bytearray(path.read_bytes())
    at = _array_length_offset(path, key)
    data[at : at + 8] = (2**62).to_bytes(8, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="truncated or has a malformed GGUF header") as err:
        read_gguf_info(path)
    assert "re-download" in str(err.value.fix)


@pytest.fixture(scope="module")
def embedded_reader() -> gguf.GGUFReader:
    """The plain reader on the embedded model, parsed once for the tests that only read where
    its fields lie (a parse of its 49k-token arrays takes seconds)."""
    return gguf.GGUFReader(embedded_model_path())


@pytest.mark.parametrize(
    "key", ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"]
)
def test_file_cut_inside_a_long_array_is_a_load_error(
    tmp_path: Path, key: str, embedded_reader: gguf.GGUFReader
) -> None:
    field = embedded_reader.fields[key]
    middle = field.offset + sum(int(part.nbytes) for part in field.parts) // 2
    cut = tmp_path / "cut.gguf"
    with embedded_model_path().open("rb") as src:
        cut.write_bytes(src.read(middle))
    with pytest.raises(ModelLoadError, match="truncated or has a malformed GGUF header"):
        read_gguf_info(cut)


# ---- construction reads 24 bytes; the full read comes on first use -------------------------


@pytest.fixture
def reader_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths GGUFReader (and so our subclass) was opened on."""
    calls: list[str] = []
    original = gguf.GGUFReader.__init__

    def counting(self: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(str(path))
        original(self, path, *args, **kwargs)

    monkeypatch.setattr(gguf.GGUFReader, "__init__", counting)
    return calls


def test_constructing_a_model_does_not_call_gguf_reader(
    tmp_path: Path, reader_calls: list[str]
) -> None:
    from orchestrator import ChatLlamaCpp, LlamaCpp
    from orchestrator.llama.info import describe_model

    path = write_metadata_only(tmp_path / "m.gguf", "qwen3", block_count=7)
    chat, llm = ChatLlamaCpp(model_path=str(path)), LlamaCpp(model=str(path))
    assert reader_calls == []
    assert chat.model == llm.model_path == str(path.resolve())
    assert chat.info.n_layers == 7 and llm.info.architecture == "qwen3"
    assert reader_calls == [str(path.resolve())]  # once: cached per file version
    assert describe_model(str(path))["layers"] == 7
    assert llm.engine_key().n_ctx == 2048 and len(reader_calls) == 1


def test_header_check_reads_the_counts(tmp_path: Path) -> None:
    path = write_metadata_only(tmp_path / "m.gguf", "llama")
    header = check_gguf_header(path)
    plain = gguf.GGUFReader(str(path)).fields
    assert header.version == plain["GGUF.version"].contents() == 3
    assert header.kv_count == plain["GGUF.kv_count"].contents()
    assert header.tensor_count == 0 and header.size_bytes == path.stat().st_size


def _short_header(path: Path) -> None:
    path.write_bytes(b"GGUF\x03\x00")


def _version_99(path: Path) -> None:
    with embedded_model_path().open("rb") as src:
        data = bytearray(src.read(4096))
    data[4:8] = (99).to_bytes(4, "little")
    path.write_bytes(bytes(data))


def _too_many_keys(path: Path) -> None:
    with embedded_model_path().open("rb") as src:
        data = bytearray(src.read(4096))
    data[16:24] = (10**9).to_bytes(8, "little")
    path.write_bytes(bytes(data))


BAD_AT_CONSTRUCTION: dict[str, tuple[Callable[[Path], Any], str]] = {
    "missing": (lambda p: None, "not found"),
    "directory": (lambda p: p.mkdir(), "directory"),
    "not GGUF": (lambda p: p.write_bytes(b"PK\x03\x04 zip"), "not a GGUF file"),
    "empty": (lambda p: p.write_bytes(b""), "not a GGUF file"),
    "short header": (_short_header, "ends inside the 24-byte header"),
    "unknown version": (_version_99, "GGUF version 99"),
    "more keys than bytes": (_too_many_keys, "1,000,000,000 metadata keys"),
}


@pytest.mark.parametrize("which", list(BAD_AT_CONSTRUCTION))
def test_constructor_rejects_what_the_header_shows(
    tmp_path: Path, reader_calls: list[str], which: str
) -> None:
    from orchestrator import ChatLlamaCpp

    make, message = BAD_AT_CONSTRUCTION[which]
    path = tmp_path / "model.gguf"
    make(path)
    with pytest.raises(ModelLoadError, match=message) as err:
        ChatLlamaCpp(model_path=str(path))
    assert err.value.fix and reader_calls == []


def test_truncated_file_fails_on_first_use_before_llama_cpp_opens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedded_reader: gguf.GGUFReader
) -> None:
    import llama_cpp

    from orchestrator import ChatLlamaCpp
    from orchestrator.llama.engine import EngineKey, load_engine
    from orchestrator.llama.info import describe_model

    cut = tmp_path / "cut.gguf"
    with embedded_model_path().open("rb") as src:
        offset = embedded_reader.tensors[0].field.offset
        cut.write_bytes(src.read(offset + 5))  # inside tensor infos

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("llama.cpp was handed a truncated file")

    monkeypatch.setattr(llama_cpp, "Llama", never)
    llm = ChatLlamaCpp(model_path=str(cut))  # the header is fine: construction succeeds
    for first_use in (llm.warm_up, llm.engine_key, lambda: describe_model(str(cut))):
        with pytest.raises(ModelLoadError, match="truncated") as err:
            first_use()
        assert "re-download" in str(err.value.fix)
    key = EngineKey(path=str(cut), n_ctx=64, n_gpu_layers=0, n_threads=1, n_batch=8,
                    verbose=False)
    with pytest.raises(ModelLoadError, match="truncated"):
        load_engine(key)
