"""LangChain's and OpenAI's standard parameter names, with their meaning for a local model.

The one rule both local model classes (``ChatLlamaCpp``, ``LlamaCpp``) apply before their
options are validated: ``model=`` / ``model_name=`` are ``model_path=``, ``api_key=`` is
dropped (warning once), ``n=1`` is accepted, and options naming a hosted API's endpoint are
errors with the reason (see :class:`orchestrator.llama.base.LlamaSettings`).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import OptionError

#: Options that point at a hosted API; a local model cannot honour them (it would silently
#: answer from the local file instead of the endpoint asked for), so they are errors.
ENDPOINT_ONLY = (
    "base_url",
    "api_base",
    "openai_api_base",
    "organization",
    "openai_organization",
    "default_headers",
)


def standard_names(data: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """LangChain's standard names with their local meaning (the one rule for both model
    classes): ``model=`` is ``model_path=``, ``api_key=`` is dropped (warning once), and
    endpoint options are rejected with the reason."""
    out = dict(data)
    for name in ENDPOINT_ONLY:
        if name in out:
            raise OptionError(
                f"{owner} got {name!r}, which points at a hosted API; {owner} runs a local "
                "GGUF file and calls no endpoint",
                fix=f"drop {name}=; for a model served elsewhere use "
                "orchestrator.remote.remote_chat_model(base_url=..., model=..., api_key=...)",
            )
    keys = [out.pop(name, None) for name in ("api_key", "openai_api_key")]  # ChatOpenAI's two
    if any(keys):
        warn_api_key_ignored()
    _one_generation(out.pop("n", 1), owner)
    if "model_name" in out:  # ChatOpenAI's and LangChain's other name for model=
        name = out.pop("model_name")
        if "model" in out and out["model"] != name:
            raise OptionError(
                f"{owner} got model={out['model']!r} and model_name={name!r}",
                fix="pass one of them: both are LangChain's names for model_path=",
            )
        out["model"] = name
    if "model" in out:
        model = out.pop("model")
        path = out.get("model_path")
        if path is not None and model is not None and str(path) != str(model):
            raise OptionError(
                f"{owner} got model={model!r} and model_path={path!r}",
                fix="pass one of them: model= is LangChain's name for model_path=",
            )
        out["model_path"] = path if path is not None else model
    return out


def _one_generation(n: Any, owner: str) -> None:
    """OpenAI's ``n`` (answers per prompt): a local model gives one, so ``n=1`` is accepted
    and any other value is an error saying how to get several."""
    if n != 1 or isinstance(n, bool):
        raise OptionError(
            f"{owner} got n={n!r}: a local model generates one answer per call",
            fix="drop n=, and for several answers call .batch([prompt] * n) with temperature "
            "> 0 and seed=-1 (each call then samples its own)",
        )


@functools.cache
def warn_api_key_ignored() -> None:
    """Warn once per process (cached): a key given to a local model is not used."""
    warnings.warn(
        "api_key= is ignored: a local GGUF model (ChatLlamaCpp, LlamaCpp) has nothing to "
        "authenticate to, and the key is not stored. Drop it to silence this warning (shown "
        "once per process); for a served model use orchestrator.remote.remote_chat_model",
        UserWarning,
        stacklevel=2,
    )
