"""The trace viewer's API (``orchestrator traces``): runs with the filters of ``logs``, a run's
span tree laid out for the timeline with prompts, passages, tool calls and tokens, the
per-pipeline summary, error objects, the API key gate, and a page that fetches nothing from
the network. The store is filled by the tracing library itself (a chain over a fake model)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import tool
from typer.testing import CliRunner

from orchestrator.errors import DataError, OptionError
from orchestrator.testing import ScriptedChatModel
from orchestrator.tracing import RunSummary, run, tracing

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from orchestrator.server.trace_viewer import create_viewer_app
from orchestrator.tracing.viewer import ASSETS, asset, summarize

#: Untrusted recorded text: the page must show it as text, never run it.
XSS_QUESTION = "<script>window.__pwned = 'prompt'</script> capital of France?"
REPLY = "Paris <b>is</b> the capital."
REPLY_TOKENS = len(REPLY.split())
XSS_PASSAGE = "<img src=x onerror=\"window.__pwned = 'passage'\"> Paris is the capital."


class CountingChatModel(ScriptedChatModel):
    """The scripted fake, reporting ``usage_metadata`` as a real model does (words count)."""

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:  # fmt: skip
        text = str(super()._generate(messages, stop, run_manager, **kwargs).generations[0].text)
        words_in = sum(len(str(m.content).split()) for m in messages)
        usage = {"input_tokens": words_in, "output_tokens": len(text.split()),
                 "total_tokens": words_in + len(text.split())}  # fmt: skip
        message = AIMessage(content=text, usage_metadata=usage)  # type: ignore[arg-type]
        return ChatResult(generations=[ChatGeneration(message=message)])


class Passages(BaseRetriever):
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [Document(XSS_PASSAGE, metadata={"doc_id": "paris-1", "score": 0.875})]


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def record_runs(path: Path) -> dict[str, str]:
    """Three runs recorded in ``path`` by the tracing library: a RAG run (retrieval, prompt,
    model call with tokens), a failed run of the same pipeline, and an agent run with a tool
    call. Returns their ids by name."""
    ids: dict[str, str] = {}
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from: {context}"), ("user", "{question}")]
    )
    chain = prompt | CountingChatModel(replies=[REPLY])
    with tracing(path):
        with run("rag", pipeline="rag-demo") as handle:
            passages = Passages().invoke(XSS_QUESTION)
            chain.invoke({"question": XSS_QUESTION, "context": passages[0].page_content})
            ids["rag"] = str(handle.run_id)
        with pytest.raises(DataError), run("rag", pipeline="rag-demo") as handle:
            ids["failed"] = str(handle.run_id)
            raise DataError("the index is missing", fix="orchestrator index build DIR")
        with run("agent", pipeline="agent-demo", session="s-1") as handle:
            add.invoke({"a": 2, "b": 3})
            ids["agent"] = str(handle.run_id)
    return ids


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("viewer") / "traces.sqlite"
    return path, record_runs(path)


@pytest.fixture(scope="module")
def client(recorded: tuple[Path, dict[str, str]]) -> TestClient:
    return TestClient(create_viewer_app(recorded[0]), raise_server_exceptions=False)


def test_runs_are_listed_with_the_filters_of_logs(client: TestClient, recorded: Any) -> None:
    ids = recorded[1]
    listed = client.get("/api/runs").json()["runs"]
    assert [r["run_id"] for r in listed] == [ids["agent"], ids["failed"], ids["rag"]]
    rag = listed[2]
    assert (rag["command"], rag["pipeline"], rag["status"]) == ("rag", "rag-demo", "ok")
    assert rag["input_tokens"] > 0 and rag["output_tokens"] == REPLY_TOKENS
    picked = {
        "pipeline=rag-demo": {ids["rag"], ids["failed"]},
        "status=error": {ids["failed"]},
        "session=s-1": {ids["agent"]},
        "command=agent&since=1h": {ids["agent"]},
        "until=2000-01-01": set(),
        "limit=1": {ids["agent"]},
    }
    for query, expected in picked.items():
        found = client.get(f"/api/runs?{query}").json()["runs"]
        assert {r["run_id"] for r in found} == expected, query
    hits = client.get("/api/runs", params={"q": "capital France"}).json()["runs"]
    assert [h["run_id"] for h in hits] == [ids["rag"]] and "France" in hits[0]["match"]["snippet"]


def test_a_run_is_its_span_tree_on_a_timeline(client: TestClient, recorded: Any) -> None:
    ids = recorded[1]
    detail = client.get(f"/api/runs/{ids['rag'][:10]}").json()
    assert detail["run"]["run_id"] == ids["rag"]
    spans = detail["spans"]
    assert spans[0]["kind"] == "run" and spans[0]["depth"] == 0 and spans[0]["offset_s"] == 0
    by_kind = {s["kind"]: s for s in spans}
    assert {"retriever", "chain", "prompt", "llm"} <= set(by_kind)
    llm, chain = by_kind["llm"], by_kind["chain"]
    assert llm["parent_id"] == chain["span_id"] and llm["depth"] == chain["depth"] + 1
    assert spans.index(chain) < spans.index(llm)  # depth first: parents before children
    for span in spans:
        assert 0 <= span["offset_s"] <= span["offset_s"] + span["duration_s"] <= detail["span_s"]
    sections = llm["sections"]
    assert sections["tokens"]["input"] == llm["input_tokens"] > 0
    assert sections["tokens"]["output"] == llm["output_tokens"] == REPLY_TOKENS
    assert sections["prompt"][1] == {"role": "user", "text": XSS_QUESTION}  # text, unescaped
    assert sections["reply"] == [{"role": "assistant", "text": REPLY}]
    assert "time_to_first_token_s" in sections["timings"] or "duration_s" in sections["timings"]
    passages = by_kind["retriever"]["sections"]
    assert passages["query"] == XSS_QUESTION
    assert passages["documents"][0] | {"metadata": None} == {
        "id": "paris-1", "score": 0.875, "text": XSS_PASSAGE, "metadata": None}  # fmt: skip
    assert any(f.startswith("tokens ") for f in llm["facts"])


def test_tool_calls_and_errors_are_shown(client: TestClient, recorded: Any) -> None:
    ids = recorded[1]
    tool_span = next(
        s for s in client.get(f"/api/runs/{ids['agent']}").json()["spans"] if s["kind"] == "tool"
    )
    arguments = '{\n  "a": 2,\n  "b": 3\n}'
    assert tool_span["sections"]["tool"] == {"name": "add", "arguments": arguments, "result": "5"}
    failed = client.get(f"/api/runs/{ids['failed']}").json()["run"]
    assert failed["status"] == "error" and "index is missing" in failed["error"]
    assert failed["fix"] == "orchestrator index build DIR"


def test_the_summary_has_latency_percentiles_tokens_and_error_rate(client: TestClient) -> None:
    pipelines = {p["pipeline"]: p for p in client.get("/api/summary").json()["pipelines"]}
    assert set(pipelines) == {"rag-demo", "agent-demo"}
    rag = pipelines["rag-demo"]
    assert (rag["runs"], rag["finished"], rag["errors"], rag["error_rate"]) == (2, 2, 1, 0.5)
    latency = rag["latency_s"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert rag["tokens"]["output"] == REPLY_TOKENS and len(rag["points"]) == 2
    only = client.get("/api/summary?pipeline=agent-demo").json()["pipelines"]
    assert [p["pipeline"] for p in only] == ["agent-demo"] and only[0]["error_rate"] == 0


def test_percentiles_are_numpys_linear_ones() -> None:
    runs = [RunSummary(f"r{n}", "x", "ask", "p", None, None, "ok", 1000.0 + n, 1000.0 + 2 * n,
                       None, 2, None, None, None, None) for n in range(1, 101)]  # fmt: skip
    runs.append(RunSummary("live", "x", "ask", "p", None, None, "running", 5000.0, None, 1, 1,
                           None, None, None, None))  # fmt: skip
    found = summarize("p", runs)
    assert found["latency_s"] | {"mean": None} == {
        "p50": 50.5, "p95": 95.05, "p99": 99.01, "max": 100.0, "mean": None}  # fmt: skip
    assert (found["runs"], found["finished"], found["error_rate"]) == (101, 100, 0.0)
    assert found["tokens"] == {"input": 1, "output": 201, "per_run": 2.0}


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/api/runs/0000dead", 404, "run_not_found"),
        ("/api/runs?status=fine", 400, "OptionError"),
        ("/api/runs?since=yesterday", 400, "DataError"),
        ("/api/runs?limit=0", 400, "invalid_value"),
        ("/api/runs?q=%20%3A", 400, "DataError"),
        ("/api/nothing", 404, "not_found"),
        ("/static/secret.py", 404, "not_found"),
    ],
)
def test_bad_requests_are_error_objects(
    client: TestClient, url: str, status: int, code: str
) -> None:
    answer = client.get(url)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["code"] == code and error["message"] and error["fix"]


def test_an_api_key_gates_the_data_not_the_page(recorded: Any) -> None:
    gated = TestClient(create_viewer_app(recorded[0], api_key="k-123"))
    refused = gated.get("/api/runs")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert gated.get("/api/runs", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert gated.get("/api/summary", headers={"Authorization": "Bearer k-123"}).status_code == 200
    page = gated.get("/")
    assert page.status_code == 200 and "capital" not in page.text  # the page holds no data


def test_the_page_is_self_contained_and_never_parses_recorded_text(client: TestClient) -> None:
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert re.findall(r'(?:src|href)="([^"#]+)"', page.text) == [
        "static/favicon.svg", "static/viewer.css", "static/viewer.js"]  # fmt: skip
    for name in ASSETS:
        text = asset(name).decode()
        assert not re.search(r"https?://|//cdn|@import", text.replace(
            "http://www.w3.org/2000/svg", "")), name  # fmt: skip
        assert client.get(f"/static/{name}").headers["content-type"] == ASSETS[name]
    script = re.sub(r"^\s*//.*$", "", asset("viewer.js").decode(), flags=re.M)  # code only
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", script)


def test_traces_refuses_to_listen_beyond_loopback_without_a_key(tmp_path: Path) -> None:
    from orchestrator.cli.traces import check_viewer_bind, register

    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["--host", "0.0.0.0", "--store", str(tmp_path / "t.db")])
    assert result.exit_code == 2 and "without an API key" in result.output
    check_viewer_bind("127.0.0.1", None)
    check_viewer_bind("0.0.0.0", "key")
    with pytest.raises(OptionError, match=r"bind to 127\.0\.0\.1"):
        check_viewer_bind("::", None)


def test_a_missing_store_reads_empty_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "none" / "traces.sqlite"
    empty = TestClient(create_viewer_app(path))
    assert empty.get("/api/runs").json() == {"store": str(path), "runs": []}
    assert empty.get("/api/summary").json()["pipelines"] == []
    assert not path.exists()


def test_the_viewer_works_mounted_under_a_prefix(recorded: Any) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    host = TestClient(Starlette(routes=[Mount("/traces", create_viewer_app(recorded[0]))]))
    assert "static/viewer.js" in host.get("/traces/").text  # relative URLs: under the prefix
    assert host.get("/traces/static/viewer.js").status_code == 200
    assert len(host.get("/traces/api/runs").json()["runs"]) == 3
