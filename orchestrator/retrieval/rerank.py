"""Rerankers: rescore (query, passage) pairs after first-stage retrieval.

- :class:`LLMReranker` (the embedded default, ``rerank="llm"``): the local GGUF model reads the
  query and one passage and is asked whether the passage is relevant; the score is
  ``log P(yes) - log P(no)`` for its next token, from llama.cpp's logits (no text generated).
  The query comes first in the prompt, so llama.cpp reuses its KV cache across passages.
- :class:`CrossEncoderReranker`: a sentence-transformers CrossEncoder loaded from a local path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from orchestrator.errors import ModelLoadError, OptionError

LLM_RERANK_PROMPT = (
    "Query: {query}\n\nPassage: {passage}\n\n"
    "Does the passage answer or help to answer the query? Answer yes or no."
)
_YES = ("Yes", "yes", " yes", "YES")
_NO = ("No", "no", " no", "NO")


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


class LLMReranker:
    """Relevance from the local LLM's next-token probabilities of "yes" vs "no"."""

    def __init__(
        self, model_path: str | None = None, *, max_passage_tokens: int = 192, n_ctx: int = 1024
    ) -> None:
        self.model_path, self.max_passage_tokens, self.n_ctx = model_path, max_passage_tokens, n_ctx

    @cached_property
    def llm(self) -> Any:
        from orchestrator.llama.llm import LlamaCpp

        return LlamaCpp(model_path=self.model_path, n_ctx=self.n_ctx)

    @cached_property
    def _candidates(self) -> tuple[list[int], list[int]]:
        engine = self.llm.engine

        def first_tokens(words: Sequence[str]) -> list[int]:
            return list(dict.fromkeys(engine.tokenize(w, special=False)[0] for w in words))

        return first_tokens(_YES), first_tokens(_NO)

    def _clip(self, passage: str) -> str:
        engine = self.llm.engine
        tokens = engine.tokenize(passage, special=False)
        if len(tokens) <= self.max_passage_tokens:
            return passage
        return engine.llama.detokenize(tokens[: self.max_passage_tokens]).decode("utf-8", "ignore")

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        yes, no = self._candidates
        engine = self.llm.engine
        scores = []
        for passage in passages:
            text = LLM_RERANK_PROMPT.format(query=query, passage=self._clip(passage))
            tokens = self.llm.prompt_tokens(self.llm.wrap_user_prompt(text))
            logprobs = engine.next_token_logprobs(tokens, [*yes, *no])
            scores.append(_logsumexp(logprobs[: len(yes)]) - _logsumexp(logprobs[len(yes) :]))
        return scores


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder from a local directory (never downloaded)."""

    def __init__(self, model_path: str | Path, *, batch_size: int = 32) -> None:
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise OptionError(
                f"cross-encoder {str(model_path)!r} is not a local directory",
                fix="pass a directory holding a sentence-transformers CrossEncoder, "
                "or use --rerank llm / none",
            )
        self.path, self.batch_size = path, batch_size

    @cached_property
    def model(self) -> Any:
        from sentence_transformers import CrossEncoder

        try:
            return CrossEncoder(str(self.path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"could not load the cross-encoder {self.path}: {exc}") from exc

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        pairs = [(query, p) for p in passages]
        scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return [float(s) for s in scores]


def get_reranker(spec: Any) -> Any:
    """``None``/``"none"``: no rerank; ``"llm"``: the local LLM; a path: a CrossEncoder; or an
    object with ``score(query, passages)`` used as is."""
    if spec is None or spec == "none":
        return None
    if spec == "llm":
        return LLMReranker()
    if isinstance(spec, str | Path):
        return CrossEncoderReranker(spec)
    if callable(getattr(spec, "score", None)):
        return spec
    raise OptionError(
        f"rerank={spec!r} is not understood",
        fix="use None / 'none', 'llm', a local CrossEncoder directory, or a Reranker object",
    )
