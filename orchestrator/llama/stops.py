"""From token bytes to answer text: UTF-8 decoding and stop sequences on a token stream.

Two things can go wrong between the sampled tokens and the text a caller sees, and both are
handled here, once, for every path (invoke, stream, batch, async):

* A token may hold only part of a multi-byte character (an emoji is often three or four byte
  tokens). Bytes are decoded with an incremental UTF-8 decoder, so a character is emitted once
  it is complete; an incomplete sequence left at a cut (``max_tokens``, a stop, a timeout) is
  dropped, never turned into U+FFFD.
* A stop sequence (a turn marker such as ``<|assistant|>``) may arrive split over several
  tokens (``<``, ``|``, ``assistant``, ``|``, ``>``). Text that could still grow into a stop is
  held back until it either completes one (then it and everything after it is dropped) or
  cannot any more (then it is emitted).
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class StopMatcher:
    """Holds back only the shortest tail that could still grow into a stop sequence."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Add ``text``; return what is safe to emit and whether a stop sequence was hit."""
        if not self.stops:
            return text, False
        buffer = self.pending + text
        hits = [i for i in (buffer.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.pending = ""
            return buffer[: min(hits)], True
        hold = self._partial_tail(buffer)
        self.pending = buffer[len(buffer) - hold :] if hold else ""
        return buffer[: len(buffer) - hold], False

    def flush(self, text: str = "") -> str:
        """Everything still held back (the stream ended without completing a stop)."""
        out, self.pending = self.pending + text, ""
        return out

    def _partial_tail(self, buffer: str) -> int:
        longest = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(buffer)), longest, -1):
                if buffer.endswith(stop[:n]):
                    longest = n
                    break
        return longest


class TextAssembler:
    """Token bytes in, answer text out: incremental UTF-8 decoding followed by stop matching.

    ``errors="ignore"``: bytes that can never form a character (a lead byte the model did not
    continue) are dropped rather than shown as U+FFFD, the same rule as for a sequence left
    incomplete at a cut.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        self._matcher = StopMatcher(stops)
        self.stopped = False

    def feed(self, data: bytes) -> str:
        """Add one token's bytes; return the text that is now safe to show (maybe empty)."""
        if self.stopped:
            return ""
        text, self.stopped = self._matcher.feed(self._decoder.decode(data))
        return text

    def finish(self) -> str:
        """The stream ended without a stop sequence: what was held back for a possible stop is
        text after all; an incomplete character at the cut is dropped."""
        if self.stopped:
            return ""
        self._decoder.reset()
        return self._matcher.flush()
