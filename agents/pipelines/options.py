"""``spec_from_options``: the ONE function from flat options (a command's flags, a server's
config, an MCP tool's settings, an eval command's options) to a pipeline spec.

Options are named as the command-line flags are, with ``_`` for ``-``: the model's
(``model``, ``base_url``, ``api_key``, ``max_tokens``, ``temperature``, ``seed``,
``chat_format``, ``n_ctx``, ...: the fields of :class:`~orchestrator.models.ModelSpec`), the
index's (``index``: a path, a name with ``dsn``, an ``IndexSpec``, or for RAG a list of them;
``dsn``) and the spec's own fields. ``None`` means "not given" (the spec's default). An
unknown name is an :class:`~orchestrator.errors.OptionError` naming the closest one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias, overload

from pydantic import ValidationError

from orchestrator.agents.pipelines.checks import spec_error
from orchestrator.agents.pipelines.specs import SPEC_KINDS, AgentSpec, RagSpec, StorySpec
from orchestrator.errors import OptionError, unknown_option
from orchestrator.models import ModelSpec, endpoint_of, is_served
from orchestrator.retrieval import IndexSpec

Spec: TypeAlias = RagSpec | AgentSpec | StorySpec
IndexArg: TypeAlias = str | Path | IndexSpec


def _model_fields() -> set[str]:
    return set(ModelSpec.model_fields) - {"kind"}


def model_from_options(options: dict[str, Any], **fixed: Any) -> ModelSpec:
    """The :class:`ModelSpec` from ``options`` (its fields are taken out of ``options``);
    ``fixed``: fields the caller sets (e.g. ``kind``). A ``model`` that is already a spec is
    used as it is, with the other model options applied over it."""
    given = options.pop("model", None)
    fields = {k: options.pop(k) for k in list(options) if k in _model_fields()}
    fields = {k: v for k, v in {**fields, **fixed}.items() if v is not None}
    if isinstance(given, ModelSpec):
        spec = given.model_copy(update=fields) if fields else given
    else:
        if given is not None:
            fields["model"] = str(given)
        spec = ModelSpec(**fields)
    return with_served_url(spec)


def with_served_url(spec: ModelSpec) -> ModelSpec:
    """``spec`` with ``$ORCHESTRATOR_BASE_URL`` written into ``base_url`` where it leaves it
    unset, so the spec (and ``--print-spec``) says which model runs."""
    if spec.base_url is not None:
        return spec
    endpoint = endpoint_of(ModelSpec())  # the variable alone (a key without a URL errs later)
    return spec if endpoint is None else spec.model_copy(update={"base_url": endpoint.base_url})


def without_default_key(model: ModelSpec) -> ModelSpec:
    """A served model's spec with an explicit key (its own, else none), for ``serve``:
    ``$ORCHESTRATOR_API_KEY`` is the server's own key there (``--api-key``), so it must not
    reach the upstream as the model layer's default would send it."""
    from orchestrator.remote import NO_API_KEY

    if model.api_key or not is_served(model):
        return model
    return model.model_copy(update={"api_key": NO_API_KEY})


def index_specs(index: IndexArg | Sequence[IndexArg] | None, dsn: str | None) -> list[IndexSpec]:
    """``--index`` (one or repeated) and ``--dsn``, resolved once by :meth:`IndexSpec.of`."""
    if index is None:
        return []
    items = [index] if isinstance(index, str | Path | IndexSpec) else list(index)
    return [IndexSpec.of(item, dsn) for item in items]


def _rag(options: dict[str, Any]) -> dict[str, Any]:
    indexes = index_specs(options.pop("index", None), options.pop("dsn", None))
    if not indexes:
        raise OptionError("no index given", fix="add --index DIR")
    return {"model": model_from_options(options), "indexes": indexes}


def _agent(options: dict[str, Any]) -> dict[str, Any]:
    """``mode`` (the CLI's ``--mode``): ``tools`` is the tool-calling agent (a chat model;
    its checkpoints go to ``dsn``'s database when one is given); otherwise the ReAct agent
    on a model of that kind, ``completion`` by default for a local GGUF, ``chat`` for a
    served model; ``--max-tokens`` (``step_max_tokens``) is also the model's token limit."""
    mode, steps = options.pop("mode", None), options.get("step_max_tokens")
    loop = "react"
    if mode == "tools":
        loop, mode = "tools", "chat"
        if options.get("checkpoints") is None and options.get("dsn") is not None:
            options["checkpoints"] = options["dsn"]
    if steps is not None and options.get("max_tokens") is None:
        options["max_tokens"] = steps
    model = model_from_options(options)
    if mode is None:
        mode = "chat" if is_served(model) else "completion"
    if mode not in ("completion", "chat"):
        raise OptionError(
            f"unknown --mode {mode!r}", fix="use --mode tools, --mode completion or --mode chat"
        )
    if mode == "completion" and is_served(model):
        raise OptionError(
            "--mode completion needs a local GGUF; a served model is a chat model",
            fix="leave out --mode (or use --mode chat) with --base-url",
        )
    found = index_specs(options.pop("index", None), options.pop("dsn", None))
    tools = options.pop("tools", None)
    if isinstance(tools, str):
        tools = [n.strip() for n in tools.split(",") if n.strip()]
    approve = options.pop("approve", None)
    if isinstance(approve, str):
        approve = [n.strip() for n in approve.split(",") if n.strip()]
    config = options.pop("mcp_config", None)
    return {
        "loop": loop,
        "approve": approve,
        "model": model.model_copy(update={"kind": mode}),
        "index": found[0] if found else None,
        "tools": tools,
        "mcp_config": None if config is None else str(config),
    }


@overload
def spec_from_options(kind: Literal["rag"], **options: Any) -> RagSpec: ...
@overload
def spec_from_options(kind: Literal["agent"], **options: Any) -> AgentSpec: ...
@overload
def spec_from_options(kind: Literal["story"], **options: Any) -> StorySpec: ...
@overload
def spec_from_options(kind: str, **options: Any) -> Spec: ...


def spec_from_options(kind: str, **options: Any) -> Spec:
    """The ``kind`` spec (``rag``, ``agent``, ``story``) for flat ``options`` (see the module
    docstring). Used by every command, the HTTP server, the MCP server and the evals."""
    cls = SPEC_KINDS.get(kind)
    if cls is None:
        raise OptionError(f"unknown pipeline kind {kind!r}", fix=f"use {', '.join(SPEC_KINDS)}")
    options = dict(options)
    if kind == "rag":
        fields = _rag(options)
    elif kind == "agent":
        fields = _agent(options)
    else:
        fields = {"model": model_from_options(options)}
    known = set(cls.model_fields) - {"kind", "model", "index", "indexes"}
    for name, value in options.items():
        if name not in known:
            accepted = known | _model_fields() | {"model", "index", "dsn"}
            raise unknown_option(name, accepted, where=f"a {kind} pipeline")
        if value is not None:
            fields[name] = value
    try:
        return cls(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise spec_error(exc, fix="see --help") from None
