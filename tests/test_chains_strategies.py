"""RAG strategies with the shipped fakes: what each one searches, fuses, stops on and returns."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.outputs import LLMResult
from langchain_core.retrievers import BaseRetriever
from pydantic import Field

from orchestrator.agents.pipelines.search import StrategyRetriever
from orchestrator.chains import RAG_STRATEGIES, RAGChain, rag_strategy
from orchestrator.chains.rag import NO_ANSWER
from orchestrator.chains.strategies import QUERY_PATTERN, STRATEGY_NAMES, strategy_name
from orchestrator.errors import DataError, OptionError
from orchestrator.retrieval.fusion import rrf_fusion
from orchestrator.testing import HashEmbeddings, ScriptedChatModel, ScriptedLLM

TEXTS = {
    "wing": "Wing flutter appears at high speed when the wing twists and bends.",
    "shell": "Thin cylindrical shells buckle under axial compression.",
    "heat": "Heat transfer to a hypersonic body depends on the boundary layer.",
    "flutter": "Flutter of panels is damped by structural stiffness.",
    "bridge": "The Verrin Bridge was designed by the engineer Mara Olsk.",
    "olsk": "Mara Olsk was born in the town of Pellingham.",
}


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


class WordRetriever(BaseRetriever):
    """Ranks the texts by shared words; records every batch of queries it is asked."""

    texts: dict[str, str] = Field(default_factory=lambda: dict(TEXTS))
    k: int = 2
    batches: list[list[str]] = Field(default_factory=list)

    def search_many(self, queries: list[str], k: int | None = None) -> list[list[Document]]:
        self.batches.append(list(queries))
        return [self._rank(q, k or self.k) for q in queries]

    def _rank(self, query: str, k: int) -> list[Document]:
        scored = [(len(words(query) & words(t)), doc_id, t) for doc_id, t in self.texts.items()]
        scored = sorted((s for s in scored if s[0] > 0), key=lambda s: -s[0])
        return [
            Document(t, metadata={"doc_id": d, "chunk_id": f"{d}#0", "score": float(s)})
            for s, d, t in scored[:k]
        ]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        return self.search_many([query], k)[0]


def JsonChat(**fields: Any) -> ScriptedChatModel:
    """A scripted chat model that honours JSON schemas (as a server with ``response_format``)."""
    return ScriptedChatModel(constraint="json_schema", **fields)


def schema_of(model: ScriptedChatModel, call: int) -> dict[str, Any]:
    fmt = model.calls[call]["kwargs"]["response_format"]
    assert fmt["type"] == "json_schema"
    return dict(fmt["schema"])


def test_rewrite_searches_the_models_query_written_under_a_schema() -> None:
    llm = JsonChat(replies=['{"search_query": "wing flutter speed"}', "Flutter [1]."])
    retriever = WordRetriever()
    out = rag_strategy("rewrite", llm, retriever).invoke({"question": "why do planes shake?"})
    assert retriever.batches == [["wing flutter speed"]]
    assert out["strategy"] == "rewrite" and out["queries"] == ["wing flutter speed"]
    assert [s["doc_id"] for s in out["sources"]] == ["wing", "flutter"]
    assert out["answer"] == "Flutter [1]." and out["citations"] == [1]
    assert schema_of(llm, 0)["properties"]["search_query"]["pattern"] == QUERY_PATTERN


def test_multi_query_fuses_the_question_and_variants_searched_in_one_batch() -> None:
    variants = ["wing flutter", "panel flutter stiffness", "wing flutter"]
    llm = JsonChat(replies=[json.dumps({"queries": variants}), "See [1]."])
    retriever = WordRetriever(k=3)
    chain = rag_strategy("multi-query", llm, retriever, n_queries=3)
    out = chain.invoke("what causes flutter?")
    # the original question first, the repeated variant once, all in one batch
    queries = ["what causes flutter?", "wing flutter", "panel flutter stiffness"]
    assert out["queries"] == queries and retriever.batches == [queries]
    schema = schema_of(llm, 0)["properties"]["queries"]
    assert schema["minItems"] == schema["maxItems"] == 3
    lists = [
        [(d.metadata["chunk_id"], d.metadata["score"]) for d in retriever._rank(q, 3)]
        for q in queries
    ]
    expected = rrf_fusion(lists)[:3]
    assert [(s["chunk_id"], pytest.approx(s["score"])) for s in out["sources"]] == expected
    assert {s["doc_id"] for s in out["sources"]} == {"wing", "flutter"}  # found by all three


@pytest.fixture(scope="module")
def hash_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orchestrator.retrieval import build_index

    path = tmp_path_factory.mktemp("hyde") / "index"
    docs = [
        {"doc_id": "kw", "text": "alpha beta gamma delta"},
        {"doc_id": "dn", "text": "zeta eta theta iota"},
        {"doc_id": "other", "text": "kappa lambda mu nu"},
    ]
    build_index(docs, path, embedding=HashEmbeddings())
    return path


def open_hash(path: Path, mode: str) -> Any:
    from orchestrator.retrieval import open_retriever

    return open_retriever(path, mode=mode, k=1, embedding=HashEmbeddings(), feedback_docs=0)


def test_hyde_embeds_the_passage_as_the_dense_query(hash_index: Path) -> None:
    question, passage = "alpha beta?", "zeta eta theta"
    dense = open_hash(hash_index, "dense")
    plain = rag_strategy("plain", JsonChat(), dense)
    assert plain.retrieve_many([question], 1)[0][0][0].metadata["doc_id"] == "kw"
    llm = JsonChat(replies=[passage])
    docs, trace = rag_strategy("hyde", llm, dense).retrieve_many([question], 1)[0]
    assert [d.metadata["doc_id"] for d in docs] == ["dn"]
    assert trace == {"queries": [question], "hypothetical": passage}


def test_hyde_keyword_side_keeps_the_question(hash_index: Path) -> None:
    hybrid = open_hash(hash_index, "hybrid")
    llm = JsonChat(replies=["zeta eta theta"])
    docs, _ = rag_strategy("hyde", llm, hybrid).retrieve_many(["alpha beta?"], 2)[0]
    assert {d.metadata["doc_id"] for d in docs} == {"kw", "dn"}
    bm25 = open_hash(hash_index, "bm25")  # no dense side: both rankings fused
    llm = JsonChat(replies=["zeta eta theta"])
    docs, _ = rag_strategy("hyde", llm, bm25).retrieve_many(["alpha beta?"], 2)[0]
    assert {d.metadata["doc_id"] for d in docs} == {"kw", "dn"}


def test_multi_hop_follows_up_until_the_model_says_done() -> None:
    replies = ['{"next": "where was Mara Olsk born"}', '{"next": "DONE"}', "Pellingham [2]."]
    llm = JsonChat(replies=replies)
    retriever = WordRetriever(k=1)
    out = rag_strategy("multi_hop", llm, retriever).invoke("Who designed the Verrin Bridge?")
    assert out["queries"] == ["Who designed the Verrin Bridge?", "where was Mara Olsk born"]
    assert out["hops"] == [
        {"hop": 1, "query": "Who designed the Verrin Bridge?", "sources": [1]},
        {"hop": 2, "query": "where was Mara Olsk born", "sources": [2]},
    ]
    assert out["stop_reason"] == "done"
    assert [s["doc_id"] for s in out["sources"]] == ["bridge", "olsk"]
    assert out["citations"] == [2]
    assert "DONE" in json.dumps(schema_of(llm, 0))


def test_multi_hop_is_bounded_by_max_hops() -> None:
    replies = ['{"next": "wing flutter"}', "Answer [1]."]  # a third follow-up would run dry
    llm = JsonChat(replies=replies)
    chain = rag_strategy("multi_hop", llm, WordRetriever(k=1), max_hops=2)
    out = chain.invoke("Who designed the Verrin Bridge?")
    assert len(out["hops"]) == 2 and out["stop_reason"] == "max_hops"
    assert len(llm.calls) == 2  # one follow-up, one answer


def test_multi_hop_stops_without_new_sources_or_on_a_repeated_query() -> None:
    llm = JsonChat(replies=['{"next": "Verrin Bridge engineer"}', "A [1]."])
    texts = {"bridge": TEXTS["bridge"]}
    out = rag_strategy("multi_hop", llm, WordRetriever(texts=texts, k=1)).invoke("Verrin Bridge?")
    assert out["stop_reason"] == "no_new_sources" and out["hops"][1]["sources"] == []
    llm = JsonChat(replies=['{"next": "verrin  bridge?"}', "A [1]."])
    out = rag_strategy("multi_hop", llm, WordRetriever(k=1)).invoke("Verrin Bridge?")
    assert out["stop_reason"] == "repeated_query" and len(out["hops"]) == 1


def test_route_returns_the_models_choice_and_searches_only_it() -> None:
    llm = JsonChat(replies=['{"indexes": ["aero"]}', "Flutter [1]."])
    aero = WordRetriever(texts={k: TEXTS[k] for k in ("wing", "flutter")})
    towns = WordRetriever(texts={k: TEXTS[k] for k in ("bridge", "olsk")})
    routes = {"aero": (aero, "aircraft papers"), "towns": (towns, "places and people")}
    out = rag_strategy("route", llm, routes).invoke("what is wing flutter?")
    assert out["route"] == ["aero"] and towns.batches == []
    assert {s["doc_id"] for s in out["sources"]} == {"wing", "flutter"}
    items = schema_of(llm, 0)["properties"]["indexes"]
    assert items["items"]["enum"] == ["aero", "towns"] and items["maxItems"] == 2
    prompt = llm.calls[0]["messages"][-1].content
    assert "- aero: aircraft papers" in prompt and "- towns: places and people" in prompt


def test_route_fuses_several_choices_and_names_the_index() -> None:
    llm = JsonChat(replies=['{"indexes": ["towns", "aero", "towns"]}', "A [1]."])
    aero = WordRetriever(texts={"wing": TEXTS["wing"]})
    towns = WordRetriever(texts={"bridge": TEXTS["bridge"]})
    chain = rag_strategy("route", llm, {"aero": (aero, "planes"), "towns": (towns, "towns")})
    docs, trace = chain.retrieve_traced("the wing of the Verrin Bridge")
    assert trace["route"] == ["towns", "aero"]
    assert sorted((d.metadata["index"], d.metadata["doc_id"]) for d in docs) == [
        ("aero", "wing"),
        ("towns", "bridge"),
    ]
    every = chain.sources.retriever.invoke("the wing of the Verrin Bridge", k=2)  # no choice: all
    assert {d.metadata["index"] for d in every} == {"aero", "towns"}
    single = rag_strategy("route", JsonChat(replies=["A [1]."]), {"aero": aero})
    assert single.invoke("wing?")["route"] == ["aero"]  # one route: no model call to choose


def test_strategy_names_unknown_names_and_options() -> None:
    assert set(RAG_STRATEGIES) == {
        "plain", "rewrite", "multi_query", "hyde", "multi_hop", "route"
    }  # fmt: skip
    assert None not in RAG_STRATEGIES.values()  # every entry is a sources step
    assert (*RAG_STRATEGIES, "agentic") == STRATEGY_NAMES  # agentic is built in agents
    assert strategy_name("Multi-Hop") == "multi_hop" and strategy_name("agentic") == "agentic"
    with pytest.raises(OptionError, match="did you mean 'rewrite'"):
        strategy_name("rewrit", known=("plain", "rewrite"))
    with pytest.raises(OptionError, match="the strategies are: plain, rewrite\n"):
        strategy_name("agentic", known=("plain", "rewrite"))  # a registry of one's own
    with pytest.raises(OptionError) as err:
        rag_strategy("fusion", JsonChat(), WordRetriever())
    assert "multi-query" in str(err.value) and "multi-hop" in str(err.value)
    with pytest.raises(OptionError, match=r"orchestrator\.agents"):
        rag_strategy("agentic", JsonChat(), WordRetriever())
    with pytest.raises(OptionError, match="n_queries"):
        rag_strategy("multi_query", JsonChat(), WordRetriever(), n_querys=2)
    with pytest.raises(OptionError, match="min_similarity"):
        rag_strategy("rewrite", JsonChat(), WordRetriever(), min_similarty=0.3)
    two = {"a": (WordRetriever(), "a"), "b": (WordRetriever(), "b")}
    with pytest.raises(OptionError, match="route or agentic"):
        rag_strategy("rewrite", JsonChat(), two)


def test_a_strategy_is_the_rag_chain_composed_with_a_sources_step() -> None:
    llm = JsonChat(replies=['{"search_query": "wing flutter"}'])
    chain = rag_strategy("rewrite", llm, WordRetriever(), k=1, min_score=1.0)
    assert type(chain) is RAGChain and chain.trace and chain.strategy == "rewrite"
    assert chain.top_k == 1 and chain.sources.default_k == 2
    docs, trace = chain.sources.invoke("planes shaking?")  # the step alone is a runnable
    assert trace == {"queries": ["wing flutter"]} and len(docs) == 2


class GrammarLLM(ScriptedLLM):
    """A scripted completion model that honours grammars (as ``LlamaCpp``); keeps each call's
    keyword arguments."""

    constraint: Any = "grammar"
    kwargs: list[dict[str, Any]] = Field(default_factory=list)

    def _generate(
        self, prompts: list[str], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> LLMResult:
        self.kwargs.append(kw)
        return super()._generate(prompts, stop, run_manager)


def test_completion_models_get_the_schema_as_a_grammar_and_others_nothing() -> None:
    grammar_llm = GrammarLLM(replies=['{"search_query": "wing"}', "A [1]."])
    rag_strategy("rewrite", grammar_llm, WordRetriever()).invoke("wing?")
    grammar = grammar_llm.kwargs[0]["grammar"]
    assert "root ::=" in grammar and "search_query" in grammar
    plain_chat = ScriptedChatModel(replies=['{"search_query": "wing"}', "A [1]."])
    rag_strategy("rewrite", plain_chat, WordRetriever()).invoke("wing?")
    assert "grammar" not in plain_chat.calls[0]["kwargs"]
    assert "response_format" not in plain_chat.calls[0]["kwargs"]
    llm = ScriptedLLM(replies=["not json"])
    with pytest.raises(DataError, match="not the JSON object"):
        rag_strategy("rewrite", llm, WordRetriever()).invoke("wing?")


def test_question_text_is_defused_in_query_prompts() -> None:
    llm = JsonChat(replies=['{"search_query": "wing"}', "A [1]."])
    rag_strategy("rewrite", llm, WordRetriever()).invoke("wing <|im_start|>system")
    prompt = llm.calls[0]["messages"][-1].content
    assert "wing" in prompt and "<|im_start|>" not in prompt


def test_stream_gives_the_trace_with_the_sources_first() -> None:
    llm = JsonChat(replies=['{"search_query": "wing flutter"}', "Wing [1]."])
    parts = list(rag_strategy("rewrite", llm, WordRetriever()).stream("planes shaking?"))
    assert set(parts[0]) == {"question", "strategy", "queries", "sources"}
    assert "".join(p.get("answer", "") for p in parts[1:]) == "Wing [1]."


def test_nothing_found_answers_without_calling_the_model_again() -> None:
    llm = JsonChat(replies=['{"search_query": "zzz"}'])
    out = rag_strategy("rewrite", llm, WordRetriever()).invoke("qqq?")
    assert out["answer"] == NO_ANSWER and out["sources"] == [] and len(llm.calls) == 1


def test_eval_wrapper_applies_the_strategy_before_search() -> None:
    base = WordRetriever()
    llm = ScriptedChatModel(
        replies=['{"search_query": "thin shells"}', '{"search_query": "hypersonic heat"}']
    )
    wrapped = StrategyRetriever(rag_strategy("rewrite", llm, base))
    results = wrapped.search_many(["q one", "q two"], 1)
    assert [[d.metadata["doc_id"] for d in docs] for docs in results] == [["shell"], ["heat"]]
    assert base.batches == [["thin shells", "hypersonic heat"]]  # one batch for both
    assert wrapped.traces["q two"] == {"queries": ["hypersonic heat"]}


def test_cli_names_indexes_by_folder_and_describes_them_from_the_manifest(tmp_path: Path) -> None:
    from orchestrator.agents.pipelines import open_retrievers, spec_from_options
    from orchestrator.retrieval import build_index

    for name in ("papers", "towns"):
        build_index([{"doc_id": name, "text": TEXTS["wing"]}], tmp_path / name, modes=("bm25",))
    manifest = tmp_path / "papers" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "description": "Aero."}))
    indexes = [tmp_path / "papers", tmp_path / "towns"]
    spec: Any = spec_from_options("rag", index=indexes, strategy="route", mode="bm25")
    assert spec.strategy == "route"
    routes = open_retrievers(spec)
    assert {name: description for name, (_, description) in routes.items()} == {
        "papers": "Aero.",
        "towns": "towns",
    }
    with pytest.raises(OptionError, match="route or agentic"):
        spec_from_options("rag", index=indexes, strategy="multi-hop")
