"""One generation (or next-token scoring) as the batched engine runs it, and the slot it runs in.

A :class:`Request` carries everything a lone generation had: its sampler (own seed, grammar and
penalties), stop markers, ``max_tokens``, deadline, UTF-8 assembly and usage counts. The
scheduler thread drives it; the caller's thread reads what it produced from ``events``.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.cancellation import CancellationToken, GenerationCancelled
from orchestrator.llama.stops import TextAssembler

#: Put on a request's ``events`` when it has nothing more to give.
DONE = object()


@dataclass
class Slot:
    """One llama.cpp sequence and what its KV cells hold."""

    seq: int
    tokens: list[int] = field(default_factory=list)
    """The tokens whose KV this sequence holds: ``tokens[i]`` at position ``i``."""
    aligned: int = 0
    """Leading positions computed in whole, position-aligned prefill chunks (reusable)."""
    last_used: float = 0.0
    request: Request | None = None

    def forget(self) -> None:
        self.tokens, self.aligned = [], 0


def reusable(slot: Slot, prompt: Sequence[int], chunk: int) -> int:
    """How many leading tokens of ``prompt`` ``slot`` can serve from its cache: whole aligned
    chunks of the common prefix, never the prompt's last token (its logits are needed)."""
    limit = min(slot.aligned, len(prompt) - 1)
    n = 0
    for a, b in zip(slot.tokens[:limit], prompt[:limit], strict=False):
        if a != b:
            break
        n += 1
    return n - n % chunk


def choose_slot(idle: Sequence[Slot], prompt: Sequence[int], chunk: int) -> tuple[Slot, int]:
    """The idle slot with the longest reusable prefix (llama.cpp server's ``cache_prompt``
    rule); with none to reuse, the least recently used one, so fresh caches survive."""
    best = max(idle, key=lambda s: (reusable(s, prompt, chunk), -s.last_used))
    reuse = reusable(best, prompt, chunk)
    if reuse == 0:
        best = min(idle, key=lambda s: s.last_used)
    return best, reuse


@dataclass
class Request:
    """A prompt to continue (``candidates`` None) or to score: the log-probabilities of
    ``candidates`` as its next token."""

    prompt: list[int]
    sampling: Any
    usage: Any
    stop: Sequence[str] = ()
    grammar: Any = None
    reuse_prefix: bool = True
    cancel: CancellationToken | None = None
    candidates: Sequence[int] | None = None
    events: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    abandoned: bool = False
    """Set by the caller's thread when it stops listening; the slot is freed at the next step."""
    slot: Slot | None = None
    evaluated: int = 0
    """Prompt tokens in the sequence so far (reused or prefilled)."""
    pending: int | None = None
    """The token sampled last, to be evaluated in the next decode step."""
    sampler: Any = None
    text: TextAssembler | None = None
    budget: int = 0
    deadline: float | None = None

    def __post_init__(self) -> None:
        timeout = getattr(self.sampling, "timeout", None)
        self.deadline = time.monotonic() + timeout if timeout else None

    @property
    def prefilling(self) -> bool:
        return self.slot is not None and self.evaluated < len(self.prompt)

    def gone(self) -> bool:
        """The caller went away: it closed its stream, or its cancellation token was set
        (then it hears why)."""
        if self.cancel is not None and self.cancel.cancelled:
            self.events.put(GenerationCancelled(self.usage))
            return True
        return self.abandoned

    def results(self) -> Any:
        """What the scheduler produced, for the caller's thread: pieces of text, then
        :data:`DONE`; an exception is raised here."""
        while True:
            item = self.events.get()
            if item is DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
