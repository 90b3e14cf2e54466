"""Continuous batching: one thread drives every request on one llama.cpp context.

Each step (1) admits waiting requests to free slots, reusing the longest cached prefix,
(2) drops requests whose caller went away, (3) decodes one token for every generating
sequence in one ``llama_decode`` and samples each with its own sampler, and (4) prefills one
position-aligned chunk of one new prompt, in a ``llama_decode`` of its own. So a request never
waits behind another's long prompt for more than one chunk, and a prompt is always evaluated in
the chunk layout a lone cold call uses: what the cache keeps is bit for bit what a cold call
would compute (see :mod:`orchestrator.llama.kvcache`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from orchestrator.llama.batch import TokenBatch
from orchestrator.llama.requests import DONE, Request, Slot, choose_slot, reusable
from orchestrator.llama.stops import TextAssembler

if TYPE_CHECKING:
    from orchestrator.llama.engine import Engine

T = TypeVar("T")


def make_sampler(llama: Any, sampling: Any, grammar: Any) -> Any:
    """The sampler chain ``Llama`` builds (penalties, grammar, then greedy or top-k/top-p/
    min-p/temperature/dist), with this request's own seed: a random one unless it set one."""
    from llama_cpp import _internals

    seeded = sampling.seed is not None and sampling.seed >= 0
    seed = sampling.seed if seeded else random.getrandbits(31)
    chain = _internals.LlamaSampler()
    chain.add_penalties(llama.n_vocab(), llama.last_n_tokens_size, sampling.repeat_penalty, 0, 0)
    if grammar is not None:
        chain.add_grammar(llama._model, grammar)
    if sampling.temperature == 0:
        chain.add_greedy()
        return chain
    chain.add_top_k(sampling.top_k)
    chain.add_typical(1.0, 1)
    chain.add_top_p(sampling.top_p, 1)
    chain.add_min_p(sampling.min_p, 1)
    chain.add_temp(sampling.temperature)
    chain.add_dist(seed)
    return chain


