"""The one place that turns a :class:`ModelSpec` into a model: a local GGUF or a served one.

``chat_model`` gives a ``ChatLlamaCpp`` for a GGUF (the embedded default when no path is
given), or, when a base URL is given (``base_url=`` or ``$ORCHESTRATOR_BASE_URL``), the named
model on that OpenAI-compatible server, checked before use
(:func:`orchestrator.remote.remote_chat_model`). Every CLI command, the servers and the eval
runner build their models here, so a local and a served model are chosen by one rule.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseLanguageModel
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.llms import BaseLLM

from orchestrator.errors import OptionError
from orchestrator.models.spec import LOCAL_FLAGS, LOCAL_ONLY, ModelSpec


def resolve_spec(spec: ModelSpec | None, fields: dict[str, Any]) -> ModelSpec:
    """``spec`` with ``fields`` applied (validated: unknown names and bad values are errors)."""
    if spec is None:
        return ModelSpec(**fields)
    return ModelSpec.model_validate({**spec.model_dump(), **fields}) if fields else spec


def endpoint_of(spec: ModelSpec) -> Any:
    """The served endpoint ``spec`` names (its ``base_url``, else ``$ORCHESTRATOR_BASE_URL``;
    the key likewise), or ``None`` for a local GGUF: the one local-or-served rule."""
    from orchestrator.remote import Endpoint

    return Endpoint.resolve(spec.base_url, spec.api_key)


def is_served(spec: ModelSpec) -> bool:
    """Whether ``spec`` is a served model (see :func:`endpoint_of`)."""
    return endpoint_of(spec) is not None


def chat_model(spec: ModelSpec | None = None, /, **fields: Any) -> BaseChatModel:
    """The chat model ``spec`` (and/or ``fields``, :class:`ModelSpec`'s) names: local or served.

    With a served model, local-only options (``chat_format``, ``n_ctx``) are an
    ``OptionError`` saying where the server sets them; ``seed=-1`` (random) is left to the
    server."""
    spec = resolve_spec(spec, fields)
    endpoint = endpoint_of(spec)
    if endpoint is None:
        from orchestrator.llama.chat import ChatLlamaCpp

        return ChatLlamaCpp(**local_options(spec))
    local_only = list(spec.local_only())
    if local_only:
        name = local_only[0]
        raise OptionError(
            f"{name} applies to a local GGUF model, not to one served at {endpoint.base_url}",
            fix=f"leave out {name} ({LOCAL_FLAGS.get(name, '--' + name.replace('_', '-'))}): "
            f"{LOCAL_ONLY[name]}",
        )
    sampling = spec.sampling()
    if sampling.get("seed") == -1:
        sampling["seed"] = None
    return endpoint.chat_model(spec.model, **sampling)


def completion_model(spec: ModelSpec | None = None, /, **fields: Any) -> BaseLLM:
    """A completion model (``LlamaCpp``) on a local GGUF; a served model is an error (the
    servers this project talks to are used as chat models)."""
    spec = resolve_spec(spec, fields)
    endpoint = endpoint_of(spec)
    if endpoint is not None:
        raise OptionError(
            f"a completion model needs a local GGUF; the model served at {endpoint.base_url} "
            "is used as a chat model",
            fix="use a chat model (kind='chat', --mode chat) with a base URL, or leave out "
            "base_url / $ORCHESTRATOR_BASE_URL for a local completion model",
        )
    from orchestrator.llama.llm import LlamaCpp

    return LlamaCpp(**local_options(spec))


def language_model(spec: ModelSpec | None = None, /, **fields: Any) -> BaseLanguageModel[Any]:
    """:func:`chat_model` or :func:`completion_model`, by the spec's ``kind``."""
    spec = resolve_spec(spec, fields)
    return chat_model(spec) if spec.kind == "chat" else completion_model(spec)


def local_options(spec: ModelSpec) -> dict[str, Any]:
    """The keyword arguments of ``ChatLlamaCpp`` / ``LlamaCpp`` for ``spec``."""
    options: dict[str, Any] = {"model_path": spec.model, **spec.sampling()}
    options.update({name: getattr(spec, name) for name in LOCAL_ONLY})
    return options
