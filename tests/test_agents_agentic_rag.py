"""Agentic RAG: a scripted chat model searching two indexes; then the real model and indexes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import Runnable
from langchain_core.vectorstores import InMemoryVectorStore

from orchestrator.agents import (
    AgenticRAG,
    KnowledgeBaseTool,
    agentic_rag,
)
from orchestrator.chains.rag import NO_ANSWER
from orchestrator.errors import OptionError
from orchestrator.testing import HashEmbeddings, ScriptedChatModel

RIVERS = {
    "zorblat": "The Zorblat river is 842 km long and flows into the Quenta sea.",
    "tarnis": "The Tarnis river is 120 km long and freezes every winter.",
}
CITIES = {
    "mirrandel": "Mirrandel is the capital of Veloria and has a glass bridge.",
    "osk": "Osk is a port city on the Quenta sea.",
}


def retriever(facts: dict[str, str]) -> Any:
    texts = list(facts.values())
    metadatas = [{"doc_id": key, "chunk_id": f"{key}#0"} for key in facts]
    store = InMemoryVectorStore.from_texts(texts, HashEmbeddings(), metadatas=metadatas)
    return store.as_retriever(search_kwargs={"k": 1})


def indexes() -> dict[str, tuple[Any, str]]:
    return {
        "rivers": (retriever(RIVERS), "Facts about rivers: lengths, where they flow."),
        "cities": (retriever(CITIES), "Facts about cities: capitals, ports, bridges."),
    }


def step(thought: str, tool: str, query: str) -> str:
    return f"Thought: {thought}\nAction: {tool}\nAction Input: {query}\n"


def final(answer: str) -> str:
    return f"Thought: I now know the final answer\nFinal Answer: {answer}"


def test_citations_point_to_the_passages_retrieved_across_two_indexes() -> None:
    llm = ScriptedChatModel(
        replies=[
            step("Where does the river flow?", "rivers", "Zorblat river"),
            step("Which port is on that sea?", "cities", "port city on the Quenta sea"),
            final("The Zorblat flows into the Quenta sea [1], where Osk is a port [2]."),
        ]
    )
    result = agentic_rag(indexes(), llm).invoke({"question": "Which port is on the sea?"})
    assert result["answer"] == "The Zorblat flows into the Quenta sea [1], where Osk is a port [2]."
    assert result["citations"] == [1, 2]
    assert [(s["n"], s["doc_id"]) for s in result["sources"]] == [(1, "zorblat"), (2, "osk")]
    assert result["sources"][1]["text"] == CITIES["osk"]
    assert result["queries"] == [
        {"tool": "rivers", "query": "Zorblat river"},
        {"tool": "cities", "query": "port city on the Quenta sea"},
    ]
    assert result["hops"] == [
        {"hop": 1, "tool": "rivers", "query": "Zorblat river", "sources": [1]},
        {"hop": 2, "tool": "cities", "query": "port city on the Quenta sea", "sources": [2]},
    ]
    assert result["route"] == ["rivers", "cities"]
    assert result["cited_sources"] == result["sources"]
    assert result["stop_reason"] == "final_answer" and result["invalid_citations"] == []
    assert [s["action"] for s in result["steps"]] == ["rivers", "cities"]
    # the second search is shown to the model under its run number, not as a new [1]
    assert "Observation: [2] (osk) Osk is a port city" in llm.calls[2]["messages"][0].content


def test_a_citation_of_a_passage_never_retrieved_is_dropped_and_flagged() -> None:
    llm = ScriptedChatModel(
        replies=[
            step("Look up the capital.", "cities", "capital of Veloria"),
            final("Mirrandel [1]; it is 842 km from the sea [2] [7]."),
        ]
    )
    result = agentic_rag(indexes(), llm).invoke("What is the capital of Veloria?")
    assert result["citations"] == [1]
    assert result["invalid_citations"] == [2, 7]
    assert [s["doc_id"] for s in result["cited_sources"]] == ["mirrandel"]
    assert [r["doc_id"] for r in result["sources"]] == ["mirrandel"]


def test_a_passage_found_again_keeps_its_number() -> None:
    llm = ScriptedChatModel(
        replies=[
            step("Search.", "rivers", "Tarnis river"),
            step("Search again.", "rivers", "river that freezes in winter"),
            final("It freezes [1]."),
        ]
    )
    result = agentic_rag(indexes(), llm).invoke("Which river freezes?")
    assert [h["sources"] for h in result["hops"]] == [[1], [1]]
    assert len(result["sources"]) == 1 and result["citations"] == [1]


def test_the_run_ends_at_max_iterations_with_a_tool_less_answer() -> None:
    llm = ScriptedChatModel(
        replies=[
            step("Search.", "rivers", "Zorblat"),
            step("Search more.", "cities", "Osk"),
            " It is 842 km long [1].",  # the forced final answer, no tools
        ]
    )
    result = agentic_rag(indexes(), llm, max_iterations=2).invoke("How long is the Zorblat?")
    assert result["stop_reason"] == "max_iterations"
    assert len(result["hops"]) == 2 and result["answer"] == "It is 842 km long [1]."
    assert result["citations"] == [1] and result["cited_sources"][0]["doc_id"] == "zorblat"
    assert len(llm.calls) == 3 and llm.replies == []


def test_the_run_ends_at_the_time_limit() -> None:
    llm = ScriptedChatModel(replies=[step("Search.", "rivers", "Zorblat"), " It is long."])
    rag = agentic_rag(indexes(), llm, max_iterations=None, max_execution_time=1e-6)
    result = rag.invoke("How long is the Zorblat?")
    assert result["stop_reason"] == "max_execution_time"
    assert result["answer"] == NO_ANSWER and result["hops"] == []  # nothing was read in time


def test_nothing_retrieved_means_no_answer_from_the_model() -> None:
    llm = ScriptedChatModel(replies=[final("Paris [1].")])
    result = agentic_rag(indexes(), llm).invoke("What is the capital of France?")
    assert result["answer"] == NO_ANSWER
    assert result["citations"] == [] and result["sources"] == [] and result["hops"] == []


def test_knowledge_base_tools_can_be_given_instead_of_a_dict() -> None:
    tools = [
        KnowledgeBaseTool(name="rivers", description="Rivers.", retriever=retriever(RIVERS), k=1),
        KnowledgeBaseTool(name="cities", description="Cities.", retriever=retriever(CITIES), k=1),
    ]
    llm = ScriptedChatModel(replies=[step("Find it.", "cities", "glass bridge"), final("[1]")])
    rag = agentic_rag(tools, llm)
    assert isinstance(rag, AgenticRAG) and isinstance(rag, Runnable)
    result = rag.invoke({"question": "Which city has a glass bridge?"})
    assert result["cited_sources"][0]["doc_id"] == "mirrandel"
    assert "cities - Cities." in llm.calls[0]["messages"][0].content


def test_each_run_numbers_its_own_passages() -> None:
    replies = [step("Find it.", "cities", "Osk port"), final("Osk [1].")]
    rag = agentic_rag(indexes(), ScriptedChatModel(replies=replies * 2))
    first, second = rag.invoke("Which port?"), rag.invoke("Which port?")
    hop = {"hop": 1, "tool": "cities", "query": "Osk port", "sources": [1]}
    assert first["hops"] == second["hops"] == [hop]


@pytest.mark.parametrize(
    ("retrievers", "message"),
    [
        ({}, "at least one index"),
        ({"a": ("not a retriever", "x")}, "is not a retriever"),
        ([KnowledgeBaseTool(retriever=retriever(RIVERS))] * 2, "repeated: \\['knowledge_base'\\]"),
        (["calculator"], "not a knowledge-base tool"),
    ],
)
def test_bad_indexes_are_refused(retrievers: Any, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        agentic_rag(retrievers, ScriptedChatModel())


def test_unknown_options_and_call_options_are_refused() -> None:
    with pytest.raises(OptionError, match="did you mean 'max_iterations'"):
        agentic_rag(indexes(), ScriptedChatModel(), max_iteration=3)
    with pytest.raises(OptionError, match="call options"):
        agentic_rag(indexes(), ScriptedChatModel()).invoke("q", max_tokens=5)


def real_indexes(root: Path) -> dict[str, tuple[Any, str]]:
    """Two small real indexes (BM25, built with ``build_index``), one passage per search."""
    from orchestrator.retrieval import build_index, open_retriever

    specs = {}
    for name, facts in (("rivers", RIVERS), ("cities", CITIES)):
        docs = [Document(text, metadata={"doc_id": key}) for key, text in facts.items()]
        build_index(docs, root / name, modes=("bm25",))
        retriever = open_retriever(root / name, mode="bm25", k=1)
        specs[name] = (retriever, f"Facts about {name}.")
    return specs


@pytest.mark.integration
def test_citations_map_to_passages_of_two_real_indexes(tmp_path: Path) -> None:
    llm = ScriptedChatModel(
        replies=[
            step("Where does it flow?", "rivers", "Zorblat river"),
            step("Which port is there?", "cities", "port Quenta sea"),
            final("Osk [2] is on the sea the Zorblat flows into [1]; see also [3]."),
        ]
    )
    result = agentic_rag(real_indexes(tmp_path), llm).invoke("Which port is on that sea?")
    assert [(s["n"], s["doc_id"]) for s in result["sources"]] == [(1, "zorblat"), (2, "osk")]
    assert result["cited_sources"] == result["sources"]
    assert [s["chunk_id"] is not None for s in result["sources"]] == [True, True]
    assert result["sources"][1]["text"] == CITIES["osk"]
    assert result["citations"] == [2, 1] and result["invalid_citations"] == [3]
    assert result["route"] == ["rivers", "cities"]


@pytest.mark.integration
def test_the_real_model_searches_two_real_indexes_and_cites_only_what_it_read(
    tmp_path: Path, chat_llm: Any
) -> None:
    rag = agentic_rag(real_indexes(tmp_path), chat_llm, max_iterations=3)
    result = rag.invoke({"question": "How long is the Zorblat river?"})
    assert result["stop_reason"] in {
        "final_answer",
        "max_iterations",
        "repeated_action",
        "repeated_output",
    }
    assert len(result["hops"]) <= 3 and result["answer"]
    assert {q["tool"] for q in result["queries"]} <= {"rivers", "cities"}
    numbers = [n for h in result["hops"] for n in h["sources"]]
    assert sorted(set(numbers)) == [s["n"] for s in result["sources"]]
    assert [s["n"] for s in result["sources"]] == list(range(1, len(result["sources"]) + 1))
    texts = {*RIVERS.values(), *CITIES.values()}
    assert all(r["text"] in texts for r in result["sources"])
    assert {s["n"] for s in result["cited_sources"]} == set(result["citations"])
    assert all(1 <= n <= len(result["sources"]) for n in result["citations"])
    if not result["sources"]:  # the 135M model often searches for prompt text
        assert result["answer"] == NO_ANSWER
