"""Techniques and strategies make their independent calls together on the real batched engine:
the engine decodes them in the same steps, and the results are those of one-by-one calls
(``max_concurrency: 1``) at the same seeds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.chains.strategies import RAG_STRATEGIES
from orchestrator.chains.techniques import prompt_technique

pytestmark = pytest.mark.integration

QUESTION = "What is 17 + 25?"
ONE_BY_ONE = {"max_concurrency": 1}
DATA = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "two_hop"
QUESTIONS = [
    "In which town was the designer of the Verrin Bridge born?",
    "Who built the ship Aldera?",
    "What does the film Grey Harbour show?",
]


def largest_batch(llm: Any, reset: bool = False) -> int:
    """The most sequences one engine step decoded together (since the last reset)."""
    stats = llm.engine.scheduler.stats
    if reset:
        stats["largest_batch"] = 0
    return int(stats["largest_batch"])


def test_self_consistency_samples_are_decoded_together_with_their_seeds(chat_llm: Any) -> None:
    technique = prompt_technique(
        "self-consistency", chat_llm, samples=3, base_seed=4, reasoning_tokens=16, answer_chars=12
    )
    alone = technique.invoke(QUESTION, ONE_BY_ONE)
    largest_batch(chat_llm, reset=True)
    together = technique.invoke(QUESTION)
    assert largest_batch(chat_llm) > 1
    assert together == alone and together["model_calls"] == 6
    largest_batch(chat_llm, reset=True)
    assert asyncio.run(technique.ainvoke(QUESTION)) == alone  # the same code, on a thread
    assert largest_batch(chat_llm) > 1


def test_tree_of_thought_levels_are_decoded_together(chat_llm: Any) -> None:
    technique = prompt_technique(
        "tot", chat_llm, breadth=1, proposals=3, depth=1, thought_chars=24, answer_chars=12
    )
    alone = technique.invoke(QUESTION, ONE_BY_ONE)
    largest_batch(chat_llm, reset=True)
    together = technique.invoke(QUESTION)
    assert largest_batch(chat_llm) > 1
    same = ("answer", "best_path", "thoughts", "stop_reason", "model_calls")
    assert {k: together[k] for k in same} == {k: alone[k] for k in same}


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from orchestrator.retrieval import build_index, open_retriever

    rows = [json.loads(line) for line in (DATA / "corpus.jsonl").open()]
    root = tmp_path_factory.mktemp("together") / "all"
    build_index([{"doc_id": r["_id"], "text": r["text"]} for r in rows], root)
    return open_retriever(root, k=2)


@pytest.mark.parametrize(
    ("strategy", "options"),
    [("multi_query", {"n_queries": 2}), ("hyde", {"passage_tokens": 16})],
)
def test_strategies_plan_several_questions_together(
    strategy: str, options: dict[str, Any], chat_llm: Any, retriever: Any
) -> None:
    step = RAG_STRATEGIES[strategy].over(chat_llm, retriever, **options)
    alone = step.find_many(QUESTIONS, 2, list, ONE_BY_ONE)
    largest_batch(chat_llm, reset=True)
    together = step.find_many(QUESTIONS, 2, list)
    assert largest_batch(chat_llm) > 1
    assert [trace for _, trace in together] == [trace for _, trace in alone]
    assert [[d.id for d in docs] for docs, _ in together] == [
        [d.id for d in docs] for docs, _ in alone
    ]
