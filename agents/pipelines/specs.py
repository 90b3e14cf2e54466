"""Pipeline specs: what a RAG pipeline, an agent or the story chain is made of, as data.

Closed pydantic models (an unknown key is an :class:`~orchestrator.errors.OptionError` with a
"did you mean"), frozen, serialisable to and from YAML/JSON. Every entry point (the CLI
commands, ``orchestrator serve``, the MCP server, the eval commands and suites) turns its
options into one of these (:func:`~orchestrator.agents.pipelines.options.spec_from_options`)
and builds it with :func:`~orchestrator.agents.pipelines.build.build`, so the same spec gives
the same pipeline wherever it runs.

    kind: rag
    model: {model: SmolLM2.gguf, max_tokens: 256}
    indexes: [{backend: folder, path: docs-index}]
    strategy: multi_query
    k: 4

A model's ``api_key`` is never written by :func:`to_dict` (so never printed or dumped); give
it with ``--api-key`` or ``$ORCHESTRATOR_API_KEY`` when running a spec file. Nor is a
database password: an index's ``dsn`` is written as given when it is ``${VAR}`` (read from the
environment when the spec is made), else without its password, which libpq then reads from
``PGPASSWORD`` or ``~/.pgpass`` (:class:`~orchestrator.retrieval.IndexSpec`).

Relative paths in a spec file (index folders, a local GGUF, the embedding and CrossEncoder
folders, ``mcp_config``) are relative to the file's folder (:func:`load_spec`), as in suites;
``--print-spec`` writes them absolute, so a printed spec runs from anywhere.

A model without ``base_url`` is the local GGUF unless ``$ORCHESTRATOR_BASE_URL`` is set: the
model layer's one rule (:func:`orchestrator.models.endpoint_of`), for spec files as for flags.
``--print-spec`` writes the variable's URL into ``model.base_url``, so a printed spec says
which model it runs; a hand-written spec that leaves ``base_url`` out follows the variable.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.agents.pipelines.checks import (
    check_rerank,
    check_search_options,
    in_file,
    spec_error,
)
from orchestrator.errors import DataError, OptionError
from orchestrator.models import ModelSpec, is_served
from orchestrator.retrieval import IndexSpec

SearchMode = Literal["dense", "bm25", "hybrid", "auto"]
"""``auto``: hybrid when the index holds both sides, else the side it was built with."""
StepMode = Literal["auto", "grammar", "json_schema", "parser"]
AgentLoop = Literal["react", "tools"]
"""``react``: the ReAct text loop; ``tools``: the tool-calling agent (``create_agent``)."""
#: Built-in tool names an agent spec may list (``load_tools`` also takes the book's aliases).
BUILTIN_TOOLS = ("calculator", "web_search", "knowledge_base")

#: Nested specs, checked key by key so a misspelling anywhere gets a "did you mean".
_NESTED: dict[str, type[BaseModel]] = {"model": ModelSpec, "index": IndexSpec, "indexes": IndexSpec}


def _reject_unknown(data: Any, model: type[BaseModel], path: str = "") -> None:
    """The first key of ``data`` that ``model`` lacks, as an error naming its key path."""
    if not isinstance(data, Mapping):
        return
    known = sorted(model.model_fields)
    for name in data:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            raise OptionError(
                f"unknown key {name!r}" + (f" in {path}" if path else ""),
                fix=f"did you mean {close[0]!r}?" if close else f"the keys are: {', '.join(known)}",
            )


class _Spec(BaseModel):
    """Closed and frozen; unknown keys (also inside ``model`` / ``index``) name the closest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _closed(cls, data: Any) -> Any:
        _reject_unknown(data, cls)
        if isinstance(data, dict):
            for name, nested in _NESTED.items():
                value = data.get(name) if name in cls.model_fields else None
                if isinstance(value, list):
                    for i, item in enumerate(value):
                        _reject_unknown(item, nested, f"{name}.{i}")
                else:
                    _reject_unknown(value, nested, name)
        return data


