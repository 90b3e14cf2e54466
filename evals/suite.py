"""Evaluation suites: a YAML file naming a dataset, pipeline configurations and metrics.

The schema is strict (pydantic, ``extra="forbid"``): a misspelled key is an error naming the
file and line, with the closest valid key. Paths inside a suite are relative to its file.

    name: cranfield
    dataset: ../../../shared/data/cranfield     # BEIR directory, or a .jsonl question set
    metrics: [map, ndcg_cut_10, recip_rank, P_10, recall_100]
    configurations:
      - {name: bm25, mode: bm25}
      - {name: hybrid, mode: hybrid}
    thresholds: {map: 0.2}

A configuration names any pipeline ``orchestrator rag`` runs (the keys of
:class:`PipelineConfig`), e.g. a PostgreSQL index and a strategy:

      - {name: pg-multi, index: docs, dsn: "${PG_DSN}", strategy: multi-query, k: 3}

A RAG suite (a ``.jsonl`` dataset) takes the names of ``evals.rag.RAG_METRICS``: the Ragas
metrics and the book's answer metrics ``citation_recall``, ``citation_precision``,
``fluency``, ``perceived_utility`` with their baselines ``citation_recall_lexical``,
``citation_precision_lexical`` and ``fluency_perplexity``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    InstanceOf,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.agents.pipelines.specs import RagSpec, SearchMode
from orchestrator.errors import DataError, OptionError, OrchestratorError
from orchestrator.evals.metrics import parse_measure


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PipelineConfig(_Strict):
    """One pipeline to evaluate; a suite compares several side by side. The keys are those of
    ``orchestrator rag`` (and of :class:`~orchestrator.agents.pipelines.RagSpec`), so a suite
    can gate any pipeline a command runs; ``spec`` names a spec file instead
    (``orchestrator rag ... --print-spec``; the eval commands pass the spec itself). A key
    left out is ``None``: the RagSpec's default applies (one set of defaults, so a suite scores
    the pipeline ``orchestrator rag`` runs with the same options). ``dsn`` may be
    ``${VARIABLE}`` (read from the environment, so a password stays out of the file);
    ``$ORCHESTRATOR_API_KEY`` is the key of a served model."""

    name: str = Field(min_length=1, pattern=r"^[\w.\-]+$")
    spec: str | InstanceOf[RagSpec] | None = Field(
        default=None, description="a RAG spec file (YAML or JSON)"
    )
    index: str | None = Field(default=None, description="index folder; with dsn, its name")
    dsn: str | None = Field(default=None, description="PostgreSQL database holding the index")
    mode: SearchMode | None = None
    strategy: str | None = None
    strategy_options: dict[str, Any] | None = None
    rerank: str | None = None
    min_similarity: float | None = Field(
        default=None, description="answering floor (default: the library's, as `rag`)"
    )
    embedding: str | None = None
    k: int | None = Field(default=None, ge=1, description="chunks given to the model (RAG)")
    model: str | None = Field(default=None, description="GGUF answering the questions (RAG)")
    base_url: str | None = Field(default=None, description="the model's server (served model)")
    prompt: str | None = Field(default=None, description="prompt name or template (RAG)")
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(
        default=None, ge=0, description="answering model's sampling (> 0: --repeat runs it N times)"
    )
    seed: int | None = Field(default=None, description="the sampled model's (base) seed")
    options: dict[str, Any] | None = Field(default=None, description="open_retriever options")

    @field_validator("dsn")
    @classmethod
    def _environment(cls, value: str | None) -> str | None:
        """Check now that each ``${VAR}`` is set (an error at this file:line naming it); kept
        as written, so the index spec expands it and results never hold the password."""
        from orchestrator.retrieval.location import expand_dsn

        try:
            if value is not None:
                expand_dsn(value)
        except OrchestratorError as exc:
            raise ValueError(f"{exc.message} ({exc.fix})") from None
        return value

    @model_validator(mode="after")
    def _spec_alone(self) -> PipelineConfig:
        given = sorted(self.model_fields_set - {"name", "spec"})
        if self.spec is not None and given:
            raise ValueError(f"spec names the whole pipeline; {given[0]!r} cannot be added to it")
        if self.dsn is not None and self.index is None:
            raise ValueError("dsn needs index: the name of the index in that database")
        return self


class JudgeConfig(_Strict):
    """The Ragas judge: a local GGUF (the embedded model by default) and its budgets."""

    model: str | None = None
    base_url: str | None = Field(default=None, description="the judge's server (served model)")
    max_tokens: int = Field(default=384, ge=16)
    max_items: int = Field(default=4, ge=1, le=32)
    max_chars: int = Field(default=160, ge=8, le=2000)
    timeout: float = Field(default=300.0, gt=0)


class Suite(_Strict):
    """A whole suite file."""

    name: str = Field(min_length=1)
    dataset: str
    split: str = "test"
    documents: list[str] = Field(
        default_factory=list, description="files indexed for a question set without index"
    )
    metrics: list[str] = Field(min_length=1)
    k: int = Field(default=100, ge=1, description="documents retrieved per query (retrieval)")
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    configurations: list[PipelineConfig] = Field(min_length=1)
    thresholds: dict[str, float] = Field(default_factory=dict)

    @field_validator("configurations")
    @classmethod
    def _unique_names(cls, value: list[PipelineConfig]) -> list[PipelineConfig]:
        names = [c.name for c in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"configuration name {twice[0]!r} is used twice")
        return value

    @property
    def kind(self) -> Literal["retrieval", "rag"]:
        return "rag" if self.dataset.endswith(".jsonl") else "retrieval"

    def check_model_used(self, where: str) -> None:
        """A ``--model`` for a retrieval suite in which no configuration uses a model (LLM
        rerank, a strategy's queries, a spec) is an error: it would change nothing."""
        from orchestrator.chains.strategies import strategy_name

        def uses(c: PipelineConfig) -> bool:
            return (
                c.spec is not None
                or c.rerank == "llm"
                or strategy_name(c.strategy or "plain") != "plain"
            )

        if self.kind == "retrieval" and not any(uses(c) for c in self.configurations):
            raise OptionError(
                f"{where}--model chooses the GGUF of --rerank llm or --strategy, and no "
                "configuration reranks with the LLM or names a strategy",
                fix="leave out --model, or rerank with llm or name a strategy",
            )


def _node_line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The line (1-based) of the YAML node at pydantic's error location ``loc``."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _message(error: Any) -> tuple[str, str]:
    """A readable message and fix for one pydantic error (unknown keys suggest a close one)."""
    loc = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        import difflib

        key = str(error["loc"][-1])
        model = _model_at(error["loc"][:-1])
        known = sorted(model.model_fields)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
        return f"unknown key {key!r} (at {loc})", hint
    return f"{loc}: {error['msg']}", "see the suite format in evals/suite.py"


#: Suite keys whose values are nested models (for "did you mean" on their keys).
_SECTIONS: dict[str, type[BaseModel]] = {"judge": JudgeConfig, "configurations": PipelineConfig}


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel]:
    model: type[BaseModel] = Suite
    for part in loc:
        if isinstance(part, int):
            continue
        sub = _SECTIONS.get(str(part))
        if sub is None:
            break
        model = sub
    return model


