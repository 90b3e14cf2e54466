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

The rule is applied per sequence by the batched engine (:mod:`orchestrator.llama.requests`:
``Slot.aligned`` and ``reusable``): each slot keeps the positions its own aligned chunks
computed, and a new request goes to the idle slot that can reuse the most of them.
"""

from __future__ import annotations

from typing import Any

#: Largest prompt chunk (tokens) evaluated in one batch, and the unit of prefix reuse. On a
#: CPU prompt throughput is flat from about 16 tokens per batch up (docs/benchmarks.md), so a
#: small unit keeps most of a conversation's history reusable at no prefill cost.
PREFILL_CHUNK = 32


def prefill_chunk(llama: Any) -> int:
    """The chunk size for ``llama``: :data:`PREFILL_CHUNK`, or its ``n_batch`` if smaller."""
    return max(1, min(PREFILL_CHUNK, int(llama.n_batch)))
