"""Pipeline specs (issue 19.3): closed, serialisable specs, the one options-to-spec function,
the library's answering floor, and the CLI's ``--print-spec`` / ``--spec FILE``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator.agents.pipelines import (
    DEFAULT_MIN_SIMILARITY,
    AgentSpec,
    RagSpec,
    StorySpec,
    build,
    dump_spec,
    from_dict,
    load_spec,
    open_retrievers,
    resolve_paths,
    spec_from_options,
    to_dict,
)
from orchestrator.cli.app import app
from orchestrator.errors import OptionError
from orchestrator.models import ModelSpec
from orchestrator.retrieval import IndexSpec

runner = CliRunner()
DSN = "postgresql://user@localhost:5432/db"  # the password: PGPASSWORD (see validation tests)

SPECS: list[Any] = [
    RagSpec(indexes=[IndexSpec.of("docs")]),
    RagSpec(
        model=ModelSpec(model="m.gguf", max_tokens=64, temperature=0.2, base_url=None),
        indexes=[IndexSpec.of("papers"), IndexSpec.of("towns", DSN)],
        mode="bm25",
        k=2,
        strategy="route",
        rerank="none",
        min_similarity=0.5,
        prompt="rag",
    ),
    AgentSpec(),
    AgentSpec(
        model=ModelSpec(kind="completion", seed=3),
        tools=["calculator", "knowledge_base"],
        index=IndexSpec.of("kb", DSN),
        max_iterations=3,
        max_execution_time=9.5,
        step_max_tokens=64,
        step_mode="parser",
    ),
    StorySpec(model=ModelSpec(temperature=0.7, seed=-1)),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_every_kind_round_trips_through_dict_json_and_yaml(spec: Any, tmp_path: Path) -> None:
    assert from_dict(to_dict(spec)) == spec
    assert from_dict(json.loads(json.dumps(to_dict(spec)))) == spec
    for name in ("spec.json", "spec.yaml"):
        dump_spec(spec, tmp_path / name)
        assert load_spec(tmp_path / name) == resolve_paths(spec, tmp_path)  # file-relative


def test_the_api_key_is_never_written() -> None:
    spec = spec_from_options("rag", index="docs", base_url="http://gpu:8000/v1", api_key="sk-1")
    assert spec.model.api_key == "sk-1"
    assert "sk-1" not in dump_spec(spec) and "api_key" not in to_dict(spec)["model"]


@pytest.mark.parametrize(
    ("data", "wrong", "closest"),
    [
        ({"kind": "rag", "indexes": [{"path": "x"}], "strategi": "hyde"}, "strategi", "strategy"),
        ({"kind": "rag", "indexes": [{"pth": "x"}]}, "pth", "path"),
        (
            {"kind": "rag", "indexes": [{"path": "x"}], "model": {"temprature": 0}},
            "temprature",
            "temperature",
        ),
        ({"kind": "agent", "max_iteration": 3}, "max_iteration", "max_iterations"),
        ({"kind": "agent", "index": {"path": "x", "dns": DSN}}, "dns", "dsn"),
        ({"kind": "story", "modle": {}}, "modle", "model"),
    ],
)
def test_specs_are_closed_and_name_the_closest_key(data: Any, wrong: str, closest: str) -> None:
    with pytest.raises(OptionError, match=repr(wrong)) as caught:
        from_dict(data)
    assert caught.value.fix == f"did you mean {closest!r}?"


def test_a_bad_kind_or_strategy_is_an_option_error() -> None:
    with pytest.raises(OptionError, match="kinds are: rag, agent, story"):
        from_dict({"kind": "rg"})
    with pytest.raises(OptionError, match="multi-query"):
        spec_from_options("rag", index="docs", strategy="multi-qery")
    with pytest.raises(OptionError, match="searches one"):
        spec_from_options("rag", index=["a", "b"], strategy="hyde")
    with pytest.raises(OptionError, match="both named 'docs'"):
        spec_from_options("rag", index=["one/docs", "two/docs"], strategy="route")


def test_spec_from_options_for_rag_search_chat_serve_and_mcp() -> None:
    """rag / search / chat --index / serve / mcp all pass their flags here."""
    rag = spec_from_options(
        "rag",
        index=[Path("docs")],
        dsn=None,
        mode="hybrid",
        k=4,
        strategy="multi-query",
        rerank="none",
        min_similarity=None,
        embedding=None,
        model="m.gguf",
        max_tokens=256,
        base_url=None,
        api_key=None,
    )
    assert isinstance(rag, RagSpec)
    assert rag.indexes == [IndexSpec(backend="folder", path="docs")]
    assert rag.strategy == "multi_query" and rag.model == ModelSpec(model="m.gguf", max_tokens=256)
    assert rag.min_similarity is None  # the floor is the builder's default, not a copied value
    pg = spec_from_options("rag", index="docs", dsn=DSN, mode="auto", k=3)
    assert isinstance(pg, RagSpec)
    assert pg.indexes[0].backend == "postgres" and pg.indexes[0].name == "docs"
    with pytest.raises(OptionError, match="not a PostgreSQL connection string"):
        spec_from_options("rag", index="docs", dsn="/tmp/not-a-dsn")
    with pytest.raises(OptionError, match="no index given"):
        spec_from_options("rag")
    with pytest.raises(OptionError, match="did you mean 'min_similarity'"):
        spec_from_options("rag", index="docs", min_similarty=0.2)


def test_spec_from_options_for_agent_and_story() -> None:
    agent = spec_from_options(
        "agent",
        tools="calculator, knowledge_base",
        index="kb",
        dsn=DSN,
        mcp_config=None,
        max_iterations=4,
        max_execution_time=None,
        model=None,
        mode=None,
        step_max_tokens=48,
        seed=0,
    )
    assert isinstance(agent, AgentSpec)
    assert agent.tools == ["calculator", "knowledge_base"] and agent.index is not None
    assert agent.model.kind == "completion" and agent.model.max_tokens == 48  # local default
    served = spec_from_options("agent", base_url="http://gpu:8000/v1")
    assert served.model.kind == "chat"  # a served model is a chat model
    with pytest.raises(OptionError, match="--mode completion needs a local GGUF"):
        spec_from_options("agent", base_url="http://gpu:8000/v1", mode="completion")
    with pytest.raises(OptionError, match="knowledge_base tool needs an index"):
        spec_from_options("agent", tools="knowledge_base")
    story = spec_from_options("story", model="m.gguf", temperature=0.7, seed=-1, max_tokens=200)
    assert story == StorySpec(
        model=ModelSpec(model="m.gguf", temperature=0.7, seed=-1, max_tokens=200)
    )


@pytest.fixture(scope="module")
def dense_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orchestrator.retrieval import build_index

    out = tmp_path_factory.mktemp("pipelines") / "docs"
    build_index(
        [
            {"doc_id": "zorblat", "text": "The Zorblat is a small moon covered in blue ice."},
            {"doc_id": "bridge", "text": "The Verrin Bridge spans the river Olle in Tarn."},
        ],
        out,
    )
    return out


def test_the_floor_applies_by_default_when_answering(dense_index: Path) -> None:
    spec = spec_from_options("rag", index=dense_index)
    ((retriever, description),) = open_retrievers(spec).values()
    assert retriever.min_similarity == DEFAULT_MIN_SIMILARITY and description == "docs"
    ((explicit, _),) = open_retrievers(spec.model_copy(update={"min_similarity": 0.1})).values()
    assert explicit.min_similarity == 0.1
    ((search, _),) = open_retrievers(spec, floor=False).values()  # search keeps every hit
    assert search.min_similarity is None


def test_an_off_topic_question_gets_no_answer_without_the_model(dense_index: Path) -> None:
    from orchestrator.chains.rag import NO_ANSWER

    result = build(spec_from_options("rag", index=dense_index)).invoke(
        {"question": "How do jet engines produce thrust?"}
    )
    assert result["answer"] == NO_ANSWER and result["sources"] == []


def test_print_spec_then_spec_file_runs_the_same_spec(
    dense_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orchestrator.agents.pipelines as pipelines

    args = ["--index", str(dense_index), "-k", "2", "--strategy", "multi-query"]
    printed = runner.invoke(app, ["rag", *args, "--api-key", "sk-9", "--print-spec"])
    assert printed.exit_code == 0, printed.output
    assert "sk-9" not in printed.output
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(printed.output)
    built: list[Any] = []

    def capture(spec: Any, **parts: Any) -> Any:
        built.append(spec)
        return build(spec.model_copy(update={"strategy": "plain"}), **parts)

    monkeypatch.setattr(pipelines, "build", capture)
    question = "How do jet engines produce thrust?"
    direct = runner.invoke(app, ["rag", question, *args, "--json"])
    from_file = runner.invoke(app, ["rag", question, "--spec", str(spec_file), "--json"])
    assert direct.exit_code == 0 and from_file.exit_code == 0, direct.output + from_file.output
    assert built[0] == built[1] == load_spec(spec_file)
    assert json.loads(direct.output) == json.loads(from_file.output)


def test_options_beside_a_spec_file_are_an_error(tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.yaml"
    dump_spec(RagSpec(indexes=[IndexSpec.of("docs")]), spec_file)
    result = runner.invoke(app, ["rag", "q", "--spec", str(spec_file), "-k", "9"])
    assert result.exit_code == 2
    assert "--spec runs" in result.output and "-k" in result.output
    story = tmp_path / "story.json"
    dump_spec(StorySpec(), story)
    wrong = runner.invoke(app, ["rag", "q", "--spec", str(story)])
    assert wrong.exit_code == 2 and "is a story spec" in " ".join(wrong.output.split())
    agent = tmp_path / "agent.json"
    dump_spec(AgentSpec(), agent)
    wrong = runner.invoke(app, ["rag", "q", "--spec", str(agent)])
    assert wrong.exit_code == 2 and "is an agent spec" in " ".join(wrong.output.split())  # L7


@pytest.mark.parametrize("command", ["serve", "mcp"])
def test_serve_and_mcp_print_the_strategy_and_rerank(command: str, tmp_path: Path) -> None:
    """serve's model 'rag' and mcp's rag tool take --strategy and --rerank as `rag` does (the
    printed spec carries them; nothing is loaded)."""
    args = ["--index", str(tmp_path / "docs"), "--strategy", "multi-query", "--rerank", "none"]
    printed = runner.invoke(app, [command, *args, "-k", "2", "--print-spec"])
    assert printed.exit_code == 0, printed.output
    spec = from_dict(json.loads(printed.output))
    assert isinstance(spec, RagSpec)
    assert (spec.strategy, spec.rerank, spec.k) == ("multi_query", "none", 2)
    assert spec == spec_from_options(
        "rag",
        index=tmp_path / "docs",
        strategy="multi-query",
        rerank="none",
        k=2,
        mode=spec.mode,
        max_tokens=spec.model.max_tokens,
    )


def test_serve_rag_options_without_an_index_are_an_error() -> None:
    result = runner.invoke(app, ["serve", "--strategy", "hyde", "--print-spec"])
    assert result.exit_code == 2
    assert "--strategy shape model 'rag', which needs an index" in " ".join(result.output.split())


def test_chat_over_documents_takes_rerank(monkeypatch: pytest.MonkeyPatch) -> None:
    """chat --index passes --rerank into its spec (the document turn's retriever); without
    --index it is an error, as its other document options are."""
    import orchestrator.agents.pipelines.rag as pipelines_rag
    import orchestrator.cli.chat as chat_cli

    opened: list[Any] = []
    monkeypatch.setattr(
        pipelines_rag, "open_retrievers", lambda spec: opened.append(spec) or {"d": (None, "")}
    )
    monkeypatch.setattr(chat_cli, "run_chat", lambda *args, **kwargs: None)
    result = runner.invoke(app, ["chat", "--index", "docs", "--rerank", "llm"])
    assert result.exit_code == 0, result.output
    assert opened[0].rerank == "llm" and opened[0].k == RagSpec.model_fields["k"].default
    alone = runner.invoke(app, ["chat", "--rerank", "llm"])
    assert alone.exit_code == 2 and "--rerank" in alone.output


def test_search_measures_only_the_strategies_that_search_one_index(tmp_path: Path) -> None:
    from orchestrator.agents.pipelines.search import search_retriever
    from orchestrator.evals.retrieval import MEASURED_STRATEGIES

    spec = spec_from_options("rag", index=tmp_path / "docs", strategy="route")
    for strategies in (MEASURED_STRATEGIES, ("plain",)):
        with pytest.raises(OptionError, match="does not apply here"):
            search_retriever(spec, strategies=strategies)
