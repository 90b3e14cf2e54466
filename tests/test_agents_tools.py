"""web_search (fake backend and failure modes), knowledge_base, load_tools and llm-math."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore

from orchestrator.agents import (
    DuckDuckGoSearchResults,
    KnowledgeBaseTool,
    load_tools,
    open_knowledge_base,
)
from orchestrator.agents.testing import FakeSearchBackend, RatelimitError
from orchestrator.agents.tools.search import classify_failure
from orchestrator.errors import OptionError
from orchestrator.testing import HashEmbeddings, ScriptedLLM

RESULTS = {
    "python": [
        {"title": "Python", "href": "https://python.org", "body": "Python is a language."},
        {"title": "PyPI", "href": "https://pypi.org", "body": "The package index."},
    ]
}


def test_search_results_are_formatted_like_langchains() -> None:
    backend = FakeSearchBackend(RESULTS)
    search = DuckDuckGoSearchResults(backend=backend, max_results=1)
    assert search.invoke('"Python release"') == (
        "snippet: Python is a language., title: Python, link: https://python.org"
    )
    assert backend.queries == ["Python release"]
    assert search.invoke("nothing here") == "No web results for 'nothing here'."
    assert search.name == "web_search"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (OSError("[Errno -3] Temporary failure in name resolution"), "no network connection"),
        (RuntimeError("DNSError: error resolving DNS"), "no network connection"),
        (RatelimitError("202 Ratelimit"), "rate-limiting"),
        (RuntimeError("HTTP 429 Too Many Requests"), "rate-limiting"),
        (TimeoutError("read timed out"), "timed out"),
        (ValueError("odd"), "the search failed (ValueError)"),
    ],
)
def test_search_failures_become_plain_observations(error: Exception, reason: str) -> None:
    search = DuckDuckGoSearchResults(backend=FakeSearchBackend(error=error))
    observation = search.invoke("anything")
    assert observation.startswith("Web search is unavailable: ")
    assert reason in observation and "use another tool" in observation
    assert reason in classify_failure(error)


def test_a_hanging_search_is_cut_off_by_the_timeout() -> None:
    backend = FakeSearchBackend(RESULTS, delay=5.0)
    observation = DuckDuckGoSearchResults(backend=backend, timeout=0.2).invoke("python")
    assert observation == (
        "Web search is unavailable: the search timed out. "
        "Answer from what you already know or use another tool."
    )


def test_the_real_ddgs_backend_without_network_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    # ddgs honours DDGS_PROXY: a proxy nobody listens on is a network that is down.
    monkeypatch.setenv("DDGS_PROXY", "http://127.0.0.1:9")
    observation = DuckDuckGoSearchResults(timeout=5).invoke("python")
    assert observation == (
        "Web search is unavailable: there is no network connection. "
        "Answer from what you already know or use another tool."
    )


WEB_FIX = 'pip install "orchestrator[web]"'


def test_a_missing_ddgs_package_is_named_with_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ddgs", None)  # what an install without [web] looks like
    observation = DuckDuckGoSearchResults(timeout=5).invoke("python")
    assert observation == (
        "Web search is unavailable: the web_search tool needs the Python package 'ddgs', "
        f"which is not installed; install it with: {WEB_FIX}. "
        "Answer from what you already know or use another tool."
    )
    assert "RuntimeError" not in observation and "search failed" not in observation


def test_the_agent_cli_names_the_web_extra_when_ddgs_is_missing() -> None:
    """The real command line, in a process where ddgs cannot be imported: exit 2, before
    any model is loaded."""
    hide_and_run = (
        "import runpy, sys; sys.modules['ddgs'] = None; "
        "sys.argv = ['orchestrator', 'agent', 'What is new?', '--tools', 'calculator,web_search']; "
        "runpy.run_module('orchestrator.cli.app', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", hide_and_run], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    message = " ".join((done.stdout + done.stderr).split())
    assert "the web_search tool needs the Python package 'ddgs'" in message
    assert WEB_FIX in message and "Traceback" not in message


def test_knowledge_base_over_a_retriever() -> None:
    texts = ["The Zorblat river is 842 km long.", "Mirrandel is the capital of Veloria."]
    store = InMemoryVectorStore.from_texts(
        texts, HashEmbeddings(), metadatas=[{"doc_id": "d1"}, {"doc_id": "d2"}]
    )
    retriever = store.as_retriever(search_kwargs={"k": 1})
    kb = KnowledgeBaseTool(retriever=retriever)
    assert (
        kb.invoke("How long is the Zorblat river?") == "[1] (d1) The Zorblat river is 842 km long."
    )
    assert kb.invoke("  ") == "The knowledge base needs a query: pass a question or keywords."


def test_knowledge_base_over_a_real_index(tmp_path: Path) -> None:
    from orchestrator.retrieval import build_index

    facts = {
        "zorblat": "The Zorblat river is 842 km long.",
        "veloria": "The capital of Veloria is Mirrandel.",
        "okrel": "Mount Okrel is 5311 metres high.",
        "quenta": "The Quenta sea is salty and cold.",
        "tarnis": "Lake Tarnis freezes every winter.",
        "glass": "Mirrandel has a famous glass bridge.",
    }
    docs = [Document(text, metadata={"doc_id": key}) for key, text in facts.items()]
    build_index(docs, tmp_path / "kb", modes=("bm25",))
    kb = open_knowledge_base(tmp_path / "kb", k=1)
    assert kb.invoke("capital of Veloria") == "[1] (veloria) The capital of Veloria is Mirrandel."
    (tool,) = load_tools(["knowledge_base"], index_dir=tmp_path / "kb", k=2)
    assert tool.name == "knowledge_base"


def test_knowledge_base_needs_an_index(tmp_path: Path) -> None:
    with pytest.raises(OptionError) as info:
        load_tools(["knowledge_base"])
    assert "index_dir" in (info.value.fix or "")
    with pytest.raises(OptionError):
        open_knowledge_base(tmp_path / "missing")


def test_load_tools_names_and_aliases() -> None:
    tools = load_tools(["llm-math", "ddg-search", "calculator"], search_backend=FakeSearchBackend())
    assert [t.name for t in tools] == ["calculator", "web_search"]
    with pytest.raises(OptionError) as info:
        load_tools(["calculater"])
    assert "known tools: calculator" in info.value.message
    assert "did you mean 'calculator'" in (info.value.fix or "")
    with pytest.raises(OptionError):
        load_tools("llm-math")  # type: ignore[arg-type]


def test_llm_math_translates_words_then_checks_the_translation() -> None:
    llm = ScriptedLLM(replies=["3 * 4", "__import__('os')"])
    (calculator,) = load_tools(["llm-math"], llm=llm)
    assert calculator.invoke("2**10") == "1024"
    assert llm.prompts == []  # plain arithmetic never reaches the model
    assert calculator.invoke("what is three times four") == "3 * 4 = 12"
    assert "Problem: what is three times four" in llm.prompts[0]
    assert calculator.invoke("what is the secret").startswith("Calculator error:")
    assert calculator.invoke("().__class__").startswith("Calculator error: double underscores")
    assert len(llm.prompts) == 2  # refused constructs are not sent to the model
