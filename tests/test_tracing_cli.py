"""The command line records its runs (issue 21, point 1: on by default, ``--no-trace``,
``ORCHESTRATOR_TRACE=0``) and ``orchestrator logs`` reads them back (point 2): list, filters,
``show``, ``-q``, ``export`` into a question set that ``eval rag --dataset`` scores, ``--json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from orchestrator import tracing
from orchestrator.cli.app import app
from orchestrator.retrieval import build_index

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCS = [
    {"doc_id": "tower", "text": "The Eiffel Tower is 330 metres tall and stands in Paris."},
    {"doc_id": "bridge", "text": "The Golden Gate Bridge spans the strait in San Francisco."},
]
QUESTIONS = ["How tall is the Eiffel Tower?", "Where is the Golden Gate Bridge?"]


def _cli(home: Path, *args: str, **env: str) -> Result:
    runner = CliRunner()
    result = runner.invoke(
        app, list(args), env={"ORCHESTRATOR_HOME": str(home), "COLUMNS": "250", **env}
    )
    assert not tracing.is_enabled()  # each command turns tracing off when it ends
    return result


def _json(home: Path, *args: str) -> Any:
    result = _cli(home, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose store holds two `rag` runs, one `ask` run and one failed `rag` run; runs
    made with tracing turned off leave nothing."""
    root = tmp_path_factory.mktemp("tracing-cli")
    index = root / "index"
    build_index(DOCS, index, modes=("bm25",))
    home = root / "home"
    for question in QUESTIONS:
        done = _cli(
            home, "rag", "--index", str(index), "--mode", "bm25", "--max-tokens", "24", question
        )
        assert done.exit_code == 0, done.output
    assert _cli(home, "ask", "Say hello", "--max-tokens", "4").exit_code == 0
    assert _cli(home, "--no-trace", "ask", "Untraced one", "--max-tokens", "4").exit_code == 0
    off = _cli(home, "ask", "Untraced two", "--max-tokens", "4", ORCHESTRATOR_TRACE="0")
    assert off.exit_code == 0
    missing = _cli(home, "rag", "--index", str(root / "missing"), "--mode", "bm25", "Why?")
    assert missing.exit_code == 2
    assert _cli(home, "ask", "--help").exit_code == 0  # records nothing
    return home


def test_commands_record_runs_named_by_the_command(home: Path) -> None:
    runs = _json(home, "logs")
    assert [(r["command"], r["status"]) for r in runs] == [
        ("rag", "error"), ("ask", "ok"), ("rag", "ok"), ("rag", "ok")]  # fmt: skip
    failed, asked, *answered = runs
    assert "missing" in failed["error"] and failed["fix"]
    assert asked["input_tokens"] > 0 and asked["output_tokens"] > 0 and asked["model"]
    assert [r["input"] for r in reversed(answered)] == QUESTIONS
    assert all(r["pipeline"] == "rag:plain" and r["duration_s"] > 0 for r in answered)
    assert not any("Untraced" in json.dumps(r) for r in runs)


def test_list_filters_and_the_table(home: Path) -> None:
    assert [r["command"] for r in _json(home, "logs", "--command", "ask")] == ["ask"]
    assert len(_json(home, "logs", "--command", "rag", "--status", "ok")) == 2
    assert len(_json(home, "logs", "--limit", "1")) == 1
    assert len(_json(home, "logs", "--since", "1h", "--model", "SmolLM2")) == 3
    assert _json(home, "logs", "--until", "2000-01-01") == []
    table = _cli(home, "logs")
    assert table.exit_code == 0 and "rag:plain" in table.output and "error" in table.output
    bad = _cli(home, "logs", "--status", "fine")
    assert bad.exit_code == 2 and "running, ok, error, interrupted" in bad.output


def test_show_prints_the_span_tree(home: Path) -> None:
    run = _json(home, "logs", "--command", "rag", "--status", "ok", "--limit", "1")[0]
    shown = _cli(home, "logs", "show", run["run_id"][:8])
    assert shown.exit_code == 0, shown.output
    assert f"run {run['run_id']}" in shown.output
    assert "retrieval IndexRetriever" in shown.output and "docs [bridge" in shown.output
    assert "chat SmolLM2" in shown.output and "tokens" in shown.output
    detail = _json(home, "logs", "show", run["run_id"])
    assert detail["run"]["run_id"] == run["run_id"]
    kinds = {s["kind"] for s in detail["spans"]}
    assert {"retriever", "llm", "chain"} <= kinds
    missing = _cli(home, "logs", "show", "ffffffff")
    assert missing.exit_code == 2 and "orchestrator logs lists the runs" in missing.output


def test_search_finds_prompts_and_answers(home: Path) -> None:
    hits = _json(home, "logs", "-q", "Golden Gate")
    assert [h["input"] for h in hits] == [QUESTIONS[1]]
    assert hits[0]["match"]["snippet"]
    assert _json(home, "logs", "-q", "zeppelin") == []
    assert "Golden" in _cli(home, "logs", "-q", "Golden Gate").output


def test_export_writes_a_question_set_that_eval_rag_scores(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "logged.jsonl"
    summary = _json(home, "logs", "export", "--format", "jsonl", "-o", str(out))
    assert summary == {"rows": 2, "output": str(out), "format": "jsonl"}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["user_input"] for r in rows] == QUESTIONS
    assert all(r["retrieved_contexts"] and r["response"] == r["reference"] for r in rows)
    scored = _json(home, "eval", "rag", "--dataset", str(out), "--metrics", "string_similarity")
    assert [s["user_input"] for s in scored["samples"]] == QUESTIONS
    assert scored["mean"]["string_similarity"] == 1.0  # the recorded answer is the reference
    printed = _cli(home, "logs", "export")
    assert printed.exit_code == 0 and len(printed.stdout.splitlines()) == 2
