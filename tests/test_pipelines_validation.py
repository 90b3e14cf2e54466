"""A pipeline spec is checked when it is made (issue 19 review: H2, H4, M1, M3, M4, L2): the
strategy's and the retriever's options, secrets that never print, paths relative to the spec
file, the model it runs, and errors naming the file and key. No model is loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator.agents.pipelines import (
    AgentSpec,
    RagSpec,
    dump_spec,
    load_spec,
    spec_from_options,
    to_dict,
)
from orchestrator.cli.app import app
from orchestrator.errors import OptionError
from orchestrator.retrieval import IndexSpec
from orchestrator.retrieval.location import expand_dsn

runner = CliRunner()
SECRET_DSN = "postgresql://user:TopSecret99@127.0.0.1:5432/db"


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def rag_data(**fields: Any) -> dict[str, Any]:
    return {"kind": "rag", "indexes": [{"backend": "folder", "path": "my-index"}], **fields}


# H2: strategy_options and search_options are checked when the spec is made.


def test_a_misspelled_strategy_option_names_the_field_path(tmp_path: Path) -> None:
    with pytest.raises(OptionError) as caught:
        spec_from_options(
            "rag", index="docs", strategy="multi-query", strategy_options={"n_querys": 2}
        )
    assert "strategy_options.n_querys" in caught.value.message
    assert caught.value.fix == "did you mean 'n_queries'?"
    assert "MultiQuerySources" not in str(caught.value)
    bad = write(
        tmp_path / "bad7.json",
        rag_data(strategy="multi-query", strategy_options={"n_querys": 2}),
    )
    with pytest.raises(OptionError, match=r"bad7\.json: strategy_options\.n_querys"):
        load_spec(bad)
    printed = runner.invoke(app, ["rag", "q", "--spec", str(bad), "--print-spec"])
    assert printed.exit_code == 2 and "n_queries" in printed.output


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"strategy": "multi-query", "strategy_options": {"n_queries": 20}}, "less than or equal"),
        ({"strategy": "agentic", "strategy_options": {"max_iteration": 2}}, "max_iterations"),
        ({"strategy": "hyde", "strategy_options": {"k": 2}}, "strategy_options.k"),
        ({"search_options": {"rrf_kk": 60}}, "search_options.rrf_kk"),
        ({"search_options": {"dense_weight": 2.0}}, "search_options: dense_weight"),
        ({"search_options": {"depth": "deep"}}, "search_options.depth"),
    ],
)
def test_strategy_and_search_options_are_checked_by_name_and_value(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(OptionError) as caught:
        spec_from_options("rag", index="docs", **fields)
    assert message in f"{caught.value.message} {caught.value.fix}"


def test_good_strategy_and_search_options_pass() -> None:
    spec = spec_from_options(
        "rag", index="docs", strategy="agentic",
        strategy_options={"max_iterations": 2, "max_chars": 200},
        search_options={"fusion": "rrf", "depth": 50},
    )  # fmt: skip
    assert spec.strategy_options == {"max_iterations": 2, "max_chars": 200}


# H4: a DSN password is never printed; ${VAR} is expanded when the spec is made.


def test_print_spec_leaves_out_the_dsn_password() -> None:
    printed = runner.invoke(app, ["rag", "q", "--index", "x", "--dsn", SECRET_DSN, "--print-spec"])
    assert printed.exit_code == 0, printed.output
    assert "TopSecret99" not in printed.output
    assert "PGPASSWORD" in printed.output  # the note on stderr says how to give it
    spec = spec_from_options("rag", index="x", dsn=SECRET_DSN)
    assert spec.indexes[0].dsn == SECRET_DSN  # used to connect as given
    assert to_dict(spec)["indexes"][0]["dsn"] == "postgresql://user@127.0.0.1:5432/db"
    assert "TopSecret99" not in dump_spec(spec)


def test_a_dsn_variable_is_expanded_and_written_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PG_DSN", SECRET_DSN)
    index = {"backend": "postgres", "name": "docs", "dsn": "${PG_DSN}"}
    spec_file = write(tmp_path / "pg.json", rag_data(indexes=[index]))
    spec = load_spec(spec_file)
    assert isinstance(spec, RagSpec) and spec.indexes[0].dsn == SECRET_DSN
    assert to_dict(spec)["indexes"][0]["dsn"] == "${PG_DSN}"
    assert expand_dsn("${PG_DSN}") == SECRET_DSN
    printed = runner.invoke(app, ["rag", "q", "--spec", str(spec_file), "--print-spec"])
    assert printed.exit_code == 0 and "${PG_DSN}" in printed.output
    assert "TopSecret99" not in printed.output


def test_an_unset_dsn_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PG_DNS", raising=False)
    index = {"backend": "postgres", "name": "docs", "dsn": "${PG_DNS}"}
    spec_file = write(tmp_path / "pg.json", rag_data(indexes=[index]))
    with pytest.raises(OptionError, match=r"pg\.json: PG_DNS is not set"):
        load_spec(spec_file)
    with pytest.raises(OptionError, match="PG_DNS is not set"):
        IndexSpec.of("docs", "${PG_DNS}")
    with pytest.raises(OptionError, match="'/tmp/pg' is not a PostgreSQL connection string"):
        IndexSpec.of("docs", "/tmp/pg")


# M1: relative paths in a spec file are relative to its folder; --print-spec writes them
# absolute.


def test_relative_paths_resolve_against_the_spec_file(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    data = rag_data(
        indexes=[{"path": "../my-index"}], embedding="emb", rerank="ce", model={"model": "m.gguf"}
    )
    spec = load_spec(write(sub / "rag.json", data))
    assert isinstance(spec, RagSpec)
    assert spec.indexes[0].path == str(tmp_path / "my-index")
    assert (spec.model.model, spec.embedding, spec.rerank) == (
        str(sub / "m.gguf"), str(sub / "emb"), str(sub / "ce"),
    )  # fmt: skip
    agent = load_spec(
        write(
            sub / "agent.json", {"kind": "agent", "index": {"path": "kb"}, "mcp_config": "m.json"}
        )
    )
    assert isinstance(agent, AgentSpec) and agent.index is not None
    assert (agent.index.path, agent.mcp_config) == (str(sub / "kb"), str(sub / "m.json"))


def test_print_spec_writes_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    printed = runner.invoke(app, ["rag", "q", "--index", "my-index", "--print-spec"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["indexes"][0]["path"] == str(tmp_path / "my-index")


# M3: --print-spec prints the spec that would run.


def test_the_base_url_variable_is_written_into_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_BASE_URL", "http://127.0.0.1:1")
    spec = spec_from_options("rag", index="docs")
    assert spec.model.base_url == "http://127.0.0.1:1/v1"
    printed = runner.invoke(app, ["rag", "q", "--index", "docs", "--print-spec"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["model"]["base_url"] == "http://127.0.0.1:1/v1"


def test_rerank_llm_with_a_served_model_is_refused_by_the_spec(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="rerank llm"):
        spec_from_options("rag", index="docs", rerank="llm", base_url="http://127.0.0.1:1/v1")
    args = ["--index", "docs", "--rerank", "llm", "--base-url", "http://127.0.0.1:1/v1"]
    printed = runner.invoke(app, ["rag", "q", *args, "--print-spec"])
    assert printed.exit_code == 2 and "rerank llm" in printed.output
    data = rag_data(rerank="llm", model={"base_url": "http://127.0.0.1:1/v1"})
    with pytest.raises(OptionError, match=r"served\.json: rerank llm"):
        load_spec(write(tmp_path / "served.json", data))


# M4: errors about a spec file name the file and the key, with "did you mean".


@pytest.mark.parametrize(
    ("data", "message", "fix"),
    [
        (
            rag_data(indexes=[{"backend": "postgress", "name": "x", "dsn": "postgresql://h/d"}]),
            "indexes.0.backend",
            "did you mean 'postgres'?",
        ),
        (rag_data(k="four"), "k: Input should be a valid integer", "edit"),
        (rag_data(stratgy_options={}), "unknown key 'stratgy_options'", "'strategy_options'"),
        (rag_data(indexes=[{"pth": "x"}]), "unknown key 'pth' in indexes.0", "'path'"),
        (rag_data(mode="hybird"), "mode", "did you mean 'hybrid'?"),
    ],
)
def test_spec_file_errors_name_the_file_and_key(
    data: dict[str, Any], message: str, fix: str, tmp_path: Path
) -> None:
    spec_file = write(tmp_path / "bad.json", data)
    with pytest.raises(OptionError) as caught:
        load_spec(spec_file)
    assert caught.value.message.startswith(f"{spec_file}: ")
    assert message in caught.value.message and fix in str(caught.value.fix)
    result = runner.invoke(app, ["rag", "q", "--spec", str(spec_file)])
    assert result.exit_code == 2 and "see --help" not in result.output


# L2: min_similarity is a cosine.


@pytest.mark.parametrize("value", [5.0, -1.5])
def test_min_similarity_is_bounded(value: float) -> None:
    with pytest.raises(OptionError, match="min_similarity"):
        spec_from_options("rag", index="docs", min_similarity=value)
    printed = runner.invoke(
        app, ["rag", "q", "--index", "docs", "--min-similarity", str(value), "--print-spec"]
    )
    assert printed.exit_code == 2 and "min_similarity" in printed.output
