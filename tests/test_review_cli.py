"""Review regressions for the issue 12/13 command-line options, found by trying them."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from typer.testing import CliRunner

from orchestrator.cli.app import app

runner = CliRunner()


class ManyRetriever(BaseRetriever):
    """Returns k distinct passages named after the query, for any query."""

    k: int = 4

    def search_many(self, queries: list[str], k: int | None = None) -> list[list[Document]]:
        return [
            [
                Document(f"{q} passage {i}", metadata={"chunk_id": f"{q}-{i}", "score": 1.0})
                for i in range(k or self.k)
            ]
            for q in queries
        ]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return self.search_many([query])[0]


@pytest.mark.parametrize(
    "args",
    [
        ["index", "DOCS", "--index", "OUT", "--ray-workers", "2"],
        ["eval", "retrieval", "--dataset", "DOCS", "--ray-workers", "2"],
        ["eval", "rag", "--dataset", "DOCS/qa.jsonl", "--index", "OUT", "--ray-workers", "2"],
    ],
)
def test_ray_workers_without_ray_is_an_error(tmp_path: Path, args: list[str]) -> None:
    """``--ray-workers N`` alone was silently ignored (the work ran in this process)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The Verrin Bridge spans the river Olle.")
    (docs / "qa.jsonl").write_text('{"user_input": "q", "reference": "r"}\n')
    filled = [a.replace("DOCS", str(docs)).replace("OUT", str(tmp_path / "idx")) for a in args]
    result = runner.invoke(app, filled)
    assert result.exit_code == 2, result.output
    assert "--ray-workers applies to --ray only" in result.output
    assert "add --ray local" in result.output
    assert not (tmp_path / "idx").exists()


def test_multi_hop_follow_up_shows_a_bounded_number_of_sources() -> None:
    """``eval retrieval --strategy multi-hop`` searches k=100: the follow-up prompt showed all
    100 sources (22k tokens, over the 4096 context) and the run failed."""
    from orchestrator.chains import rag_strategy
    from orchestrator.testing import ScriptedChatModel

    llm = ScriptedChatModel(replies=['{"next": "second"}', '{"next": "DONE"}', "A [1]."])
    chain = rag_strategy("multi_hop", llm, ManyRetriever(k=50), k=50)
    out = chain.invoke("first")
    assert len(out["sources"]) == 100 and out["stop_reason"] == "done"
    first, second = (str(llm.calls[i]["messages"]) for i in (0, 1))
    assert first.count("first passage") == 8
    assert second.count("first passage") == 4 and second.count("second passage") == 4
    assert "second passage 0" in second


def test_rag_k_sets_the_agentic_passages_per_search() -> None:
    """``rag --strategy agentic -k 8`` searched 3 passages (agentic_rag's default): -k was
    not handed on."""
    from orchestrator.agents.pipelines import strategy_runnable
    from orchestrator.testing import ScriptedChatModel

    retrievers = {"docs": (ManyRetriever(k=8), "Documents.")}
    llm = ScriptedChatModel(replies=["unused"])
    assert [i.k for i in strategy_runnable("agentic", llm, retrievers, k=8).indexes] == [8]
    assert [i.k for i in strategy_runnable("agentic", llm, retrievers, k=3).indexes] == [3]


def test_explicit_local_backend_with_a_dsn_is_an_error(tmp_path: Path) -> None:
    """``--backend local --dsn D`` quietly built in PostgreSQL (a DSN implied postgres even
    when the user named the local backend); nothing may be written anywhere."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The Verrin Bridge spans the river Olle.")
    out = tmp_path / "idx"
    args = ["index", str(docs), "--index", str(out), "--backend", "local"]
    result = runner.invoke(app, [*args, "--dsn", "postgresql://u@127.0.0.1:1/db"])
    assert result.exit_code == 2
    assert "--backend local builds an index directory" in result.output
    assert "leave out --dsn" in result.output
    assert not out.exists()
