"""Errors that say what went wrong and how to fix it.

Every error raised on purpose by Orchestrator derives from :class:`OrchestratorError` and carries
an optional ``fix``: one sentence telling the user what to do. The CLI prints both and exits
non-zero instead of showing a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping


class OrchestratorError(Exception):
    """Base class: a problem with the user's input or environment, with a suggested fix."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message}\n  fix: {fix}" if fix else message)


class ModelLoadError(OrchestratorError):
    """A model file is missing, is not GGUF, is truncated, or llama.cpp refused it."""


class ContextOverflowError(OrchestratorError, ValueError):
    """A prompt does not fit in the model's context window."""

    def __init__(self, n_prompt: int, n_ctx: int, *, n_ctx_train: int | None = None) -> None:
        self.n_prompt, self.n_ctx = n_prompt, n_ctx
        over = n_prompt - n_ctx + 1
        hint = f" (the model was trained for {n_ctx_train})" if n_ctx_train else ""
        super().__init__(
            f"prompt is {n_prompt} tokens but the context window is {n_ctx}{hint}: "
            f"{over} tokens over",
            fix="shorten the prompt, use a memory that trims history, or raise n_ctx",
        )


class ChatFormatError(OrchestratorError, ValueError):
    """A model's chat template could not render the messages (or names an unknown format)."""


class TruncatedOutputError(OrchestratorError, ValueError):
    """Grammar-constrained output (JSON, a tool call) hit ``max_tokens`` before it was complete."""


class OptionError(OrchestratorError, TypeError):
    """An unknown, misspelled or out-of-range option."""


class DataError(OrchestratorError, ValueError):
    """A data file (qrels, run, dataset, index, session store) is malformed or corrupted."""


def unknown_option(name: str, known: Iterable[str], *, where: str) -> OptionError:
    """An error for an unknown option name, suggesting the closest known one."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known options: {', '.join(known)}"
    return OptionError(f"{where} got an unknown option {name!r}", fix=hint)


def reject_unknown_options(data: object, model: type, *, extra: Iterable[str] = ()) -> None:
    """Raise :class:`OptionError` for the first key of ``data`` (a mapping of keyword
    arguments) that is neither a field of the pydantic ``model``, nor a field alias, nor one of
    ``extra``: the one closed-options rule, used by every ``mode="before"`` validator."""
    if not isinstance(data, Mapping):
        return
    fields = model.model_fields  # type: ignore[attr-defined]
    known = set(fields) | {f.alias for f in fields.values() if f.alias} | set(extra)
    for name in data:
        if name not in known:
            raise unknown_option(str(name), known, where=model.__name__)