def load_suite(path: str | Path) -> tuple[Suite, Path]:
    """Read and validate a suite; returns it and the directory its relative paths start from."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: no such suite file", fix="check the path to the YAML file")
    text = file.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        raise DataError(f"{where}: not valid YAML ({exc})", fix="fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise DataError(f"{file}:1: a suite is a mapping of keys", fix="start with 'name: ...'")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        # A misspelt key also makes the real key "missing": report the misspelling first.
        error = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        line = _node_line(node, error["loc"])
        message, fix = _message(error)
        raise DataError(f"{file}:{line or 1}: {message}", fix=fix) from None
    _check_metric_names(suite, file, node)
    _check_strategies(suite, file, node)
    return suite, file.parent


def _check_strategies(suite: Suite, file: Path, node: yaml.Node | None) -> None:
    from orchestrator.chains.strategies import strategy_name

    for i, config in enumerate(suite.configurations):
        try:
            if config.strategy is not None:
                strategy_name(config.strategy)
        except OrchestratorError as exc:
            line = _node_line(node, ("configurations", i, "strategy"))
            raise DataError(f"{file}:{line}: {exc.message}", fix=exc.fix) from None


def _check_metric_names(suite: Suite, file: Path, node: yaml.Node | None) -> None:
    from orchestrator.evals.rag import check_metrics

    for i, name in enumerate(suite.metrics):
        try:
            if suite.kind == "rag":
                check_metrics([name])
            else:
                parse_measure(name)
        except OrchestratorError as exc:
            line = _node_line(node, ("metrics", i))
            raise DataError(f"{file}:{line}: {exc.message}", fix=exc.fix) from None
    for name in suite.thresholds:
        if name not in suite.metrics:
            line = _node_line(node, ("thresholds", name))
            raise DataError(
                f"{file}:{line}: threshold on {name!r}, which is not among the suite's metrics",
                fix=f"add {name!r} to metrics, or use one of {suite.metrics}",
            )


def check_dataset(dataset: str | Path, kind: Literal["retrieval", "rag"]) -> None:
    """A retrieval evaluation reads a BEIR folder, a RAG one a JSONL question set: the other
    is a :class:`DataError` naming the command that reads it (not a crash further on)."""
    path = Path(dataset)
    if kind == "retrieval" and not path.is_dir():
        what = "a JSONL question set" if path.suffix == ".jsonl" else "not a folder"
        raise DataError(
            f"{path} is {what}; retrieval is measured on a BEIR folder (corpus.jsonl, "
            "queries.jsonl, qrels/)",
            fix="pass a BEIR folder as --dataset (dataset: in a suite), or score a question "
            "set with `orchestrator eval rag --dataset FILE.jsonl --index DIR`",
        )
    if kind == "rag" and path.is_dir():
        raise DataError(
            f"{path} is a folder; RAG answers are scored on a JSONL question set",
            fix="pass a .jsonl question set as --dataset, or measure a BEIR folder's "
            "retrieval with `orchestrator eval retrieval --dataset DIR`",
        )


def resolve(base: Path, value: str | None) -> str | None:
    """A suite path made absolute against the suite's directory (None stays None)."""
    if value is None:
        return None
    path = Path(value).expanduser()  # absolute, symbolic links kept (a model's name shows)
    return os.path.abspath(path if path.is_absolute() else base / path)
