"""Read and validate a GGUF file's header before llama.cpp sees it.

llama.cpp can abort the process on some malformed files; checking the magic, the header and that
every tensor lies inside the file turns those into a :class:`ModelLoadError` with a fix.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from orchestrator.errors import ModelLoadError

GGUF_MAGIC = b"GGUF"


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


def read_gguf_info(path: str | Path) -> GGUFInfo:
    """Validate ``path`` as a complete GGUF file and return its metadata."""
    p = Path(path)
    stat = _stat(p)
    return _read_cached(str(p.resolve()), stat.st_size, stat.st_mtime_ns)


def _stat(p: Path) -> os.stat_result:
    fix = "pass an existing .gguf file with --model / model_path, or unset ORCHESTRATOR_MODEL"
    if not p.exists():
        raise ModelLoadError(f"model file not found: {p}", fix=fix)
    if p.is_dir():
        raise ModelLoadError(f"model path is a directory, not a GGUF file: {p}", fix=fix)
    try:
        with p.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelLoadError(f"cannot read model file {p}: {exc.strerror}", fix=fix) from exc
    if magic != GGUF_MAGIC:
        raise ModelLoadError(
            f"{p} is not a GGUF file (starts with {magic!r}, expected {GGUF_MAGIC!r})",
            fix="convert the model to GGUF (llama.cpp's convert_hf_to_gguf.py) or download a .gguf",
        )
    return p.stat()


_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9


class _Cursor:
    """Sequential little-endian reader over a memory map; raises on reading past the end."""

    def __init__(self, buf: mmap.mmap) -> None:
        self.buf, self.pos = buf, 0

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise ValueError(f"header ends early at byte {self.pos:,}")
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        n = self.unpack("<Q")
        if self.pos + n > len(self.buf):
            raise ValueError(f"string of {n:,} bytes runs past the end of the file")
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def value(self, kind: int, keep: bool = True) -> Any:
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind, n = self.unpack("<I"), self.unpack("<Q")
            if item_kind in _SCALARS and not keep:  # skip fixed-size arrays without decoding
                self.pos += n * struct.calcsize(_SCALARS[item_kind])
                return None
            items = [self.value(item_kind) for _ in range(n)]
            return items if keep else None
        if kind not in _SCALARS:
            raise ValueError(f"unknown metadata value type {kind}")
        return self.unpack(_SCALARS[kind])


def _tensor_bytes(dims: list[int], ggml_type: int) -> int:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    return math.prod(dims) // block * type_size


def _parse(buf: mmap.mmap) -> tuple[dict[str, Any], int]:
    """Metadata and the byte offset where the last tensor ends."""
    cur = _Cursor(buf)
    cur.pos = 4
    version = cur.unpack("<I")
    if version not in (2, 3):
        raise ValueError(f"unsupported GGUF version {version}")
    n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
    meta: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string()
        keep = not key.startswith(("tokenizer.ggml.merges", "tokenizer.ggml.token_type"))
        meta[key] = cur.value(cur.unpack("<I"), keep=keep)
    end = 0
    for _ in range(n_tensors):
        cur.string()
        dims = [cur.unpack("<Q") for _ in range(cur.unpack("<I"))]
        ggml_type, offset = cur.unpack("<I"), cur.unpack("<Q")
        end = max(end, offset + _tensor_bytes(dims, ggml_type))
    align = int(meta.get("general.alignment", 32))
    if align <= 0:
        raise ValueError(f"general.alignment is {align}, it must be positive")
    data_start = (cur.pos + align - 1) // align * align
    return meta, data_start + end


@lru_cache(maxsize=16)
def _read_cached(path: str, size: int, mtime_ns: int) -> GGUFInfo:
    broken = "re-download or re-convert the file; it is truncated or corrupted"
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            meta, end = _parse(buf)
    except (ValueError, KeyError, struct.error, OverflowError) as exc:
        raise ModelLoadError(f"{path} has a malformed GGUF header: {exc}", fix=broken) from exc
    if end > size:
        raise ModelLoadError(
            f"{path} is truncated: its tensors need {end:,} bytes but the file has {size:,}",
            fix=broken,
        )
    arch = str(meta.get("general.architecture", "unknown"))
    tokens = meta.get("tokenizer.ggml.tokens") or []

    def token(key: str) -> str:
        index = meta.get(key)
        return str(tokens[index]) if isinstance(index, int) and 0 <= index < len(tokens) else ""

    ctx, layers = meta.get(f"{arch}.context_length"), meta.get(f"{arch}.block_count")
    return GGUFInfo(
        path=Path(path),
        size_bytes=size,
        architecture=arch,
        name=str(meta.get("general.name") or Path(path).stem),
        context_length=int(ctx) if ctx is not None else None,
        n_layers=int(layers) if layers is not None else None,
        chat_template=meta.get("tokenizer.chat_template"),
        bos_token=token("tokenizer.ggml.bos_token_id"),
        eos_token=token("tokenizer.ggml.eos_token_id"),
    )
