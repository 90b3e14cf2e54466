"""Log-likelihood of a continuation: how likely the model finds ``text`` after ``prompt``.

:meth:`~orchestrator.llama.engine.Engine.next_token_logprobs` scores one next token; scoring a
continuation of ``n`` tokens through it costs ``n`` requests, each evaluating its last prompt
chunk again. Here the prompt and the continuation are evaluated once, in one
``llama_decode`` per item with the logits of every continuation position, on the engine's
context held alone (:meth:`~orchestrator.llama.engine.Engine.exclusive`: no generation runs
meanwhile, and cached prefixes are forgotten afterwards). The call-or-answer decision of
tool calling scores a few short texts per turn this way
(:mod:`orchestrator.llama.tool_choice`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from orchestrator.errors import ContextOverflowError


def continuation_logprobs(
    engine: Any, items: Sequence[tuple[Sequence[int], Sequence[int]]]
) -> list[float]:
    """For each ``(prompt_tokens, continuation_tokens)``, the summed log-probability of the
    continuation's tokens after the prompt (0.0 for an empty continuation)."""
    import llama_cpp

    results: list[float] = []
    with engine.exclusive() as llama:
        ctx = llama._ctx.ctx
        memory = llama_cpp.llama_get_memory(ctx)
        n_batch = int(llama_cpp.llama_n_batch(ctx))
        for prompt, continuation in items:
            if not continuation:
                results.append(0.0)
                continue
            tokens = [*prompt, *continuation]
            if not prompt or len(tokens) > engine.n_ctx:
                raise ContextOverflowError(len(tokens), engine.n_ctx)
            llama_cpp.llama_memory_seq_rm(memory, 0, -1, -1)
            rows = _decode(ctx, tokens, first_scored=len(prompt) - 1, n_batch=n_batch)
            vocab = llama.n_vocab()
            total = 0.0
            for index, token in zip(rows, continuation, strict=True):
                logits = np.ctypeslib.as_array(
                    llama_cpp.llama_get_logits_ith(ctx, index), shape=(vocab,)
                ).astype(np.float64)
                top = float(logits.max())
                total += float(logits[token]) - top - float(np.log(np.exp(logits - top).sum()))
            results.append(total)
        llama_cpp.llama_memory_seq_rm(memory, 0, -1, -1)
    return results


def _decode(ctx: Any, tokens: Sequence[int], *, first_scored: int, n_batch: int) -> list[int]:
    """Evaluate ``tokens`` in sequence 0 (batches of ``n_batch``) with logits from position
    ``first_scored`` to the one before last; the rows of the last batch holding them (a
    scored span longer than one batch keeps only the last batch's rows, so callers keep
    continuations shorter than ``n_batch``)."""
    import llama_cpp

    if len(tokens) - 1 - first_scored > n_batch:
        raise ValueError(f"a continuation of over {n_batch} tokens cannot be scored at once")
    # the last batch starts early enough to hold every scored position
    last_start = min(first_scored, max(0, len(tokens) - n_batch))
    starts = [*range(0, last_start, n_batch), last_start]
    rows: list[int] = []
    batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
    try:
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else len(tokens)
            rows = []
            for row, pos in enumerate(range(start, end)):
                batch.token[row] = tokens[pos]
                batch.pos[row] = pos
                batch.n_seq_id[row] = 1
                batch.seq_id[row][0] = 0
                scored = first_scored <= pos < len(tokens) - 1
                batch.logits[row] = scored
                if scored:
                    rows.append(row)
            batch.n_tokens = end - start
            code = int(llama_cpp.llama_decode(ctx, batch))
            if code != 0:
                raise RuntimeError(f"llama_decode returned {code} while scoring a continuation")
    finally:
        llama_cpp.llama_batch_free(batch)
    return rows
