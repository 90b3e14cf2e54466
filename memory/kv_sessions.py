"""Saved KV states of stored chat sessions: a conversation that comes back (another process,
another day) evaluates only its new tokens instead of reading its whole history again.

After each turn of a stored session (``orchestrator chat --session``, the server's
``session_id``) the part of the turn's KV cache the engine may reuse (whole position-aligned
chunks of the prompt, :mod:`orchestrator.llama.seqstate`) is written beside the session store,
with a JSON sidecar naming what it was made with. On the first turn of a resumed conversation
the sidecar is checked against the loaded model, its settings and the prompt, and the state is
loaded into an idle slot. A state that does not match or cannot be read costs only speed: it
is ignored with a :class:`SessionCacheWarning` and the turn reads its whole prompt, with the
same answer (the aligned-chunk rule makes cold and warm answers identical).

All the policy is here; the CLI and the server only open a :class:`SessionKV`.

- Where: the folder ``<store file>-kv`` beside the session store. A session's files are named
  by a hash of its id (``<32 hex>.kv`` and ``.json``), so no id can name a path elsewhere, and
  only files named so are ever read or removed.
- Checked: the model file's SHA-256 (hashed once per process per file version), ``n_ctx``, the
  prefill chunk, the GPU layers, the llama-cpp-python version, the hash of the prompt tokens the
  state holds, and the state file's size and SHA-256.
- Crash safety: both files are written beside their place and renamed into it; a state whose
  sidecar does not describe it (a save cut short) is never loaded.
- Disk: the folder is kept under :func:`orchestrator.settings.kv_cache_bytes` by removing the
  least recently used states (saving and loading both count as use).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import struct
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.llama.engine import Engine
from orchestrator.llama.requests import choose_slot
from orchestrator.llama.seqstate import load_prefix, save_prefix
from orchestrator.memory.conversation import prompt_tokens
from orchestrator.memory.history import validate_session_id
from orchestrator.retrieval.storage import sha256_file
from orchestrator.settings import KV_CACHE_ENV, kv_cache_bytes

FORMAT: Literal["orchestrator-session-kv"] = "orchestrator-session-kv"
#: The only names this module reads or removes: a hash, a kind, and ``.partial`` while written.
_OURS = re.compile(r"(?P<stem>[0-9a-f]{32})\.(kv|json)(?P<partial>\.partial)?")
#: A ``.partial`` older than this is left over from a killed save (a live save takes seconds).
STALE_PARTIAL_SECONDS = 3600.0
_SELF_HEALS = "nothing is lost: this turn reads the whole history, and a new state is saved"


class SessionCacheWarning(UserWarning):
    """A saved KV state was not used or not kept; the turn goes on and reads its whole prompt."""


class Sidecar(BaseModel):
    """What a state file was made with, and what it holds (``<stem>.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["orchestrator-session-kv"] = FORMAT
    version: Literal[1] = 1
    session_id: str
    model_path: str
    model_bytes: int
    model_sha256: str
    n_ctx: int
    prefill_chunk: int
    gpu_layers: int
    llama_cpp: str
    tokens: int
    tokens_sha256: str
    kv_bytes: int
    kv_sha256: str


#: Fields a state must share with the running engine besides the model file, and how a person
#: calls them.
_MUST_MATCH = {
    "n_ctx": "context size (n_ctx)",
    "prefill_chunk": "prefill chunk",
    "gpu_layers": "GPU layers",
    "llama_cpp": "llama-cpp-python version",
}


@dataclass(frozen=True)
class Resumed:
    """A turn that started from a saved state: ``loaded`` of its ``prompt_tokens`` came from it."""

    session_id: str
    loaded: int
    prompt_tokens: int

    def describe(self) -> str:
        return (
            f"resumed session {self.session_id}: {self.loaded} of {self.prompt_tokens} prompt "
            "tokens from the saved cache"
        )


class _NotUsed(Exception):
    """Why a saved state is not loaded (said in the warning)."""


def kv_folder(store_path: Path) -> Path:
    """The folder of a session store's KV states: ``<store file name>-kv`` beside it."""
    return store_path.with_name(store_path.name + "-kv")


@dataclass
class SessionKV:
    """The saved KV state of one stored session, for one conversation object."""

    folder: Path
    session_id: str
    cap_bytes: int
    tried: bool = False
    """The first turn looked for a saved state; later turns find the prefix in the slots."""

    @classmethod
    def beside(cls, store_path: Path, session_id: str) -> SessionKV:
        """The state of ``session_id`` of the store at ``store_path``, under the disk cap."""
        return cls(kv_folder(store_path), validate_session_id(session_id), kv_cache_bytes())

    @property
    def stem(self) -> str:
        return hashlib.sha256(self.session_id.encode()).hexdigest()[:32]

    @property
    def kv_path(self) -> Path:
        return self.folder / f"{self.stem}.kv"

    @property
    def sidecar_path(self) -> Path:
        return self.folder / f"{self.stem}.json"

    def resume(self, llm: Any, messages: Sequence[BaseMessage]) -> Resumed | None:
        """On the conversation's first turn, load the saved state when it fits this model and
        prompt; what was loaded, or None (nothing saved, already cached, or not usable: then
        a :class:`SessionCacheWarning` says why)."""
        if self.tried:
            return None
        self.tried = True
        engine = _engine_of(llm)
        if engine is None or not self.sidecar_path.is_file():
            return None
        try:
            return self._load(engine, prompt_tokens(llm, messages))
        except _NotUsed as why:
            _warn(f"the saved KV state of session {self.session_id!r} was not used: {why}")
        return None

    def _load(self, engine: Engine, prompt: list[int]) -> Resumed | None:
        sidecar = self._read_sidecar()
        _check_identity(sidecar, engine)
        n = sidecar.tokens
        if n >= len(prompt) or tokens_sha256(prompt[:n]) != sidecar.tokens_sha256:
            raise _NotUsed(
                "its tokens are not the start of this turn's prompt (the system prompt, or the "
                "history the memory shows, changed since it was saved)"
            )
        if cached_prefix(engine, prompt) >= n:
            return None
        try:
            size, digest = self.kv_path.stat().st_size, sha256_file(self.kv_path)
        except OSError as exc:
            raise _NotUsed(f"its state file cannot be read ({exc.strerror or exc})") from exc
        if (size, digest) != (sidecar.kv_bytes, sidecar.kv_sha256):
            raise _NotUsed(
                f"its state file {self.kv_path.name} is not the one its sidecar describes "
                "(a save was cut short, or the file was changed)"
            )
        loaded = load_prefix(engine, self.kv_path, prompt)
        if loaded == 0:
            raise _NotUsed(f"llama.cpp could not load {self.kv_path.name}")
        with contextlib.suppress(OSError):
            os.utime(self.kv_path)  # recently used: evicted last
        return Resumed(self.session_id, loaded, len(prompt))

    def _read_sidecar(self) -> Sidecar:
        try:
            return Sidecar.model_validate_json(self.sidecar_path.read_bytes())
        except OSError as exc:
            raise _NotUsed(f"{self.sidecar_path} cannot be read ({exc.strerror or exc})") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the file"
            problem = f"{self.sidecar_path.name} is not valid ({where}: {first['msg']})"
            raise _NotUsed(problem) from exc

    def save(self, llm: Any, messages: Sequence[BaseMessage]) -> int:
        """After a turn, write the reusable KV of its prompt (``messages``) and its sidecar,
        then keep the folder under the cap; the tokens saved (0: nothing to save). A failure
        is a warning: the session itself is stored either way."""
        engine = _engine_of(llm)
        if engine is None or self.cap_bytes == 0:
            return 0
        try:
            return self._save(engine, prompt_tokens(llm, messages))
        except OSError as exc:
            _warn(
                f"the KV state of session {self.session_id!r} could not be saved "
                f"({exc.strerror or exc})",
                fix=f"check the space and permissions of {self.folder}; the conversation itself "
                "is stored, only the next resume reads its whole history",
            )
        return 0

    def _save(self, engine: Engine, prompt: list[int]) -> int:
        identity = _identity(engine)
        saved = save_prefix(engine, prompt, self.kv_path)
        if saved == 0:
            return 0
        sidecar = Sidecar(
            session_id=self.session_id,
            tokens=saved,
            tokens_sha256=tokens_sha256(prompt[:saved]),
            kv_bytes=self.kv_path.stat().st_size,
            kv_sha256=sha256_file(self.kv_path),
            **identity,
        )
        partial = self.sidecar_path.with_name(self.sidecar_path.name + ".partial")
        partial.write_text(sidecar.model_dump_json(indent=1), encoding="utf-8")
        os.replace(partial, self.sidecar_path)
        if self.stem in evict(self.folder, self.cap_bytes, keep=self.stem):
            _warn(
                f"the KV state of session {self.session_id!r} ({sidecar.kv_bytes:,} bytes) is "
                f"larger than the cap of {self.cap_bytes:,} bytes; it was not kept",
                fix=f"raise {KV_CACHE_ENV} to keep long sessions' states",
            )
            return 0
        return saved

    def forget(self) -> None:
        """Remove this session's saved state (its history was cleared)."""
        for path in (self.sidecar_path, self.kv_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def evict(folder: Path, cap_bytes: int, keep: str | None = None) -> list[str]:
    """Remove whole states, least recently used first, until the states in ``folder`` take at
    most ``cap_bytes``; ``keep`` (a stem) goes last. Leftover ``.partial`` files of killed saves
    are removed once stale. Returns the stems removed."""
    sizes: dict[str, int] = {}
    used: dict[str, int] = {}
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    stale = time.time() - STALE_PARTIAL_SECONDS
    for entry in entries:
        match = _OURS.fullmatch(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        try:
            stat = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # another process evicted it meanwhile
            continue
        if match["partial"] and stat.st_mtime < stale:
            _remove(Path(entry.path))
            continue
        stem = match["stem"]
        sizes[stem] = sizes.get(stem, 0) + stat.st_size
        used[stem] = max(used.get(stem, 0), stat.st_mtime_ns)
    total = sum(sizes.values())
    removed = []
    for stem in sorted(sizes, key=lambda s: (s == keep, used[s])):
        if total <= cap_bytes:
            break
        for name in (f"{stem}.json", f"{stem}.kv", f"{stem}.kv.partial", f"{stem}.json.partial"):
            _remove(folder / name)
        total -= sizes[stem]
        removed.append(stem)
    return removed


def cached_prefix(engine: Engine, prompt: Sequence[int]) -> int:
    """Tokens of ``prompt`` an idle slot of ``engine`` can already reuse: no need to load."""

    def job() -> int:
        idle = [s for s in engine.scheduler.slots if s.request is None]
        return choose_slot(idle, prompt, engine.prefill_chunk)[1] if idle else 0

    return engine.scheduler.call(job)


def tokens_sha256(tokens: Sequence[int]) -> str:
    """SHA-256 of token ids (little-endian int32), the same on every machine."""
    return hashlib.sha256(struct.pack(f"<{len(tokens)}i", *tokens)).hexdigest()


def model_sha256(path: Path) -> str:
    """The model file's SHA-256, computed once per process per file version (path, size and
    modification time): hashing gigabytes on every turn would cost more than it saves."""
    stat = path.stat()
    return _hash_once(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _hash_once(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def _identity(engine: Engine) -> dict[str, Any]:
    """What a state made now must record, and a state loaded now must match."""
    import llama_cpp

    path = Path(engine.key.path)
    return {
        "model_path": str(path),
        "model_bytes": path.stat().st_size,
        "model_sha256": model_sha256(path),
        "n_ctx": engine.n_ctx,
        "prefill_chunk": engine.prefill_chunk,
        "gpu_layers": engine.gpu_layers_offloaded,
        "llama_cpp": llama_cpp.__version__,
    }


def _check_identity(sidecar: Sidecar, engine: Engine) -> None:
    try:
        now = _identity(engine)
    except OSError as exc:
        raise _NotUsed(f"the model file cannot be hashed ({exc.strerror or exc})") from exc
    if sidecar.model_sha256 != now["model_sha256"]:
        raise _NotUsed(
            f"it was made with another model file ({sidecar.model_path}, SHA-256 "
            f"{sidecar.model_sha256[:12]}...), and this turn runs {now['model_path']} "
            f"(SHA-256 {now['model_sha256'][:12]}...)"
        )
    for name, label in _MUST_MATCH.items():
        saved, current = getattr(sidecar, name), now[name]
        if saved != current:
            raise _NotUsed(f"it was made with {label} {saved}, and this turn runs with {current}")


def _engine_of(llm: Any) -> Engine | None:
    """The llama.cpp engine of a local model; a served model keeps no state here."""
    engine = getattr(llm, "engine", None)
    return engine if isinstance(engine, Engine) else None


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _warn(message: str, fix: str = _SELF_HEALS) -> None:
    warnings.warn(SessionCacheWarning(f"{message}; {fix}"), stacklevel=4)
