"""Saving and restoring one sequence's reusable KV cache, so a stored conversation that comes
back (another process, another day) does not evaluate its history again.

What is saved is exactly what the engine would reuse: the leading positions a slot computed in
whole, position-aligned prefill chunks (:mod:`orchestrator.llama.kvcache`), with their tokens
(llama.cpp's ``llama_state_seq_save_file``). Loading puts them into an idle slot, where the next
request whose prompt starts with those tokens finds them as it finds any cached prefix. Checking
that a file belongs to this model and settings is the caller's (the session store keeps that
beside the file); here a file whose tokens are not a prefix of the prompt is not used.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.llama.requests import choose_slot

if TYPE_CHECKING:
    from orchestrator.llama.engine import Engine


def save_prefix(engine: Engine, tokens: Sequence[int], path: Path) -> int:
    """Write to ``path`` the cached KV of the longest aligned prefix of ``tokens`` that an idle
    slot holds; return how many tokens were saved (0: no idle slot holds any, nothing written).

    The file is written beside ``path`` and renamed into place, so a process killed while
    saving leaves the previous file whole."""
    import llama_cpp

    def job() -> int:
        scheduler = engine.scheduler
        idle = [s for s in scheduler.slots if s.request is None]
        if not idle:
            return 0
        slot, reuse = choose_slot(idle, [*tokens, -1], engine.prefill_chunk)
        if reuse == 0:
            return 0
        ctx = engine.llama._ctx
        ctx.kv_cache_seq_rm(slot.seq, reuse, -1)  # the tail is never reused: drop it first
        slot.tokens, slot.aligned = slot.tokens[:reuse], reuse
        partial = path.with_name(path.name + ".partial")
        saved = (llama_cpp.llama_token * reuse)(*slot.tokens)
        written = llama_cpp.llama_state_seq_save_file(
            ctx.ctx, str(partial).encode(), slot.seq, saved, reuse
        )
        if written == 0:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise OSError(f"llama.cpp could not write the sequence state to {partial}")
        os.replace(partial, path)
        return reuse

    path.parent.mkdir(parents=True, exist_ok=True)
    return engine.scheduler.call(job)


def load_prefix(engine: Engine, path: Path, prompt: Sequence[int]) -> int:
    """Put the KV saved at ``path`` into the least recently used idle slot when its tokens are
    whole aligned chunks of ``prompt``'s start; return how many tokens it holds (0: not used,
    the slot is left empty; the caller says why it matters)."""
    import llama_cpp

    def job() -> int:
        idle = [s for s in engine.scheduler.slots if s.request is None]
        if not idle or not path.is_file():
            return 0
        slot = min(idle, key=lambda s: s.last_used)
        ctx = engine.llama._ctx
        capacity = engine.n_ctx
        tokens = (llama_cpp.llama_token * capacity)()
        count = ctypes.c_size_t(0)
        read = llama_cpp.llama_state_seq_load_file(
            ctx.ctx, str(path).encode(), slot.seq, tokens, capacity, ctypes.byref(count)
        )
        loaded = list(tokens[: count.value]) if read else []
        whole = bool(loaded) and len(loaded) % engine.prefill_chunk == 0
        if not whole or len(loaded) >= len(prompt) or loaded != list(prompt[: len(loaded)]):
            ctx.kv_cache_seq_rm(slot.seq, 0, -1)
            slot.forget()
            return 0
        slot.tokens, slot.aligned, slot.last_used = loaded, len(loaded), time.monotonic()
        return len(loaded)

    return engine.scheduler.call(job)
