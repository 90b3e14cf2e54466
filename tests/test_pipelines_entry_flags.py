"""The same flags build the same pipeline on every entry point (review of issue 19: H1, H3,
M2, M6, L3): each command's pipeline flags default to "not given", so the RagSpec's defaults
apply everywhere; ``--print-spec`` shows it. Nothing here loads a model or an index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.agents.pipelines import AgentSpec, RagSpec, dump_spec, from_dict
from orchestrator.cli import common
from orchestrator.cli.app import app
from orchestrator.models import DEFAULT_SAMPLING
from orchestrator.retrieval import IndexSpec

runner = CliRunner()

#: Flag sets that every RAG entry point takes (none: every default).
FLAG_SETS = [
    [],
    ["--mode", "bm25", "-k", "2", "--min-similarity", "0.2", "--rerank", "none"],
    ["--strategy", "multi-query", "--embedding", "emb", "--mode", "auto"],
]


def printed(args: list[str]) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--print-spec"])
    assert result.exit_code == 0, f"{args}: {result.output}"
    return json.loads(result.stdout)


@pytest.mark.parametrize("flags", FLAG_SETS, ids=["defaults", "search", "strategy"])
def test_the_same_flags_print_the_same_spec_everywhere(flags: list[str], tmp_path: Path) -> None:
    index = ["--index", str(tmp_path / "docs")]
    dataset = ["--dataset", str(tmp_path / "qa.jsonl")]
    specs = {
        "rag": printed(["rag", *index, *flags]),
        "serve": printed(["serve", *index, *flags]),
        "mcp": printed(["mcp", *index, *flags]),
        "eval rag": printed(["eval", "rag", *dataset, *index, *flags]),
    }
    assert all(spec == specs["rag"] for spec in specs.values()), specs
    spec = from_dict(specs["rag"])
    assert isinstance(spec, RagSpec)
    if not flags:  # the spec's defaults, nowhere a second set (mcp had k=3, mode auto)
        assert spec == RagSpec(indexes=[IndexSpec.of(tmp_path / "docs")])
        assert "max_tokens" not in specs["rag"]["model"]  # the model layer's default
    # --max-tokens (not serve's: there a request's max_tokens, or --default-max-tokens, rules)
    tokens = ["--max-tokens", "64", *flags]
    expected = printed(["rag", *index, *tokens])
    assert expected["model"]["max_tokens"] == 64
    for command in (["mcp"], ["eval", "rag", *dataset]):
        assert printed([*command, *index, *tokens]) == expected


def test_chat_over_documents_builds_rag_s_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chat --index takes the same search flags (--sources is its -k) and gives rag's spec."""
    import orchestrator.agents.pipelines.rag as pipelines_rag
    import orchestrator.cli.chat as chat_cli

    opened: list[Any] = []
    monkeypatch.setattr(
        pipelines_rag, "open_retrievers", lambda spec: opened.append(spec) or {"d": (None, "")}
    )
    monkeypatch.setattr(chat_cli, "run_chat", lambda *args, **kwargs: None)
    index = ["--index", str(tmp_path / "docs")]
    search = ["--mode", "bm25"]
    for flags, chat_flags in [([], []), (["-k", "2", *search], ["--sources", "2", *search])]:
        result = runner.invoke(app, ["chat", *index, *chat_flags])
        assert result.exit_code == 0, result.output
        assert opened.pop() == from_dict(printed(["rag", *index, *flags]))


def _help(option: Any) -> str:
    (info,) = [m for m in get_args(option) if isinstance(m, typer.models.OptionInfo)]
    return str(info.help)


def test_the_help_names_the_spec_s_defaults() -> None:
    fields = RagSpec.model_fields
    assert f"(default: {fields['k'].default})" in _help(common.KOpt)
    assert f"(default: {fields['mode'].default})" in _help(common.ModeOpt)
    assert f"(default: {fields['rerank'].default})" in _help(common.RerankOpt)
    assert f"(default: {fields['strategy'].default})" in _help(common.StrategyOpt)
    assert f"(default: {DEFAULT_SAMPLING.max_tokens} " in _help(common.MaxTokensOpt)


