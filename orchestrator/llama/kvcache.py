"""Repeatable prefix reuse: which part of a llama.cpp KV cache may serve the next prompt.

llama.cpp's arithmetic for a position depends on how the batch that evaluated it was laid out:
the same prompt evaluated in one batch, or as "all but the last token, then the last token"
(what ``Llama.generate`` does when it reuses a cached prompt), gives logits that differ in the
first decimal, and a greedy answer can change with them. Reusing the cache exactly as
llama-cpp-python does therefore makes an answer depend on what was asked before.

Here a prompt is always evaluated in chunks of :func:`prefill_chunk` tokens that start at
absolute positions 0, c, 2c, ..., and only whole chunks computed that way are reused. The cache
then never holds a position that a cold evaluation would have computed differently, so the
same request gives the same answer cold, warm, or after other requests. The cost: up to one
chunk of the cached prompt, and the previous answer (evaluated one token at a time while it
was generated), are evaluated again (measured in docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.cancellation import raise_if_cancelled

#: Largest prompt chunk (tokens) evaluated in one batch, and the unit of prefix reuse. On a
#: CPU prompt throughput is flat from about 16 tokens per batch up (docs/benchmarks.md), so a
#: small unit keeps most of a conversation's history reusable at no prefill cost.
PREFILL_CHUNK = 32


def prefill_chunk(llama: Any) -> int:
    """The chunk size for ``llama``: :data:`PREFILL_CHUNK`, or its ``n_batch`` if smaller."""
    return max(1, min(PREFILL_CHUNK, int(llama.n_batch)))


def common_prefix(llama: Any, tokens: Sequence[int]) -> int:
    """Length of the common prefix of ``tokens`` and the tokens now in the context."""
    cached = llama._input_ids[: llama.n_tokens].tolist()
    n = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        n += 1
    return n


@dataclass
class AlignedPrefix:
    """Bookkeeping for one context: how many leading positions came from whole aligned chunks."""

    aligned: int = 0
    """Leading KV positions computed in whole, position-aligned prefill chunks (reusable)."""
    seen_tokens: int = 0
    """``llama.n_tokens`` when the engine last let go of the context."""

    def acquire(self, llama: Any) -> None:
        """Taking the context: if someone drove the ``Llama`` object directly in between, its
        cache is of unknown layout and nothing of it is reused."""
        if llama.n_tokens != self.seen_tokens:
            self.aligned = 0

    def release(self, llama: Any) -> None:
        self.seen_tokens = llama.n_tokens

    def prefill(self, llama: Any, tokens: Sequence[int], reuse_prefix: bool) -> int:
        """Evaluate the prompt ``tokens`` (lock held); return how many were reused.

        At least the last token is always evaluated (its logits are needed), so the cache and
        the logits are bit for bit what a cold evaluation gives.
        """
        chunk = prefill_chunk(llama)
        reuse = 0
        if reuse_prefix:
            usable = min(common_prefix(llama, tokens), self.aligned, len(tokens) - 1)
            reuse = usable - usable % chunk
        # recurrent models cannot drop a tail of their state: they start over
        if reuse == 0 or not llama._ctx.kv_cache_seq_rm(-1, reuse, -1):
            llama.reset()
            reuse = 0
        self.aligned = reuse
        llama.n_tokens = reuse
        for start in range(reuse, len(tokens), chunk):
            raise_if_cancelled()  # a long prompt stops between chunks, its cache consistent
            end = min(start + chunk, len(tokens))
            llama.eval(list(tokens[start:end]))
            if end - start == chunk:
                self.aligned = end
        return reuse
