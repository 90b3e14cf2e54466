"""RAG strategies with the real embedded GGUF over real indexes, and their CLI (``--json``)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator.chains import rag_strategy
from orchestrator.chains.strategies import QUERY_PATTERN, STOP_REASONS
from orchestrator.cli.app import app

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "two_hop"
QUESTION = "In which town was the designer of the Verrin Bridge born?"
runner = CliRunner()


def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / "corpus.jsonl").open()]


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two-hop corpus whole (``all``), and split into ``works`` (bridges, films, ships...)
    and ``people`` (where people were born, what they play...)."""
    from orchestrator.retrieval import build_index

    root = tmp_path_factory.mktemp("strategies")
    docs = [{"doc_id": r["_id"], "text": r["text"]} for r in corpus()]
    build_index(docs, root / "all")
    build_index([d for d in docs if d["doc_id"].startswith("a")], root / "works")
    build_index([d for d in docs if d["doc_id"].startswith("b")], root / "people")
    return {"all": root / "all", "works": root / "works", "people": root / "people"}


def check_answer(out: dict[str, Any], strategy: str) -> None:
    assert out["strategy"] == strategy and out["question"] == QUESTION
    assert out["answer"] and out["sources"]
    ids = {r["_id"] for r in corpus()}
    assert all(s["doc_id"] in ids for s in out["sources"])
    assert [s["n"] for s in out["sources"]] == list(range(1, len(out["sources"]) + 1))
    assert set(out["citations"]) <= {s["n"] for s in out["sources"]}
    assert out["queries"] and all(isinstance(q, str) and q for q in out["queries"])


@pytest.mark.parametrize("strategy", ["plain", "rewrite", "multi_query", "hyde"])
def test_query_strategies_answer_from_a_real_index(
    strategy: str, chat_llm: Any, indexes: dict[str, Path]
) -> None:
    from orchestrator.retrieval import open_retriever

    retriever = open_retriever(indexes["all"], k=2)
    out = rag_strategy(strategy, chat_llm, retriever).invoke({"question": QUESTION})
    check_answer(out, strategy)
    if strategy == "plain":
        assert out["queries"] == [QUESTION]
    if strategy == "rewrite":  # one grammar-constrained query
        assert len(out["queries"]) == 1 and re.fullmatch(QUERY_PATTERN, out["queries"][0])
    if strategy == "multi_query":  # the question first, then up to 3 distinct variants
        assert out["queries"][0] == QUESTION and 1 <= len(out["queries"]) <= 4
        assert all(re.fullmatch(QUERY_PATTERN, q) for q in out["queries"][1:])
        assert len({q.lower() for q in out["queries"]}) == len(out["queries"])
    if strategy == "hyde":
        assert out["queries"] == [QUESTION] and out["hypothetical"].strip()
    assert len(out["sources"]) <= 2


def test_multi_hop_is_bounded_and_states_why_it_stopped(
    chat_llm: Any, indexes: dict[str, Path]
) -> None:
    from orchestrator.retrieval import open_retriever

    chain = rag_strategy("multi_hop", chat_llm, open_retriever(indexes["all"], k=1), max_hops=3)
    out = chain.invoke(QUESTION)
    check_answer(out, "multi_hop")
    assert 1 <= len(out["hops"]) <= 3 and out["stop_reason"] in STOP_REASONS
    assert [h["query"] for h in out["hops"]] == out["queries"][: len(out["hops"])]
    numbers = [n for hop in out["hops"] for n in hop["sources"]]
    assert numbers == list(range(1, len(out["sources"]) + 1))  # each hop's new sources
    assert out["hops"][0]["query"] == QUESTION


def test_route_picks_named_indexes_under_the_grammar(
    chat_llm: Any, indexes: dict[str, Path]
) -> None:
    from orchestrator.retrieval import open_retriever

    routes = {
        "works": (open_retriever(indexes["works"], k=2), "bridges, films, ships, cheeses"),
        "people": (open_retriever(indexes["people"], k=2), "people, towns, languages"),
    }
    out = rag_strategy("route", chat_llm, routes).invoke(QUESTION)
    check_answer(out, "route")
    assert out["route"] and set(out["route"]) <= {"works", "people"}
    assert {s["doc_id"][0] for s in out["sources"]} <= {
        {"works": "a", "people": "b"}[name] for name in out["route"]
    }


