"""Crash-safe files for the index directory: atomic writes, checksums, the manifest.

A save writes every part under a new *generation* name (``chunks.7.jsonl``), then atomically
replaces ``manifest.json`` to point at them, then deletes older generations. A crash before the
manifest swap leaves the previous manifest and its files intact; a crash after it leaves the
new ones. Nothing is pickled: FAISS's own format, ``.npy``/``.npz`` read with
``allow_pickle=False``, and JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.errors import DataError

FORMAT_NAME = "orchestrator-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REBUILD_FIX = "rebuild it: orchestrator index PATH... --index DIR (or build_index(...))"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp)`` on a temporary file beside ``path``, fsync it, then rename it over."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def write_json(path: Path, payload: Any) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")

    atomic_write(path, write)


def write_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.save(handle, array, allow_pickle=False)

    atomic_write(path, write)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]

    atomic_write(path, write)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    atomic_write(path, write)


def stamp(directory: Path) -> tuple[int, int, int] | None:
    """Identity of the manifest file now (inode, mtime, size), ``None`` if absent: one
    ``stat`` tells a reader whether a save happened since it read the index (a save renames a
    new manifest into place, so the inode changes even where mtimes are coarse)."""
    try:
        info = (directory / MANIFEST).stat()
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest, checked for format and version; a clear error for anything else."""
    path = directory / MANIFEST
    if not path.is_file():
        check_finished(directory)
        raise DataError(
            f"{directory} is not an index directory (no {MANIFEST})",
            fix="build one first: orchestrator index PATH... --index DIR",
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is corrupted: {exc}", fix=REBUILD_FIX) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise DataError(f"{path} is not an Orchestrator index manifest", fix=REBUILD_FIX)
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise DataError(
            f"{directory} has index format version {version}; this Orchestrator reads "
            f"version {FORMAT_VERSION}",
            fix=REBUILD_FIX,
        )
    return manifest


def inside(directory: Path, name: object) -> Path:
    """``directory / name`` for a part-file name read from a manifest, refused unless it is a
    plain file name that stays in ``directory`` (a manifest is data: ``../x`` or an absolute
    path in it must not make us read, or later delete, files elsewhere)."""
    text = str(name)
    path = directory / text
    base = directory.resolve()
    plain = isinstance(name, str) and text not in ("", ".", "..") and Path(text).name == text
    if not plain or path.resolve().parent != base:
        raise DataError(
            f"{directory / MANIFEST} names the file {text!r}, which is outside the index folder "
            f"{directory}",
            fix="index manifests name plain files in their own folder; restore the manifest "
            "from a good copy, or " + REBUILD_FIX,
        )
    return path


def verified(directory: Path, entry: dict[str, Any], verify: bool = True) -> Path:
    """Path of a manifest file entry, after checking it stays in ``directory``, exists and
    (optionally) matches its checksum."""
    if not isinstance(entry, dict):
        raise DataError(f"{directory / MANIFEST} has a bad file entry {entry!r}", fix=REBUILD_FIX)
    path = inside(directory, entry.get("name"))
    if not path.is_file():
        raise DataError(f"index file {path} is missing", fix=REBUILD_FIX)
    if verify and sha256_file(path) != entry["sha256"]:
        raise DataError(f"index file {path} is corrupted (checksum mismatch)", fix=REBUILD_FIX)
    return path


def load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (ValueError, OSError) as exc:
        raise DataError(f"index file {path} is unreadable: {exc}", fix=REBUILD_FIX) from None


def load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError) as exc:
        raise DataError(f"index file {path} is unreadable: {exc}", fix=REBUILD_FIX) from None


PART_FILE = re.compile(
    r"^\.?(chunks|ids|vectors|dense|bm25|vocab)\.\d+\.(jsonl|npy|faiss|npz|json)"
)


LOCK_FILE = ".lock"


@contextlib.contextmanager
def write_lock(directory: Path) -> Iterator[None]:
    """One writer at a time per index directory (an advisory lock on ``.lock``, released by
    the operating system if the writer dies)."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(
                f"another process is writing the index {directory}",
                fix="wait for it to finish, then run your change again",
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def has_parts(directory: Path) -> bool:
    """Whether ``directory`` holds index part files (of any generation, or temp files)."""
    return any(p.is_file() and PART_FILE.match(p.name) for p in directory.iterdir())


def check_finished(directory: Path) -> None:
    """Part files without a manifest are a build that stopped half way: say so, and how."""
    if directory.is_dir() and not (directory / MANIFEST).exists() and has_parts(directory):
        raise DataError(
            f"{directory} holds an unfinished index build (part files but no manifest)",
            fix=f"remove it (rm -r {directory}) and build again",
        )


def remove_stale(directory: Path, keep: set[str]) -> None:
    """Delete our part files of older generations, and temp files, not named in ``keep``."""
    for path in directory.iterdir():
        if path.is_file() and path.name not in keep and PART_FILE.match(path.name):
            with contextlib.suppress(OSError):
                path.unlink()


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"index file {path} is corrupted: {exc}", fix=REBUILD_FIX) from None


def read_jsonl_rows(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"index file {path} is corrupted: {exc}", fix=REBUILD_FIX) from None