class RagSpec(_Spec):
    """Answer from one or more indexes with a RAG strategy, citing numbered sources."""

    kind: Literal["rag"] = "rag"
    model: ModelSpec = Field(default_factory=ModelSpec)
    """The answering model; unset ``temperature``/``seed`` answer greedily (0 and 0)."""
    indexes: list[IndexSpec] = Field(min_length=1)
    """Several only for the strategies that choose between indexes (route, agentic)."""
    mode: SearchMode = "hybrid"
    k: int = Field(default=4, ge=1, description="sources retrieved (per search)")
    strategy: str = "plain"
    """plain, rewrite, multi_query, hyde, multi_hop, route or agentic (``-`` or ``_``)."""
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    """The strategy's own options (``n_queries``, ``max_hops``, ``max_iterations``, ...)."""
    rerank: str = "none"
    """``none``, ``llm`` (the answering model scores passages; a local GGUF only) or a local
    CrossEncoder directory."""
    min_similarity: float | None = Field(default=None, ge=-1.0, le=1.0)
    """Drop sources less similar (cosine, -1..1) than this; ``None``: the library's floor
    (:data:`~orchestrator.agents.pipelines.rag.DEFAULT_MIN_SIMILARITY`) when the index has
    dense vectors (a bm25-only index has no similarity to filter on)."""
    embedding: str | None = None
    """The local embedding model folder the index was built with (when not the bundled one)."""
    search_options: dict[str, Any] = Field(default_factory=dict)
    """The retriever's search options (``open_retriever``'s: fusion weights, ``rrf_k``, ...)."""
    prompt: str | None = None
    """A prompt library name or a template with ``{context}`` and ``{question}``."""

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, value: str) -> str:
        from orchestrator.agents.pipelines.strategies import strategy_name

        return strategy_name(value)

    @model_validator(mode="after")
    def _options(self) -> RagSpec:
        """The strategy's and the retriever's options, and the reranker, checked now (a typo
        is an error when the spec is made, naming ``strategy_options.NAME``)."""
        from orchestrator.agents.pipelines.strategies import check_strategy_options

        check_strategy_options(self.strategy, self.strategy_options)
        check_search_options(self.search_options)
        check_rerank(self.rerank, self.model)
        return self

    @model_validator(mode="after")
    def _indexes(self) -> RagSpec:
        from orchestrator.agents.pipelines.strategies import MULTI_INDEX_STRATEGIES, index_name

        if len(self.indexes) > 1 and self.strategy not in MULTI_INDEX_STRATEGIES:
            raise OptionError(
                f"{len(self.indexes)} indexes were given, but the {self.strategy!r} strategy "
                "searches one",
                fix="give one --index, or use --strategy route or agentic to choose between "
                "several",
            )
        names = [index_name(i) for i in self.indexes]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise OptionError(
                f"two indexes are both named {repeated[0]!r} (an index is named after its folder)",
                fix="give the indexes folders with different names",
            )
        return self


class AgentSpec(_Spec):
    """A ReAct agent with built-in tools, a knowledge base and MCP servers' tools."""

    kind: Literal["agent"] = "agent"
    model: ModelSpec = Field(default_factory=ModelSpec)
    """``model.kind``: ``completion`` (the prompt as written; local only) or ``chat``."""
    tools: list[str] | None = None
    """Built-in (calculator, web_search, knowledge_base) and MCP tool names; ``None``:
    calculator, or with ``mcp_config`` every MCP tool."""
    index: IndexSpec | None = None
    """The knowledge_base tool's index."""
    mcp_config: str | None = None
    """A JSON file with ``mcpServers`` whose tools the agent gets."""
    step_mode: StepMode = "auto"
    max_iterations: int = Field(default=5, ge=1)
    max_execution_time: float | None = Field(default=None, gt=0)
    step_max_tokens: int | None = Field(default=None, ge=16)
    loop: AgentLoop = "react"
    approve: list[str] = Field(default_factory=list)
    """``tools`` loop: tools a person approves, edits or rejects before each call."""
    checkpoints: str | None = None
    """``tools`` loop: where threads are saved, a SQLite file or a ``postgresql://`` DSN;
    ``None``: ``$ORCHESTRATOR_HOME/agents/checkpoints.sqlite``."""

    @model_validator(mode="after")
    def _loop(self) -> AgentSpec:
        if self.loop == "react" and (self.approve or self.checkpoints):
            given = "approve" if self.approve else "checkpoints"
            raise OptionError(
                f"{given} needs the tool-calling agent", fix="use --mode tools (loop: tools)"
            )
        if self.loop == "tools" and self.model.kind == "completion":
            raise OptionError(
                "the tool-calling agent needs a chat model", fix="leave model.kind as chat"
            )
        return self

    @model_validator(mode="after")
    def _tools(self) -> AgentSpec:
        """Without MCP servers every tool is built-in (with them, the names are checked
        against the servers' tools once they run); knowledge_base needs the index."""
        names = self.tools
        if names is not None and self.mcp_config is None:
            if not names:
                raise OptionError("--tools is empty", fix=f"choose from {', '.join(BUILTIN_TOOLS)}")
            for name in names:
                if name not in BUILTIN_TOOLS:
                    raise OptionError(
                        f"unknown tool {name!r}", fix=f"known tools: {', '.join(BUILTIN_TOOLS)}"
                    )
        if names is not None and "knowledge_base" in names and self.index is None:
            raise OptionError("the knowledge_base tool needs an index", fix="pass --index DIR")
        return self


class StorySpec(_Spec):
    """The sequential story chain: summary -> title -> character -> story."""

    kind: Literal["story"] = "story"
    model: ModelSpec = Field(default_factory=ModelSpec)


PipelineSpec = Annotated[RagSpec | AgentSpec | StorySpec, Field(discriminator="kind")]
#: Spec classes by ``kind``.
SPEC_KINDS: dict[str, type[RagSpec] | type[AgentSpec] | type[StorySpec]] = {
    "rag": RagSpec,
    "agent": AgentSpec,
    "story": StorySpec,
}


