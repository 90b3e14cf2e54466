"""What a pipeline spec is checked against when it is made (not when it first runs): the
strategy's and the retriever's own options, the reranker a model can drive, and pydantic's
findings turned into errors that name the key (and the file) with a "did you mean"."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any, get_type_hints

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from orchestrator.errors import OptionError
from orchestrator.models import ModelSpec, is_served


def check_search_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The retriever's search options (``open_retriever``'s: ``fusion``, ``dense_weight``,
    ``depth``, ...) checked by name and value; errors name ``search_options.NAME``."""
    from orchestrator.chains.strategies import check_options
    from orchestrator.retrieval.search import SearchConfig, search_config

    hints = get_type_hints(SearchConfig)
    fields = {n: FieldInfo.from_annotation(t) for n, t in hints.items() if n != "mode"}
    if "mode" in options:
        raise OptionError(
            "search_options.mode: mode is a field of the spec itself",
            fix="write mode at the top level of the spec (or give --mode)",
        )
    checked = check_options(options, fields, owner="the retriever's search", where="search_options")
    try:
        search_config(**checked)
    except OptionError as exc:
        fix = exc.fix or "see the search options in docs/architecture.md (SearchConfig)"
        raise OptionError(f"search_options: {exc.message}", fix=fix) from None
    return checked


def check_rerank(rerank: str, model: ModelSpec) -> None:
    """``rerank: llm`` scores passages with a local GGUF in process; a served model cannot."""
    if rerank == "llm" and is_served(model):
        raise OptionError(
            "rerank llm scores with a local GGUF in process; it cannot use a served model",
            fix="use rerank none or a CrossEncoder directory (--rerank), or a local model "
            "(no base_url / --base-url)",
        )


def _did_you_mean(error: Mapping[str, Any]) -> str | None:
    """For a value outside a ``Literal``: the closest allowed value."""
    if error.get("type") != "literal_error":
        return None
    allowed = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
    close = difflib.get_close_matches(str(error.get("input")), allowed, n=1)
    return f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(allowed)}"


def spec_error(
    exc: ValidationError, where: str | None = None, fix: str | None = None
) -> OptionError:
    """pydantic's first finding about a spec as an :class:`OptionError` naming ``where`` (the
    file), the key path (``indexes.0.backend``) and, for a value outside a fixed set, the
    closest allowed one."""
    error = exc.errors()[0]
    path = ".".join(str(p) for p in error["loc"]) or "the spec"
    given = f" (got {error['input']!r})" if "input" in error and error["loc"] else ""
    message = f"{path}: {error['msg']}{given}"
    hint = _did_you_mean(error) or fix or "see the spec's fields in docs (or --help)"
    return OptionError(f"{where}: {message}" if where else message, fix=hint)


def in_file(exc: OptionError, where: str | None) -> OptionError:
    """``exc`` with ``where`` (the spec file) in front of its message."""
    if where is None or exc.message.startswith(f"{where}:"):
        return exc
    return OptionError(f"{where}: {exc.message}", fix=exc.fix)
