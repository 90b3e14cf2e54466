"""One loaded llama.cpp model, shared by every object that names the same file and settings.

The engine owns the ``llama_cpp.Llama`` instance (model, vocabulary, tokenizer) and a context
of ``n_seq`` sequences that one scheduler thread drives (:mod:`orchestrator.llama.scheduler`):
concurrent calls from threads, tasks or ``batch()`` are decoded together, one token for every
sequence per ``llama_decode``. Completion, chat, streaming, grammars and token accounting all
go through :meth:`Engine.stream`.

Prompts are evaluated so that reusing the KV cache never changes an answer: see
:mod:`orchestrator.llama.kvcache`.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.cancellation import current_cancellation
from orchestrator.errors import ContextOverflowError, OptionError
from orchestrator.gguf_info import GGUFInfo
from orchestrator.llama.gbnf import make_grammar
from orchestrator.llama.kvcache import prefill_chunk
from orchestrator.llama.registry import (
    get_engine,
    gpu_backend_available,
    gpu_layers_offloaded,
    load_engine,
    release_engines,
)
from orchestrator.llama.requests import Request
from orchestrator.llama.scheduler import Scheduler
from orchestrator.prompts.safety import defuse


@dataclass(frozen=True)
class EngineKey:
    """Everything that changes how a model is loaded; equal keys share one engine."""

    path: str
    n_ctx: int
    n_gpu_layers: int
    n_threads: int
    n_batch: int
    verbose: bool
    n_seq: int = 1
    """Sequences decoded together (``serve --parallel``): each holds a whole ``n_ctx`` window,
    so the KV cache takes ``n_seq`` times the memory of one."""


@dataclass(frozen=True)
class Sampling:
    """Per-call sampling settings, all given: the defaults and bounds are defined once, in
    ``orchestrator.models.SamplingOptions``; ``orchestrator.llama.base.CallOptions`` checks
    a call's values against them and builds this."""

    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    seed: int | None
    timeout: float | None
    """Wall-clock seconds one generation may run; when hit it ends with ``timeout``."""