def to_dict(spec: RagSpec | AgentSpec | StorySpec) -> dict[str, Any]:
    """The spec as JSON-ready data, every field written out (``None`` ones left out), so a
    dumped spec runs the same whatever the defaults become; never the model's ``api_key``."""
    data = spec.model_dump(mode="json", exclude_none=True)
    data["model"] = spec.model.to_dict()
    if isinstance(spec, RagSpec):
        data["indexes"] = [index.to_dict() for index in spec.indexes]
    elif isinstance(spec, AgentSpec) and spec.index is not None:
        data["index"] = spec.index.to_dict()
    return data


def from_dict(data: Any, *, where: str = "the spec") -> RagSpec | AgentSpec | StorySpec:
    """A spec from :func:`to_dict`'s data: ``kind`` picks the class; an unknown key anywhere
    is an :class:`OptionError` naming the closest one."""
    if not isinstance(data, dict):
        raise DataError(f"{where} is not a mapping", fix="write keys: kind, model, ...")
    kind = data.get("kind")
    cls = SPEC_KINDS.get(str(kind))
    if cls is None:
        raise OptionError(
            f"{where} has kind {kind!r}; the kinds are: {', '.join(SPEC_KINDS)}",
            fix="add kind: rag (or agent, story)",
        )
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise spec_error(exc, where, fix=f"edit {where}") from None
    except OptionError as exc:
        raise in_file(exc, where) from None


def _absolute(base: Path, value: str) -> str:
    path = Path(value).expanduser()  # symbolic links kept (a model's name shows)
    return os.path.abspath(path if path.is_absolute() else base / path)


def _index_at(index: IndexSpec, base: Path) -> IndexSpec:
    if index.backend != "folder" or index.path is None:
        return index
    return index.model_copy(update={"path": _absolute(base, index.path)})


def resolve_paths(
    spec: RagSpec | AgentSpec | StorySpec, base: str | Path
) -> RagSpec | AgentSpec | StorySpec:
    """``spec`` with its relative paths made absolute against ``base`` (a spec file's folder,
    or the working directory for flags): index folders, a local GGUF, the embedding and
    CrossEncoder folders and ``mcp_config``. A served model's name stays a name."""
    root = Path(base)
    update: dict[str, Any] = {}
    if spec.model.model is not None and not is_served(spec.model):
        update["model"] = spec.model.model_copy(update={"model": _absolute(root, spec.model.model)})
    if isinstance(spec, RagSpec):
        update["indexes"] = [_index_at(index, root) for index in spec.indexes]
        if spec.embedding is not None:
            update["embedding"] = _absolute(root, spec.embedding)
        if spec.rerank not in ("none", "llm"):
            update["rerank"] = _absolute(root, spec.rerank)
    elif isinstance(spec, AgentSpec):
        if spec.index is not None:
            update["index"] = _index_at(spec.index, root)
        if spec.mcp_config is not None:
            update["mcp_config"] = _absolute(root, spec.mcp_config)
        written = spec.checkpoints
        if written is not None and "://" not in written and "=" not in written:
            update["checkpoints"] = _absolute(root, written)  # a SQLite file, not a DSN
    return spec.model_copy(update=update)


def dump_spec(spec: RagSpec | AgentSpec | StorySpec, path: str | Path | None = None) -> str:
    """The spec as text (JSON for ``.json`` or no path, else YAML); written to ``path``."""
    data = to_dict(spec)
    if path is None or str(path).endswith(".json"):
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        import yaml

        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def load_spec(
    path: str | Path, kind: str | None = None, *, api_key: str | None = None
) -> RagSpec | AgentSpec | StorySpec:
    """A spec from a YAML or JSON file (JSON is YAML: one reader for both); its relative
    paths are relative to the file's folder (:func:`resolve_paths`); an error in it names the
    file and the key. ``kind``: the kind the caller runs (another is an OptionError);
    ``api_key``: the model's key, which a spec file never holds."""
    spec = _read_spec(path)
    if kind is not None and spec.kind != kind:
        raise OptionError(
            f"{path} is {'an' if spec.kind[0] in 'aeiou' else 'a'} {spec.kind} spec; "
            f"this command runs {kind} specs",
            fix=f"use a spec with kind: {kind}",
        )
    if not api_key:
        return spec
    return spec.model_copy(update={"model": spec.model.model_copy(update={"api_key": api_key})})


def _read_spec(path: str | Path) -> RagSpec | AgentSpec | StorySpec:
    import yaml

    file = Path(path).expanduser()
    if not file.is_file():
        raise OptionError(
            f"spec file {str(file)!r} does not exist",
            fix="write one with `orchestrator rag ... --print-spec > FILE.json`",
        )
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(f"{file} is not valid YAML or JSON: {exc}", fix="fix the file") from None
    spec = from_dict(data, where=str(file))
    return resolve_paths(spec, Path(os.path.abspath(file)).parent)