class Scheduler:
    """The slots of one engine and the thread that batches their work."""

    def __init__(self, engine: Engine, n_seq: int) -> None:
        self.engine = engine
        self.slots = [Slot(seq) for seq in range(n_seq)]
        self.waiting: collections.deque[Request] = collections.deque()
        self.cond = threading.Condition()
        self.paused = 0
        self.stopped = False
        self.jobs: collections.deque[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self.jobs = collections.deque()
        self.stats = dict.fromkeys(
            (
                "decode_steps",
                "decoded_tokens",
                "largest_batch",
                "prefills",
                "prefill_steps",
                "shared_prefixes",
            ),
            0,
        )
        """Counters since load: decode steps, the tokens they decoded, the most sequences one
        step decoded together, prefill chunks and the steps that evaluated them (several prompts'
        chunks share one), and prompts started from another sequence's
        cache (``/metrics`` and tests read them)."""
        self.thread: threading.Thread | None = None
        self.batch: TokenBatch | None = None

    # --- the callers' side ----------------------------------------------------------------

    def submit(self, request: Request) -> None:
        with self.cond:
            self.waiting.append(request)
            self._wake()

    def call(self, job: Callable[[], T]) -> T:
        """Run ``job`` in the scheduler thread between two steps (it may use the context and
        the idle slots); its result, or its exception raised here."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self.cond:
            self.jobs.append((job, future))
            self._wake()
        return future.result()

    def _wake(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="llama-batch", daemon=True)
            self.thread.start()
        self.cond.notify_all()

    @property
    def active(self) -> list[Request]:
        return [s.request for s in self.slots if s.request is not None]

    def occupancy(self) -> tuple[int, int]:
        """(slots generating, requests waiting for a slot)."""
        with self.cond:
            return len(self.active), len(self.waiting)

    @contextlib.contextmanager
    def paused_idle(self) -> Iterator[None]:
        """Hold the context with no request running (new ones wait); afterwards every cache
        is forgotten, since the holder may have changed the context in any way."""
        with self.cond:
            self.paused += 1
            self.cond.wait_for(lambda: not self.active)
            try:
                yield
            finally:
                self.forget_all()
                self.paused -= 1
                self.cond.notify_all()

    def forget_all(self) -> None:
        """Drop every slot's cache, and the ``Llama`` object's own idea of its cache."""
        self.engine.llama._ctx.kv_cache_clear()
        self.engine.llama.reset()
        for slot in self.slots:
            slot.forget()

    # --- the scheduler thread ---------------------------------------------------------------

    def stop(self) -> bool:
        """Stop the thread for good, if it is between steps with nothing running."""
        if not self.cond.acquire(blocking=False):
            return False
        try:
            if self.active:
                return False
            self.stopped = True
            self.cond.notify_all()
            return True
        finally:
            self.cond.release()

    def _run(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(
                    lambda: (
                        self.stopped
                        or self.active
                        or self.jobs
                        or (self.waiting and not self.paused)
                    )
                )
                if self.stopped:
                    return
                try:
                    self._step()
                except BaseException as exc:
                    self._fail_all(exc)
                self.cond.notify_all()

    def _step(self) -> None:
        while self.jobs:
            job, future = self.jobs.popleft()
            try:
                future.set_result(job())
            except Exception as exc:  # the caller hears of it
                future.set_exception(exc)
        for request in [r for r in self.waiting if r.gone()]:
            self.waiting.remove(request)
        if not self.paused:
            self._admit()
        for request in self.active:
            if request.gone():
                self._release(request)
        decoding = [r for r in self.active if r.pending is not None]
        if decoding:
            self._decode(decoding)
        prefilling = [r for r in self.active if r.prefilling]
        if prefilling:
            self._prefill(self._same_chunks(prefilling))

    def _admit(self) -> None:
        """Give waiting requests free slots, in order; one whose prompt shares more with a
        prompt still being prefilled waits for that prefill and then copies it."""
        chunk = self.engine.prefill_chunk
        later: list[Request] = []
        while self.waiting:
            idle = [s for s in self.slots if s.request is None]
            if not idle:
                break
            request = self.waiting.popleft()
            if request.reuse_prefix and self._coming(request, chunk):
                later.append(request)
                continue
            self._place(request, idle, chunk)
        self.waiting.extendleft(reversed(later))

    def _coming(self, request: Request, chunk: int) -> bool:
        """Whether a request now prefilling will soon hold more of ``request``'s prompt than
        any slot holds now (then copying it beats evaluating the same tokens again)."""
        available = max((reusable(s, request.prompt, chunk) for s in self.slots), default=0)
        for other in self.active:
            if other.prefilling and other.slot is not None:
                shared = reusable(Slot(-1, other.prompt, len(other.prompt)), request.prompt, chunk)
                if shared > max(available, other.slot.aligned):
                    return True
        return False

    def _place(self, request: Request, idle: list[Slot], chunk: int) -> None:
        """Start ``request`` in the idle slot that reuses the most, or in a fresh one with the
        cached prefix of a running request copied in (``llama_memory_seq_cp``)."""
        ctx = self.engine.llama._ctx
        slot, reuse = choose_slot(idle, request.prompt, chunk)
        busy = [s for s in self.slots if s.request is not None]
        source = max(busy, key=lambda s: reusable(s, request.prompt, chunk), default=None)
        shared = reusable(source, request.prompt, chunk) if source is not None else 0
        if not request.reuse_prefix:
            reuse = shared = 0
        if source is not None and shared > reuse:
            # across KV streams llama.cpp copies whole sequences only: copy, then cut
            ctx.kv_cache_seq_cp(source.seq, slot.seq, -1, -1)
            ctx.kv_cache_seq_rm(slot.seq, shared, -1)
            slot.tokens, reuse = source.tokens[:shared], shared
            self.stats["shared_prefixes"] += 1
        # recurrent models cannot drop a tail of their state: they start over
        elif reuse == 0 or not ctx.kv_cache_seq_rm(slot.seq, reuse, -1):
            ctx.kv_cache_seq_rm(slot.seq, 0, -1)
            reuse = 0
        slot.tokens, slot.aligned = slot.tokens[:reuse], reuse
        slot.request, request.slot, request.evaluated = request, slot, reuse
        request.usage.cached_tokens = reuse
        self._start(request)

    def _start(self, request: Request) -> None:
        if request.candidates is not None:
            return  # scoring: no sampler, no budget
        engine = self.engine
        request.budget = min(request.sampling.max_tokens, engine.n_ctx - len(request.prompt))
        request.usage.finish_reason = "length"
        request.sampler = make_sampler(engine.llama, request.sampling, request.grammar)
        request.text = TextAssembler(request.stop)

    def _batch(self) -> TokenBatch:
        if self.batch is None:
            chunks = self.engine.prefill_chunk * len(self.slots)
            size = max(len(self.slots), min(chunks, int(self.engine.llama.n_batch)))
            self.batch = TokenBatch(size)
        self.batch.clear()
        return self.batch

    def _decode(self, requests: list[Request]) -> None:
        batch = self._batch()
        for request in requests:
            slot = request.slot
            assert slot is not None and request.pending is not None
            batch.add([request.pending], len(slot.tokens), slot.seq, request)
        self._evaluate(batch, requests)
        stats = self.stats
        stats["decode_steps"] += 1
        stats["decoded_tokens"] += len(requests)
        stats["largest_batch"] = max(stats["largest_batch"], len(requests))
        for row, request in enumerate(batch.rows):
            assert request is not None and request.slot is not None
            request.slot.tokens.append(batch.batch.token[row])
            request.pending = None
            self._take(request, row)

    def _same_chunks(self, prefilling: list[Request]) -> list[Request]:
        """The first prefilling request and those whose next chunk has as many tokens (up to
        ``n_batch``): llama.cpp then evaluates each sequence's chunk whole, in one ubatch, as
        a lone call does; chunks of other lengths would be split to equal shares."""
        chunk = self.engine.prefill_chunk

        def size(request: Request) -> int:
            return min(chunk, len(request.prompt) - request.evaluated)

        first = size(prefilling[0])
        room = max(1, int(self.engine.llama.n_batch) // first)
        return [r for r in prefilling if size(r) == first][:room]

    def _prefill(self, requests: list[Request]) -> None:
        """One aligned chunk of each request's prompt, in one ``llama_decode`` (the cache
        reuse left each at a chunk boundary)."""
        chunk = self.engine.prefill_chunk
        batch = self._batch()
        spans = []
        for request in requests:
            assert request.slot is not None
            start = request.evaluated
            end = min(start + chunk, len(request.prompt))
            batch.add(request.prompt[start:end], start, request.slot.seq, request)
            spans.append((request, start, end, batch.batch.n_tokens - 1))
        self._evaluate(batch, requests)
        self.stats["prefills"] += len(requests)
        self.stats["prefill_steps"] += 1
        for request, start, end, row in spans:
            slot = request.slot
            assert slot is not None
            slot.tokens.extend(request.prompt[start:end])
            if end - start == chunk and slot.aligned == start:
                slot.aligned = end
            request.evaluated = end
            if end == len(request.prompt):
                self._take(request, row)

    def _evaluate(self, batch: TokenBatch, requests: list[Request]) -> None:
        try:
            batch.decode(self.engine.llama._ctx.ctx)
        except RuntimeError as exc:
            for request in requests:
                assert request.slot is not None
                self.engine.llama._ctx.kv_cache_seq_rm(request.slot.seq, 0, -1)
                request.slot.forget()
                request.events.put(exc)
                self._release(request)
            raise _Handled from exc

    def _take(self, request: Request, row: int) -> None:
        """The logits of ``row`` are ``request``'s: score them, or sample its next token."""
        if request.candidates is not None:
            request.events.put(self._logprobs(row, request.candidates))
            self._finish(request, None)
            return
        engine = self.engine
        token = request.sampler.sample(engine.llama._ctx, row)
        stop_set = set(request.stop)
        if engine.is_end_of_generation(token) or engine.control_tokens.get(token) in stop_set:
            self._finish(request, "stop")
            return
        usage = request.usage
        usage.completion_tokens += 1
        engine.generated_tokens += 1
        assert request.text is not None
        piece = request.text.feed(engine.piece(token))
        if piece:
            request.events.put(piece)
        if request.text.stopped:
            self._finish(request, "stop", tail=False)
        elif request.deadline is not None and time.monotonic() > request.deadline:
            self._finish(request, "timeout")
        elif usage.completion_tokens >= request.budget:
            self._finish(request, "length")
        else:
            request.pending = token

    def _logprobs(self, row: int, candidates: Any) -> list[float]:
        import llama_cpp
        import numpy as np

        n_vocab = self.engine.llama.n_vocab()
        pointer = llama_cpp.llama_get_logits_ith(self.engine.llama._ctx.ctx, row)
        logits = np.ctypeslib.as_array(pointer, shape=(n_vocab,)).astype(np.float64)
        top = float(logits.max())
        log_z = top + math.log(float(np.exp(logits - top).sum()))
        return [float(logits[c]) - log_z for c in candidates]

    def _finish(self, request: Request, reason: str | None, tail: bool = True) -> None:
        if reason is not None:
            request.usage.finish_reason = reason
        if tail and request.text is not None:
            rest = request.text.finish()
            if rest:
                request.events.put(rest)
        request.events.put(DONE)
        self._release(request)

    def _release(self, request: Request) -> None:
        slot = request.slot
        if slot is not None:
            slot.request, slot.last_used = None, time.monotonic()
        request.slot = None
        if request.sampler is not None:
            request.sampler.close()
            request.sampler = None

    def _fail_all(self, exc: BaseException) -> None:
        if isinstance(exc, _Handled):
            return
        for request in [*self.active, *self.waiting]:
            request.events.put(exc)
            self._release(request)
        self.waiting.clear()
        with contextlib.suppress(Exception):
            self.forget_all()


class _Handled(Exception):
    """A decode failure already delivered to the requests in that batch."""