@dataclass
class Usage:
    """Token accounting for one generation, filled in as it runs."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    finish_reason: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Engine:
    """A loaded model and the scheduler that runs every generation on its context."""

    key: EngineKey
    info: GGUFInfo
    llama: Any
    gpu_layers_offloaded: int
    generated_tokens: int = 0
    """Tokens generated since load, by every caller: work no caller accounts for shows here."""
    _pieces: dict[int, bytes] = field(default_factory=dict, repr=False)
    _scheduler: Scheduler | None = field(default=None, repr=False)

    @property
    def scheduler(self) -> Scheduler:
        if self._scheduler is None:
            self._scheduler = Scheduler(self, self.key.n_seq)
        return self._scheduler

    @property
    def n_ctx(self) -> int:
        """Usable context of one sequence: llama.cpp may pad the window up, but the Python-side
        token buffer keeps the size that was asked for, so the smaller of the two is the limit."""
        import llama_cpp

        window = int(llama_cpp.llama_n_ctx_seq(self.llama._ctx.ctx))
        return min(window, self.key.n_ctx, int(self.llama.input_ids.shape[0]))

    @property
    def evaluated_tokens(self) -> int:
        """Tokens llama.cpp evaluated since load (prompt and generated), by its own counters
        (``llama_perf_context``; each counts at least 1 once anything ran)."""
        import llama_cpp

        data = llama_cpp.llama_perf_context(self.llama._ctx.ctx)
        return int(data.n_p_eval + data.n_eval)

    @property
    def prefill_chunk(self) -> int:
        """Tokens per prompt batch, and the unit in which a cached prefix is reused."""
        return prefill_chunk(self.llama)

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = True) -> list[int]:
        """Tokens of ``text``; ``special=True`` parses markers like ``<|end|>`` as single tokens."""
        return list(self.llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special))

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` costs, with the model's own tokenizer."""
        return len(self.tokenize(text, special=False))

    def piece(self, token: int) -> bytes:
        """The bytes of one token (memoised: the vocabulary is fixed). Control tokens give
        ``b""``: their text is markup, never part of an answer."""
        cached = self._pieces.get(token)
        if cached is None:
            cached = self._pieces[token] = _token_bytes(self.llama._model.vocab, token)
        return cached

    @functools.cached_property
    def control_tokens(self) -> dict[int, str]:
        """The model's control (and user-defined special) tokens and their text."""
        import llama_cpp

        vocab = self.llama._model.vocab
        flags = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        return {
            token: _token_bytes(vocab, token, special=True).decode("utf-8", "replace")
            for token in range(self.llama.n_vocab())
            if llama_cpp.llama_vocab_get_attr(vocab, token) & flags
        }

    @functools.cached_property
    def end_of_generation_texts(self) -> tuple[str, ...]:
        """Text of every end-of-generation token (``<|im_end|>``, ``<|endoftext|>``, ...): a
        model may also spell them out as plain text, which must end an answer just as well."""
        eog = (t for t in self.control_tokens.items() if self.is_end_of_generation(t[0]))
        return tuple(sorted({text for _, text in eog if text.strip()}))

    @functools.cached_property
    def special_pattern(self) -> re.Pattern[str] | None:
        """A regex matching the text of the model's control tokens (``<|im_end|>``, ``<s>``,
        ...), used to defuse them inside message content (see :meth:`defuse_specials`)."""
        texts = {t for t in self.control_tokens.values() if len(t) >= 3 and t.strip() == t}
        if not texts:
            return None
        return re.compile("|".join(re.escape(t) for t in sorted(texts, key=len, reverse=True)))

    def defuse_specials(self, text: str) -> str:
        """``text`` with every control-token string (this model's and the generic chat-format
        shapes) broken by a zero-width space, so text from users, documents or tools is
        tokenized as text and cannot forge a turn boundary. One rule for every caller:
        :func:`orchestrator.prompts.safety.defuse` with this model's pattern."""
        return defuse(text, self.special_pattern)

    def is_end_of_generation(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self.llama._model.vocab, token))

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[Any]:
        """The ``Llama`` object alone, with no generation running (new ones wait), for code
        that drives llama.cpp directly; every cached prefix is forgotten afterwards."""
        with self.scheduler.paused_idle():
            yield self.llama

    def close(self) -> bool:
        """Free the context, unless a generation is running right now (at exit: then the
        process ends under it anyway); whether it was freed."""
        if not self.scheduler.stop():
            return False
        self.llama.close()
        return True

    def reset(self) -> None:
        """Forget every cached prefix: the next call evaluates its whole prompt."""
        with self.exclusive():
            pass

    def check_fits(self, n_prompt: int) -> None:
        """Raise :class:`ContextOverflowError` when a prompt leaves no room to generate, and
        :class:`OptionError` for a prompt of no tokens (llama.cpp aborts the process when it
        samples with nothing evaluated)."""
        if n_prompt == 0:
            raise OptionError(
                "the prompt is empty: it encodes to no tokens, and this model adds no BOS token",
                fix="send a prompt with some text",
            )
        if n_prompt >= self.n_ctx:
            raise ContextOverflowError(n_prompt, self.n_ctx, n_ctx_train=self.info.context_length)

    def next_token_logprobs(
        self, prompt_tokens: Sequence[int], candidates: Sequence[int]
    ) -> list[float]:
        """Log-probabilities of ``candidates`` as the next token after ``prompt_tokens``.

        Used for scoring (e.g. an LLM reranker reading P("yes")). Reuses the cached prefix
        like generation does, with the same repeatable chunk layout, batched with the rest.
        """
        self.check_fits(len(prompt_tokens))
        request = Request(list(prompt_tokens), None, Usage(), candidates=list(candidates))
        request.cancel = current_cancellation()
        self.scheduler.submit(request)
        try:
            return next(iter(request.results()))  # type: ignore[no-any-return]
        finally:
            request.abandoned = True

    def stream(
        self,
        prompt_tokens: Sequence[int],
        sampling: Sampling,
        *,
        stop: Sequence[str] = (),
        grammar: Any = None,
        reuse_prefix: bool = True,
        usage: Usage | None = None,
    ) -> Iterator[str]:
        """Generate text for ``prompt_tokens``, yielding decoded pieces as they are produced.

        A stop string ends the answer before it, whether it arrives as text (over one or more
        tokens) or as one control token spelling it. Closing the generator (Ctrl-C, ``break``)
        or cancelling the caller's scope frees its sequence at the scheduler's next step.
        """
        usage = usage if usage is not None else Usage()
        self.check_fits(len(prompt_tokens))
        usage.prompt_tokens = len(prompt_tokens)
        request = Request(
            list(prompt_tokens),
            sampling,
            usage,
            stop=tuple(stop),
            grammar=grammar,
            reuse_prefix=reuse_prefix,
            cancel=current_cancellation(),
        )
        self.scheduler.submit(request)
        try:
            yield from request.results()
        finally:
            request.abandoned = True


def _token_bytes(vocab: Any, token: int, special: bool = False) -> bytes:
    import ctypes

    import llama_cpp

    size = 64
    while True:
        buffer = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, special)
        if n >= 0:
            return buffer.raw[:n]
        size = -n


#: Loading, the engine cache and the grammar check live in their own modules; importable
#: from here as they always were.
__all__ = [
    "Engine",
    "EngineKey",
    "Sampling",
    "Usage",
    "get_engine",
    "gpu_backend_available",
    "gpu_layers_offloaded",
    "load_engine",
    "make_grammar",
    "release_engines",
]
