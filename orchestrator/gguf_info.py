"""Read a GGUF file's metadata with the ``gguf`` library before llama.cpp sees the file.

llama.cpp can abort the process on some malformed files. Two levels of checking, so that
building a model object stays cheap and loading it stays safe:

- :func:`check_gguf_header` (what a model constructor runs): a stat and the first 24 bytes.
  A missing, unreadable, non-regular or non-GGUF file, an unknown GGUF version or a header
  claiming more keys and tensors than the file can hold is a :class:`ModelLoadError` here.
- :func:`read_gguf_info` (run before llama.cpp loads the file, and for ``orchestrator
  models``): ``gguf.GGUFReader`` parses every key and lays every tensor over the memory map
  (no tensor data is read), so a file truncated or corrupted anywhere fails in Python.

The reader is GGUFReader with a faster walk over long arrays (see :func:`_fast_reader_class`):
same parser, same fields, about 30 times faster on a 49k-token vocabulary.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from stat import S_ISDIR, S_ISREG
from typing import Any

import numpy as np

from orchestrator.errors import ModelLoadError

GGUF_MAGIC = b"GGUF"
_MISSING_FIX = "pass an existing .gguf file with --model / model_path, or unset ORCHESTRATOR_MODEL"
_BROKEN_FIX = "re-download or re-convert the file; it is truncated or corrupted"
#: gguf's TokenType values of tokens that are markers, not text (CONTROL, USER_DEFINED).
_MARKER_TOKEN_TYPES = (3, 4)


@dataclass(frozen=True)
class GGUFInfo:
    """What we need to know about a model before and after loading it."""

    path: Path
    size_bytes: int
    architecture: str
    name: str
    context_length: int | None
    n_layers: int | None
    chat_template: str | None
    bos_token: str
    eos_token: str
    control_tokens: frozenset[str] = field(default_factory=frozenset)
    """Control / user-defined tokens of the vocabulary (``<|im_start|>``, ``<start_of_turn>``):
    they tell which chat format a file without a template was trained on."""


@dataclass(frozen=True)
class GGUFHeader:
    """The first 24 bytes of a GGUF file, and the file version they were read from."""

    path: Path
    size_bytes: int
    mtime_ns: int
    version: int
    tensor_count: int
    kv_count: int


#: Fixed part of the header: magic, version (uint32), tensor and key counts (uint64 each).
_HEADER = struct.Struct("<4sIQQ")
#: Smallest possible key/value entry (key length, empty key, type, one-byte value) and tensor
#: info (name length, empty name, no dims, type, offset): bounds on what a file can hold.
_MIN_KV_BYTES, _MIN_TENSOR_BYTES = 8 + 4 + 1, 8 + 4 + 4 + 8


def read_gguf_info(path: str | Path) -> GGUFInfo:
    """Validate ``path`` as a complete GGUF file and return its metadata (cached per file
    version: it walks the whole vocabulary)."""
    header = check_gguf_header(path)
    return _read_cached(str(header.path), header.size_bytes, header.mtime_ns)


def clear_metadata_cache() -> None:
    """Forget every file read so far (benchmarks time cold reads; the cache already keys on
    size and modification time, so a changed file is re-read without this)."""
    _read_cached.cache_clear()


def check_gguf_header(path: str | Path) -> GGUFHeader:
    """The cheap checks a model constructor runs (a stat, one 24-byte read): the file exists,
    is a readable regular file, starts like a GGUF file of a version the reader knows, and is
    big enough for the keys and tensors it announces. Truncation further in is found by
    :func:`read_gguf_info`, which runs before llama.cpp opens the file."""
    p = Path(path)
    stat = _stat(p)
    try:
        with p.open("rb") as handle:
            head = handle.read(_HEADER.size)
    except OSError as exc:
        raise _unreadable(p, exc) from exc
    if head[:4] != GGUF_MAGIC:
        raise ModelLoadError(
            f"{p} is not a GGUF file (starts with {head[:4]!r}, expected {GGUF_MAGIC!r})",
            fix="convert the model to GGUF (llama.cpp's convert_hf_to_gguf.py) or download a .gguf",
        )
    if len(head) < _HEADER.size:
        raise _malformed(p, stat.st_size, f"the file ends inside the {_HEADER.size}-byte header")
    _, version, n_tensors, n_kv = _HEADER.unpack(head)
    if version & 0xFFFF == 0:  # written on a big-endian machine (GGUFReader reads those too)
        _, version, n_tensors, n_kv = struct.unpack(">4sIQQ", head)
    _check_counts(p, stat.st_size, version, n_tensors, n_kv)
    return GGUFHeader(p.resolve(), stat.st_size, stat.st_mtime_ns, version, n_tensors, n_kv)


def _check_counts(p: Path, size: int, version: int, n_tensors: int, n_kv: int) -> None:
    from gguf.gguf_reader import READER_SUPPORTED_VERSIONS

    if version not in READER_SUPPORTED_VERSIONS:
        known = ", ".join(map(str, READER_SUPPORTED_VERSIONS))
        raise _malformed(p, size, f"GGUF version {version} (the gguf library reads {known})")
    if _HEADER.size + n_kv * _MIN_KV_BYTES + n_tensors * _MIN_TENSOR_BYTES > size:
        raise _malformed(
            p,
            size,
            f"it announces {n_kv:,} metadata keys and {n_tensors:,} tensors, "
            "more than the file can hold",
        )


def _stat(p: Path) -> os.stat_result:
    """Missing, directory and non-regular paths, named before anything tries to open them (a
    FIFO would block the read, a socket fails with a bare OS error)."""
    try:
        stat = p.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise ModelLoadError(f"model file not found: {p}", fix=_MISSING_FIX) from None
    except OSError as exc:
        raise _unreadable(p, exc) from exc
    if S_ISDIR(stat.st_mode):
        raise ModelLoadError(f"model path is a directory, not a GGUF file: {p}", fix=_MISSING_FIX)
    if not S_ISREG(stat.st_mode):
        raise _unreadable(p, OSError("not a regular file"))
    return stat


def _unreadable(p: Path | str, exc: OSError) -> ModelLoadError:
    return ModelLoadError(
        f"cannot read model file {p}: {exc.strerror or exc}",
        fix="check the file's permissions and that it is a regular file, then " + _MISSING_FIX,
    )


def _malformed(p: Path | str, size: int, problem: str) -> ModelLoadError:
    return ModelLoadError(
        f"{p} is truncated or has a malformed GGUF header ({size:,} bytes): {problem}",
        fix=_BROKEN_FIX + "; a newer GGUF version needs pip install -U gguf llama-cpp-python",
    )


@lru_cache(maxsize=16)
def _read_cached(path: str, size: int, mtime_ns: int) -> GGUFInfo:
    try:
        reader = _fast_reader_class()(path)
        meta = _Metadata(reader.fields)
        arch = meta.text("general.architecture") or "unknown"
        ctx, layers = meta.number(f"{arch}.context_length"), meta.number(f"{arch}.block_count")
        return GGUFInfo(
            path=Path(path),
            size_bytes=size,
            architecture=arch,
            name=meta.text("general.name") or Path(path).stem,
            context_length=ctx,
            n_layers=layers,
            chat_template=meta.text("tokenizer.chat_template"),
            bos_token=meta.token("tokenizer.ggml.bos_token_id"),
            eos_token=meta.token("tokenizer.ggml.eos_token_id"),
            control_tokens=meta.control_tokens(),
        )
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, struct.error) as exc:
        # GGUFReader reports a short file as a failed reshape / view / index of the map
        raise _malformed(path, size, f"{type(exc).__name__}: {exc}") from exc


@lru_cache(maxsize=1)
def _fast_reader_class() -> Any:
    """The reader class, built on first use so that importing this module does not import
    ``gguf``."""
    from gguf import GGUFReader, GGUFValueType

    class FastArrayReader(GGUFReader):  # type: ignore[misc]
        """``gguf.GGUFReader`` with two shortcuts that leave its fields exactly as the plain
        reader builds them (``tests/test_runtime_gguf.py`` compares every part):

        - it walks a plain ndarray over the memory map instead of the ``np.memmap`` subclass
          (same bytes; every slice of an ``np.memmap`` runs Python-level bookkeeping);
        - an array of fixed-size scalars (``token_type``, ``scores``) is read as one view of
          ``alen`` items, then split into the one-item parts the plain reader makes; an
          array of strings (``tokens``, ``merges``) reads each length with ``struct`` and
          slices it, instead of two generic ``_get`` calls and a recursion per element.
        """

        @property  # type: ignore[override]
        def data(self) -> np.ndarray:
            return self._plain

        @data.setter
        def data(self, value: np.ndarray) -> None:
            self._plain = value.view(np.ndarray)

        def _get_field_parts(self, orig_offs: int, raw_type: int) -> tuple[int, list, list, list]:
            if raw_type != GGUFValueType.ARRAY:
                return super()._get_field_parts(orig_offs, raw_type)
            raw_itype = self._get(orig_offs, np.uint32)
            alen = self._get(orig_offs + 4, np.uint64)
            if len(alen) != 1 or int(alen[0]) == 0:  # short file or empty array: as usual
                return super()._get_field_parts(orig_offs, raw_type)
            itype, count, start = GGUFValueType(raw_itype[0]), int(alen[0]), orig_offs + 12
            if itype == GGUFValueType.STRING:
                size, items = self._string_items(start, count)
            elif itype in self.gguf_scalar_to_np:
                size, items = self._scalar_items(start, count, self.gguf_scalar_to_np[itype])
            else:  # nested arrays: the generic walk
                return super()._get_field_parts(orig_offs, raw_type)
            step = len(items) // count  # parts per element: 1 (scalar) or 2 (length, bytes)
            data_idxs = list(range(1 + step, 2 + len(items), step))
            return 12 + size, [raw_itype, alen, *items], data_idxs, [GGUFValueType.ARRAY, itype]

        def _scalar_items(self, offs: int, count: int, nptype: Any) -> tuple[int, list]:
            values = self._get(offs, nptype, count)
            if len(values) != count:
                raise ValueError(f"array of {count:,} items at offset {offs} ends the file")
            return int(values.nbytes), list(values.reshape(count, 1))

        def _string_items(self, offs: int, count: int) -> tuple[int, list]:
            data, end_of_file = self.data, len(self.data)
            if count * 8 > end_of_file - offs:
                raise ValueError(f"array of {count:,} strings at offset {offs} ends the file")
            u64 = np.dtype(np.uint64).newbyteorder(self.byte_order)
            unpack = struct.Struct(("<" if u64.str[0] in "<|" else ">") + "Q").unpack_from
            items: list[np.ndarray] = []
            start, buffer = offs, data.data  # the map's memoryview, for struct
            for _ in range(count):
                (length,) = unpack(buffer, offs)
                items += (data[offs : offs + 8].view(u64), data[offs + 8 : offs + 8 + length])
                offs += 8 + length
            if offs > end_of_file:
                raise ValueError(f"string at offset {offs - length} runs past the end of the file")
            return offs - start, items

    return FastArrayReader


class _Metadata:
    """Typed look-ups over GGUFReader's fields; a value of the wrong type counts as absent."""

    def __init__(self, fields: Any) -> None:
        self.fields = fields

    def text(self, key: str) -> str | None:
        value = self._scalar(key)
        return value if isinstance(value, str) else None

    def number(self, key: str) -> int | None:
        value = self._scalar(key)
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else None

    def _scalar(self, key: str) -> Any:
        found = self.fields.get(key)
        if found is None or len(found.types) != 1:  # absent, or an array
            return None
        return found.contents()

    def _strings(self) -> Any:
        from gguf import GGUFValueType

        tokens = self.fields.get("tokenizer.ggml.tokens")
        ok = tokens is not None and tokens.types[-1:] == [GGUFValueType.STRING]
        return tokens if ok else None

    def token(self, key: str) -> str:
        """The text of the token whose id is stored under ``key`` ("" when there is none)."""
        index, tokens = self.number(key), self._strings()
        if tokens is None or index is None or not 0 <= index < len(tokens.data):
            return ""
        return str(tokens.contents(index))

    def control_tokens(self) -> frozenset[str]:
        tokens, types = self._strings(), self.fields.get("tokenizer.ggml.token_type")
        if tokens is None or types is None or len(types.data) != len(tokens.data):
            return frozenset()
        if not types.data:
            return frozenset()
        kinds = np.concatenate([types.parts[i] for i in types.data])
        marked = np.flatnonzero(np.isin(kinds, _MARKER_TOKEN_TYPES))
        return frozenset(str(tokens.contents(int(i))) for i in marked)
