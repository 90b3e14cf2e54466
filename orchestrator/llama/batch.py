"""llama.cpp's batch and multi-sequence context, as the batched engine drives them.

A ``llama_cpp.Llama`` object creates a context for one sequence. The engine keeps that object
(model, vocabulary, tokenizer) and gives it a context holding ``n_seq`` sequences instead, each
with its own KV cells (``kv_unified=False``: llama.cpp gives every sequence a window of
``n_ctx / n_seq`` cells, so each still holds a whole ``n_ctx`` window). Every sequence of a
:class:`TokenBatch` is then decoded together in one ``llama_decode``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any


def use_sequences(llama: Any, n_ctx: int, n_seq: int) -> None:
    """Give ``llama`` a context of ``n_seq`` sequences of ``n_ctx`` tokens each, replacing the
    one-sequence context it was loaded with (freed first, so peak memory stays one context)."""
    import llama_cpp
    from llama_cpp import _internals

    params = llama.context_params
    params.n_ctx = n_ctx * n_seq
    params.n_seq_max = n_seq
    params.kv_unified = False
    llama._ctx.close()
    context = _internals.LlamaContext(model=llama._model, params=params, verbose=llama.verbose)
    llama._ctx = llama._stack.enter_context(contextlib.closing(context))
    if int(llama_cpp.llama_n_seq_max(context.ctx)) < n_seq:
        raise RuntimeError(f"llama.cpp made a context of fewer than {n_seq} sequences")


class TokenBatch:
    """One ``llama_batch`` of up to ``capacity`` tokens, each in one sequence."""

    def __init__(self, capacity: int) -> None:
        import llama_cpp

        self.capacity = capacity
        self.batch = llama_cpp.llama_batch_init(capacity, 0, 1)
        self.rows: list[Any] = []
        """Who asked for each row's logits (None for rows without), in batch order."""

    def close(self) -> None:
        import llama_cpp

        if self.batch is not None:
            llama_cpp.llama_batch_free(self.batch)
            self.batch = None

    def clear(self) -> None:
        self.batch.n_tokens = 0
        self.rows = []

    def add(self, tokens: Sequence[int], start: int, seq: int, owner: Any) -> None:
        """Append ``tokens`` at positions ``start, start+1, ...`` of sequence ``seq``; only the
        last one asks for logits, and ``owner`` is recorded as the one reading them."""
        batch = self.batch
        n = int(batch.n_tokens)
        if n + len(tokens) > self.capacity:
            raise ValueError(f"{n + len(tokens)} tokens do not fit a batch of {self.capacity}")
        for i, token in enumerate(tokens):
            row = n + i
            batch.token[row] = token
            batch.pos[row] = start + i
            batch.n_seq_id[row] = 1
            batch.seq_id[row][0] = seq
            last = i == len(tokens) - 1
            batch.logits[row] = last
            self.rows.append(owner if last else None)
        batch.n_tokens = n + len(tokens)

    def decode(self, ctx: Any) -> None:
        """Evaluate the batch; llama.cpp's failure codes become a ``RuntimeError`` (the engine
        failure that callers retry)."""
        import llama_cpp

        code = int(llama_cpp.llama_decode(ctx, self.batch))
        if code != 0:
            reason = {1: "no room in the KV cache", 2: "aborted"}.get(code, "failed")
            raise RuntimeError(f"llama_decode returned {code} ({reason})")