def cli(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("strategy", "keys"),
    [
        ("rewrite", {"queries"}),
        ("multi-query", {"queries"}),
        ("hyde", {"queries", "hypothetical"}),
        ("multi-hop", {"queries", "hops", "stop_reason"}),
    ],
)
def test_rag_cli_strategy_json(strategy: str, keys: set[str], indexes: dict[str, Path]) -> None:
    index = str(indexes["all"])
    out = cli("rag", QUESTION, "--index", index, "--strategy", strategy, "--max-tokens", "32")
    assert set(out) == {"answer", "sources", "citations", "strategy"} | keys
    assert out["strategy"] == strategy.replace("-", "_") and out["sources"]


def test_rag_cli_route_and_agentic_over_several_indexes(indexes: dict[str, Path]) -> None:
    two = ["--index", str(indexes["works"]), "--index", str(indexes["people"])]
    out = cli("rag", QUESTION, *two, "--strategy", "route", "--max-tokens", "32")
    assert set(out["route"]) <= {"works", "people"} and out["route"]
    assert {"answer", "sources", "citations"} <= set(out)
    out = cli("rag", QUESTION, *two, "--strategy", "agentic", "--max-tokens", "64")
    assert {"answer", "sources", "citations"} <= set(out)
    assert set(out["citations"]) <= {s["n"] for s in out["sources"]}


def test_rag_cli_rejects_several_indexes_and_unknown_strategies(
    indexes: dict[str, Path], tmp_path: Path
) -> None:
    two = ["--index", str(indexes["works"]), "--index", str(indexes["people"])]
    result = runner.invoke(app, ["rag", QUESTION, *two, "--strategy", "hyde"])
    assert result.exit_code != 0 and "route or agentic" in result.output
    result = runner.invoke(app, ["rag", QUESTION, *two[:2], "--strategy", "fusion"])
    assert result.exit_code != 0 and "multi-query" in result.output
    shutil.copytree(indexes["works"], tmp_path / "x" / "works")
    same = ["--index", str(indexes["works"]), "--index", str(tmp_path / "x" / "works")]
    result = runner.invoke(app, ["rag", QUESTION, *same, "--strategy", "route"])
    assert result.exit_code != 0 and "both named 'works'" in result.output


def test_search_cli_shows_the_queries_used(indexes: dict[str, Path]) -> None:
    index = str(indexes["all"])
    out = cli("search", QUESTION, "--index", index, "--strategy", "multi-query", "-k", "3")
    assert out["strategy"] == "multi_query" and out["queries"][0] == QUESTION
    assert 1 <= len(out["results"]) <= 3 and "hypothetical" not in out
    out = cli("search", QUESTION, "--index", index, "--strategy", "hyde", "-k", "2")
    assert out["queries"] == [QUESTION] and out["hypothetical"]
    result = runner.invoke(app, ["search", QUESTION, "--index", index, "--strategy", "route"])
    assert result.exit_code != 0 and "does not apply" in result.output


def test_eval_retrieval_measures_a_strategy(indexes: dict[str, Path], tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    shutil.copy(DATA / "corpus.jsonl", beir / "corpus.jsonl")
    questions = [json.loads(line) for line in (DATA / "questions.jsonl").open()][:3]
    (beir / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": q["id"], "text": q["question"]}) for q in questions)
    )
    qrels = [f"{q['id']}\t{d}\t1" for q in questions for d in q["supporting"]]
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(qrels))
    args = ["eval", "retrieval", "--dataset", str(beir), "--index", str(indexes["all"])]
    plain = cli(*args, "--k", "5", "--metrics", "map,recall_5")
    rewrite = cli(*args, "--k", "5", "--metrics", "map,recall_5", "--strategy", "rewrite")
    assert set(plain) == set(rewrite) == {"map", "recall_5"}
    assert 0.0 < rewrite["recall_5"] <= 1.0 and 0.0 < plain["recall_5"] <= 1.0
    result = runner.invoke(app, [*args, "--strategy", "route"])
    assert result.exit_code != 0 and "does not apply" in result.output
