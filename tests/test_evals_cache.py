"""The evaluation cache (evals/cache.py): each key part misses when changed, hits otherwise;
the SQLite file's migrations; and a real RAG suite re-run answered from the cache."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from evals_support import example_suite
from langchain_core.messages import HumanMessage, SystemMessage
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.errors import DataError
from orchestrator.evals.cache import CachedChatModel, EvalCache
from orchestrator.testing import ScriptedChatModel

IDENTITY = {"sha256": "ab" * 32, "temperature": 0.0, "seed": 0, "max_tokens": 64}
PROMPT = [SystemMessage("Answer from the sources."), HumanMessage("[1] d1: Paris. Q: where?")]


def _wrapped(cache: EvalCache, replies: list[str], **fields: Any) -> CachedChatModel:
    fields = {"identity": IDENTITY, "scope": {"indexes": ["v1"]}, **fields}
    return CachedChatModel(
        inner=ScriptedChatModel(replies=replies), store=cache, kind="answers", **fields
    )


def test_a_repeated_call_is_answered_from_the_cache_streamed_or_not(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path / "c.sqlite3")
    first = _wrapped(cache, ["In Paris."])
    assert first.invoke(PROMPT).content == "In Paris."
    again = _wrapped(cache, [])  # a scripted model with no replies left fails if it is called
    assert again.invoke(PROMPT).content == "In Paris."
    assert "".join(str(c.content) for c in again.stream(PROMPT)) == "In Paris."
    assert cache.counts["answers"] == {"hits": 2, "misses": 1}
    streamed = _wrapped(cache, ["Lyon."])
    assert "".join(str(c.content) for c in streamed.stream([HumanMessage("other")])) == "Lyon."
    assert _wrapped(cache, []).invoke([HumanMessage("other")]).content == "Lyon."


@pytest.mark.parametrize(
    "change",
    [
        {"identity": {**IDENTITY, "sha256": "cd" * 32}},  # another model file
        {"identity": {**IDENTITY, "temperature": 0.7}},  # sampling options
        {"identity": {**IDENTITY, "seed": 1}},  # seed
        {"scope": {"indexes": ["v2"]}},  # the index was rebuilt or edited
        {"prompt": [SystemMessage("Answer briefly."), PROMPT[1]]},  # the prompt template
        {"prompt": [PROMPT[0], HumanMessage("[1] d2: Paris. Q: where?")]},  # retrieved passages
        {"call": {"grammar": 'root ::= "yes" | "no"'}},  # the grammar constraining the reply
        {"call": {"max_tokens": 8}},  # the call's own options
    ],
)
def test_each_key_part_misses_when_changed(tmp_path: Path, change: dict[str, Any]) -> None:
    cache = EvalCache(tmp_path / "c.sqlite3")
    _wrapped(cache, ["first"]).invoke(PROMPT)
    fields = {k: v for k, v in change.items() if k in ("identity", "scope")}
    model = _wrapped(cache, ["second"], **fields)
    reply = model.invoke(change.get("prompt", PROMPT), **change.get("call", {}))
    assert reply.content == "second"
    assert cache.counts["answers"] == {"hits": 0, "misses": 2}


def test_a_random_seed_is_never_cached(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path / "c.sqlite3")
    identity = {**IDENTITY, "seed": -1}
    assert _wrapped(cache, ["a"], identity=identity).invoke(PROMPT).content == "a"
    assert _wrapped(cache, ["b"], identity=identity).invoke(PROMPT).content == "b"
    assert not (tmp_path / "c.sqlite3").exists()  # never even opened


def test_file_migrations_and_digests(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cache = EvalCache(path)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights")
    digest = cache.file_sha256(model)
    assert digest == hashlib.sha256(b"weights").hexdigest()
    model.write_bytes(b"other weights")
    assert cache.file_sha256(model) != digest
    cache.close()
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM orchestrator_migrations")] == [
            "0001_replies_file_digests"
        ]
        conn.execute("INSERT INTO orchestrator_migrations VALUES ('9999_future', 0)")
    with pytest.raises(DataError, match="newer than this code"):
        EvalCache(path).get("k", "answers")
    (tmp_path / "junk.sqlite3").write_bytes(b"not a database at all" * 100)
    with pytest.raises(DataError, match="not a usable evaluation cache"):
        EvalCache(tmp_path / "junk.sqlite3").get("k", "answers")


@pytest.mark.integration
def test_rag_suite_rerun_answers_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded model answers once; the re-run hits; --no-cache and a new seed miss."""
    monkeypatch.setenv("ORCHESTRATOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ORCHESTRATOR_HOME", str(tmp_path / "home"))
    body = "metrics: [rouge]\nconfigurations:\n  - {name: bm25, mode: bm25, k: 2, max_tokens: 16}\n"
    example_suite(tmp_path, 2, body)
    runner = CliRunner()

    def run(name: str, *extra: str) -> dict[str, Any]:
        args = ["eval", str(tmp_path / "suite.yaml"), "--out", str(tmp_path / name), *extra]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        return json.loads((tmp_path / name / "results.json").read_text())["configurations"][0]  # type: ignore[no-any-return]

    first, second = run("one"), run("two")
    assert first["cache"] == {"answers": {"hits": 0, "misses": 2}}
    assert second["cache"] == {"answers": {"hits": 2, "misses": 0}}
    assert [s["response"] for s in first["samples"]] == [s["response"] for s in second["samples"]]
    assert "cache" not in run("three", "--no-cache")
    assert "| bm25 | answers | 2 | 0 |" in (tmp_path / "two" / "report.md").read_text()
    (tmp_path / "suite.yaml").write_text(
        (tmp_path / "suite.yaml").read_text().replace("max_tokens: 16", "max_tokens: 16, seed: 3")
    )
    assert run("four")["cache"] == {"answers": {"hits": 0, "misses": 2}}
    assert first["model_sha256"] and len(first["spec_sha256"]) == 64
