"""Text analysis for keyword search: lower-case, split, drop stop words, Snowball-stem.

The analyzer is part of an index's identity (a query must be analysed exactly as the documents
were), so its settings are saved in the manifest and checked on reopen.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

from orchestrator.errors import OptionError, unknown_option

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

#: Stop-word lists by name: Lucene's short English list and NLTK's longer one (both via bm25s).
STOPWORD_LISTS = ("none", "lucene", "english")


def _stopwords(name: str) -> frozenset[str]:
    if name == "none":
        return frozenset()
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN if name == "lucene" else STOPWORDS_EN_PLUS)


@dataclass(frozen=True)
class AnalyzerConfig:
    """How text becomes terms. ``language`` is a Snowball stemmer name or ``"none"``."""

    stopwords: str = "english"
    language: str = "english"
    min_length: int = 1

    def __post_init__(self) -> None:
        if self.stopwords not in STOPWORD_LISTS:
            raise unknown_option(self.stopwords, STOPWORD_LISTS, where="stopwords")
        if self.language != "none":
            import Stemmer

            if self.language not in Stemmer.algorithms():
                raise unknown_option(self.language, Stemmer.algorithms(), where="stemmer language")
        if self.min_length < 1:
            raise OptionError(f"min_length must be >= 1, got {self.min_length}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Analyzer:
    """Callable turning text into a list of terms (repeats kept: BM25 counts them)."""

    def __init__(self, config: AnalyzerConfig | None = None) -> None:
        self.config = config or AnalyzerConfig()
        self._stop = _stopwords(self.config.stopwords)
        self._cache: dict[str, str] = {}

    @cached_property
    def _stemmer(self) -> Any:
        if self.config.language == "none":
            return None
        import Stemmer

        return Stemmer.Stemmer(self.config.language)

    def __call__(self, text: str) -> list[str]:
        stop, min_len = self._stop, self.config.min_length
        words = [w for w in _TOKEN.findall(text.lower()) if w not in stop and len(w) >= min_len]
        if self._stemmer is None:
            return words
        cache = self._cache
        missing = [w for w in set(words) if w not in cache]
        if missing:
            cache.update(zip(missing, self._stemmer.stemWords(missing), strict=True))
        return [cache[w] for w in words]
