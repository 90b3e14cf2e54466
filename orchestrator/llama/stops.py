"""Stop sequences on a token stream: emit text as soon as it cannot be the start of a stop."""

from __future__ import annotations

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
