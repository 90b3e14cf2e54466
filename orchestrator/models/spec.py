"""``ModelSpec``: which model to use, as data (a CLI's options, a pipeline file, a request).

A spec names a local GGUF (``model`` is a path or ``None`` for ``$ORCHESTRATOR_MODEL`` / the
embedded model) or a served one (``base_url`` set; ``model`` is then the served model's name),
plus sampling overrides; ``None`` everywhere means "the default" (see
:mod:`orchestrator.models.options`). The API key is never written out by :meth:`to_dict`, so a
spec can be saved and shared; give the key again (or ``$ORCHESTRATOR_API_KEY``) when loading.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.models.options import (
    MaxRetries,
    MaxTokens,
    MinP,
    RepeatPenalty,
    Temperature,
    Timeout,
    TopK,
    TopP,
)

#: Options that only a local GGUF model has, and where a served model sets them instead.
LOCAL_ONLY = {
    "chat_format": "the server applies its own chat template",
    "n_ctx": "the server sets its context size (llama.cpp: --n_ctx / -c; vLLM: --max-model-len)",
    "n_parallel": "the server sets its slots (llama.cpp: --parallel / -np; vLLM: --max-num-seqs)",
}
#: The command-line flag of a local-only option, where it is not ``--`` + its name.
LOCAL_FLAGS = {"n_parallel": "--parallel"}


class ModelSpec(BaseModel):
    """A model to build (:func:`orchestrator.models.chat_model` / ``language_model``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model: str | None = None
    """GGUF path (``None``: the default model); with ``base_url``, the served model's name."""
    base_url: str | None = None
    """An OpenAI-compatible server; ``None``: ``$ORCHESTRATOR_BASE_URL``, else local."""
    api_key: str | None = Field(default=None, repr=False)
    """The server's key (never serialised); ``None``: ``$ORCHESTRATOR_API_KEY``."""
    chat_format: str | None = None
    """Local only: a built-in chat format instead of the GGUF's template."""
    n_ctx: int | None = Field(default=None, ge=16)
    """Local only: the context window."""
    n_parallel: int | None = Field(default=None, ge=1, le=64)
    """Local only: sequences decoded together (``serve --parallel``)."""
    kind: Literal["chat", "completion"] = "chat"
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    min_p: MinP | None = None
    repeat_penalty: RepeatPenalty | None = None
    seed: int | None = None
    stop: list[str] | None = None
    timeout: Timeout | None = None
    max_retries: MaxRetries | None = None

    def sampling(self) -> dict[str, Any]:
        """The sampling options this spec sets (the rest stay at the model's defaults)."""
        from orchestrator.models.options import SAMPLING_FIELDS

        return {n: getattr(self, n) for n in SAMPLING_FIELDS if getattr(self, n) is not None}

    def local_only(self) -> dict[str, Any]:
        """The local-only options this spec sets (see :data:`LOCAL_ONLY`)."""
        return {n: getattr(self, n) for n in LOCAL_ONLY if getattr(self, n) is not None}

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data, without unset options and without the API key."""
        return self.model_dump(mode="json", exclude={"api_key"}, exclude_none=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """A spec from :meth:`to_dict`'s form (unknown keys are errors)."""
        return cls.model_validate(dict(data))