def test_eval_retrieval_on_a_question_set_names_the_fix(tmp_path: Path) -> None:
    """H1: a .jsonl dataset is a question set, not a BEIR folder: rc 2 and the fix, not a
    KeyError from the RAG metrics table."""
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "q", "ground_truth": "a"}\n')
    result = runner.invoke(app, ["eval", "retrieval", "--dataset", str(qa), "--index", "x"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "BEIR folder" in text and "orchestrator eval rag" in text
    assert not isinstance(result.exception, KeyError)
    folder = runner.invoke(app, ["eval", "rag", "--dataset", str(tmp_path), "--index", "x"])
    text = " ".join(folder.output.split())
    assert folder.exit_code == 2 and "JSONL question set" in text
    assert "orchestrator eval retrieval" in text


def test_eval_retrieval_takes_a_spec_file(tmp_path: Path) -> None:
    """L3: eval retrieval --spec measures that spec (its k: the retrieval depth, --k)."""
    spec_file = tmp_path / "rag.json"
    dump_spec(RagSpec(indexes=[IndexSpec.of(tmp_path / "docs")], mode="bm25"), spec_file)
    args = ["eval", "retrieval", "--dataset", str(tmp_path), "--spec", str(spec_file)]
    spec = from_dict(printed([*args, "--k", "50"]))
    assert isinstance(spec, RagSpec) and (spec.mode, spec.k) == ("bm25", 50)
    beside = runner.invoke(app, [*args, "--mode", "dense"])
    assert beside.exit_code == 2 and "--mode" in beside.output


def test_agent_prints_and_runs_a_spec(tmp_path: Path) -> None:
    """L3: agent --print-spec / --spec FILE, as rag's."""
    args = ["agent", "--tools", "calculator,knowledge_base", "--index", str(tmp_path / "kb")]
    spec = from_dict(printed([*args, "--max-steps", "3"]))
    assert isinstance(spec, AgentSpec) and spec.max_iterations == 3
    assert spec.index == IndexSpec.of(tmp_path / "kb")
    spec_file = tmp_path / "agent.json"
    dump_spec(spec, spec_file)
    assert from_dict(printed(["agent", "--spec", str(spec_file)])) == spec
    beside = runner.invoke(app, ["agent", "q", "--spec", str(spec_file), "--max-steps", "2"])
    assert beside.exit_code == 2 and "--max-steps" in beside.output


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """serve up to the point it would listen: the configs it would serve."""
    import uvicorn

    import orchestrator.server.app as server_app
    import orchestrator.server.backends as backends

    configs: list[Any] = []

    class Backends:
        def __init__(self, config: Any, on_close: Any) -> None:
            self.tools: list[Any] = []
            configs.append(config)

        def warm_up(self) -> None: ...

        def kinds(self) -> list[str]:
            return ["rag"]

    monkeypatch.setattr(backends, "Backends", Backends)
    monkeypatch.setattr(server_app, "create_app", lambda config, backends: None)
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    return configs


def test_serve_spec_gives_the_knowledge_base_its_index(served: list[Any], tmp_path: Path) -> None:
    """M2: serve --spec F --tools knowledge_base: the agent searches the spec's index."""
    spec_file = tmp_path / "rag.json"
    dump_spec(RagSpec(indexes=[IndexSpec.of(tmp_path / "docs")]), spec_file)
    args = ["serve", "--spec", str(spec_file), "--tools", "knowledge_base", "--port", "8123"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert served[0].agent.index == IndexSpec.of(tmp_path / "docs") == served[0].rag.indexes[0]


def test_several_indexes_with_the_knowledge_base_are_an_error(
    served: list[Any], tmp_path: Path
) -> None:
    """L3: knowledge_base searches one index: several are an error naming the fix (not a
    silent first); without knowledge_base, serve's route over several works."""
    indexes = ["--index", str(tmp_path / "a"), "--index", str(tmp_path / "b")]
    route = [*indexes, "--strategy", "route"]
    for command in (["serve", *route, "--tools", "knowledge_base"], ["mcp", *route]):
        result = runner.invoke(app, command)
        text = " ".join(result.output.split())
        assert result.exit_code == 2, text
        assert "searches one index, and 2 were given" in text and "give one --index" in text
    ok = runner.invoke(app, ["serve", *route, "--tools", "calculator", "--port", "8123"])
    assert ok.exit_code == 0, ok.output
    assert len(served[-1].rag.indexes) == 2 and served[-1].agent.index is None


def test_mcp_takes_the_search_flags(tmp_path: Path) -> None:
    """L3: mcp --mode, --min-similarity, --embedding reach the rag tool's spec."""
    args = ["mcp", "--index", str(tmp_path / "d"), "--mode", "dense", "--min-similarity", "0.5"]
    spec = from_dict(printed([*args, "--embedding", "emb"]))
    assert isinstance(spec, RagSpec)
    assert (spec.mode, spec.min_similarity, Path(str(spec.embedding)).name) == ("dense", 0.5, "emb")


def test_a_suite_configuration_has_no_defaults_of_its_own(tmp_path: Path) -> None:
    """M6: a configuration that leaves a key out gets the RagSpec's default (not 160 tokens),
    its mode is the spec's SearchMode, and a misspelt key names the file:line."""
    from orchestrator.agents.pipelines import spec_from_options
    from orchestrator.errors import DataError
    from orchestrator.evals.runner import pipeline_spec
    from orchestrator.evals.suite import PipelineConfig, load_suite

    index = str(tmp_path / "docs")
    config = PipelineConfig(name="plain", index=index)
    assert pipeline_spec(config, tmp_path, index) == spec_from_options("rag", index=index)
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: s\ndataset: qa.jsonl\nmetrics: [fluency]\n"
        "configurations:\n  - name: a\n    mode: hybird\n"
    )
    with pytest.raises(DataError, match=r"suite.yaml:6: configurations.0.mode"):
        load_suite(suite)
    suite.write_text(suite.read_text().replace("mode: hybird", "max_token: 9"))
    with pytest.raises(DataError, match=r"suite.yaml:6: unknown key 'max_token'") as error:
        load_suite(suite)
    assert error.value.fix == "did you mean 'max_tokens'?"


def test_a_suite_dsn_variable_is_checked_and_kept_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suite's ${VAR} DSN uses the index layer's one expansion rule: an unset variable is
    named at file:line; a set one reaches the spec as written (no password in results)."""
    from orchestrator.errors import DataError
    from orchestrator.evals.runner import pipeline_spec, spec_settings
    from orchestrator.evals.suite import load_suite

    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: s\ndataset: qa.jsonl\nmetrics: [fluency]\n"
        'configurations:\n  - name: pg\n    index: docs\n    dsn: "${PG_DNS}"\n'
    )
    monkeypatch.delenv("PG_DNS", raising=False)
    with pytest.raises(DataError, match=r"suite.yaml:7: .*PG_DNS is not set"):
        load_suite(suite)
    monkeypatch.setenv("PG_DNS", "postgresql://u:TopSecret@127.0.0.1:1/db")
    loaded, base = load_suite(suite)
    spec = pipeline_spec(loaded.configurations[0], base, None)
    assert spec.indexes[0].dsn == "postgresql://u:TopSecret@127.0.0.1:1/db"
    assert "TopSecret" not in json.dumps(spec_settings(spec))
