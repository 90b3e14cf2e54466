"""The RAG chain and RetrievalQA: numbered sources, citations, streaming, "I don't know"."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.prompts import PromptTemplate

from orchestrator.chains import RetrievalQA, rag_chain
from orchestrator.chains.rag import NO_ANSWER, cited_numbers
from orchestrator.errors import OptionError
from orchestrator.retrieval import build_index, open_retriever
from orchestrator.testing import ScriptedChatModel, ScriptedLLM

DOCS = [
    {"doc_id": "tower", "text": "The Eiffel Tower is 330 metres tall and stands in Paris."},
    {"doc_id": "bridge", "text": "The Golden Gate Bridge spans the strait in San Francisco."},
    {"doc_id": "wall", "text": "The Great Wall of China is thousands of kilometres long."},
]
BOOK_PROMPT = """<|user|>
Relevant information:
{context}

Provide a concise answer the following question using the relevant information provided above:
{question}<|end|>
<|assistant|>"""


@pytest.fixture(scope="module")
def bm25_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rag") / "index"
    build_index(DOCS, path, modes=("bm25",))
    return path


def test_answer_cites_numbered_sources(bm25_index: Path) -> None:
    llm = ScriptedChatModel(replies=["It is 330 metres tall [1]. See also [7]."])
    chain = rag_chain(llm, open_retriever(bm25_index, mode="bm25", k=2))
    result = chain.invoke({"question": "How tall is the Eiffel Tower?"})
    assert result["answer"] == "It is 330 metres tall [1]. See also [7]."
    assert result["citations"] == [1]
    first = result["sources"][0]
    assert (first["n"], first["doc_id"]) == (1, "tower")
    assert {"chunk_id", "text", "score", "source"} <= set(first)
    prompt = llm.calls[0]["messages"][0].content
    assert "[1] The Eiffel Tower is 330 metres tall" in prompt
    assert "Question: How tall is the Eiffel Tower?" in prompt


def test_nothing_retrieved_means_i_dont_know_without_calling_the_model(bm25_index) -> None:
    llm = ScriptedChatModel(replies=[])
    chain = rag_chain(llm, open_retriever(bm25_index, mode="bm25"))
    result = chain.invoke("quantum chromodynamics lattice")
    assert result == {
        "question": "quantum chromodynamics lattice",
        "sources": [],
        "answer": NO_ANSWER,
        "citations": [],
    }
    assert llm.calls == []


def test_min_score_drops_weak_sources(bm25_index: Path) -> None:
    chain = rag_chain(
        ScriptedChatModel(replies=[]), open_retriever(bm25_index, mode="bm25"), min_score=1e9
    )
    assert chain.invoke("Eiffel Tower")["answer"] == NO_ANSWER


def test_stream_yields_sources_first_then_answer_pieces(bm25_index: Path) -> None:
    llm = ScriptedChatModel(replies=["The bridge is in San Francisco [1]."])
    chain = rag_chain(llm, open_retriever(bm25_index, mode="bm25", k=1))
    parts = list(chain.stream("Where is the Golden Gate Bridge?"))
    assert parts[0]["sources"][0]["doc_id"] == "bridge"
    pieces = [p["answer"] for p in parts[1:]]
    assert len(pieces) > 1
    assert "".join(pieces) == "The bridge is in San Francisco [1]."


def test_prompt_must_have_context_and_question(bm25_index: Path) -> None:
    with pytest.raises(OptionError, match="lacks the variable"):
        rag_chain(
            ScriptedChatModel(), open_retriever(bm25_index, mode="bm25"), prompt="Answer {question}"
        )
    with pytest.raises(OptionError, match="without a question"):
        rag_chain(ScriptedChatModel(), open_retriever(bm25_index, mode="bm25")).invoke({"q": 1})


def test_cited_numbers_keeps_order_and_ignores_invented_sources() -> None:
    assert cited_numbers("a [2] b [1] c [2] d [9]", 3) == [2, 1]


def test_retrieval_qa_as_in_the_book(bm25_index: Path) -> None:
    llm = ScriptedLLM(replies=["330 metres."])
    prompt = PromptTemplate(template=BOOK_PROMPT, input_variables=["context", "question"])
    rag = RetrievalQA.from_chain_type(
        llm=llm,
        chain_type="stuff",
        retriever=open_retriever(bm25_index, mode="bm25", k=1),
        chain_type_kwargs={"prompt": prompt},
        verbose=True,
    )
    result = rag.invoke("Eiffel Tower height")
    assert result == {"query": "Eiffel Tower height", "result": "330 metres."}
    assert "Relevant information:\nThe Eiffel Tower is 330 metres tall" in llm.prompts[0]
    llm.replies.append("Paris.")
    assert rag.invoke({"query": "Eiffel"}) == {"query": "Eiffel", "result": "Paris."}


def test_retrieval_qa_rejects_other_chain_types_and_unknown_kwargs(bm25_index: Path) -> None:
    retriever = open_retriever(bm25_index, mode="bm25")
    with pytest.raises(OptionError, match="chain_type='map_reduce'"):
        RetrievalQA.from_chain_type(llm=ScriptedLLM(), chain_type="map_reduce", retriever=retriever)
    with pytest.raises(OptionError, match="did you mean 'prompt'"):
        RetrievalQA.from_chain_type(
            llm=ScriptedLLM(), retriever=retriever, chain_type_kwargs={"promt": None}
        )


@pytest.mark.integration
def test_real_model_answers_from_a_real_hybrid_index(chat_llm, tmp_path: Path) -> None:
    build_index(DOCS, tmp_path / "index")
    retriever = open_retriever(tmp_path / "index", k=2)
    chain = rag_chain(chat_llm.bind(max_tokens=24), retriever, min_similarity=0.3)
    result = chain.invoke("How tall is the Eiffel Tower?")
    assert result["sources"][0]["doc_id"] == "tower"
    assert result["answer"] and result["answer"] != NO_ANSWER
    off_topic = chain.invoke("What is the best recipe for banana bread?")
    assert off_topic["sources"] == [] and off_topic["answer"] == NO_ANSWER
