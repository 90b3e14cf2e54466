"""The servers record runs (issue 21, point 1): each request to ``orchestrator serve`` (its
pipeline the requested model, its session the request's) and each MCP tool call, with token
counts equal to what the model reported."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from mcp_support import build_kb_index, stdio_config
from tracing_support import assert_one_tree, by_kind, wait_for

from orchestrator.agents.tools.mcp import load_mcp_tools
from orchestrator.tracing import RunFilter, RunSummary, TraceStore, names

if TYPE_CHECKING:
    from server_harness import Server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _finished(store: Path, **where: Any) -> RunSummary:
    """The newest run matching ``where`` once it has ended (another process writes it)."""

    def done() -> RunSummary | None:
        with TraceStore(store) as traces:
            runs = traces.runs(RunFilter(**where))
        return runs[0] if runs and runs[0].status != "running" else None

    found: RunSummary = wait_for(done, f"a finished run {where} in {store}")
    return found


def test_a_served_chat_completion_is_one_run(server: Server, model_id: str) -> None:
    client: Any = server.client()
    reply = client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": "Name a colour."}],
        max_tokens=6,
        extra_body={"session_id": "trace-session-1"},
    )
    store = server.log.parent / "home" / "traces.sqlite"
    run = _finished(store, command="serve", session="trace-session-1")
    assert (run.name, run.pipeline, run.status) == ("POST /v1/chat/completions", model_id, "ok")
    with TraceStore(store) as traces:
        spans = traces.spans(run.run_id)
    assert_one_tree(spans)
    (call,) = by_kind(spans, "llm")
    usage = reply.usage
    assert (call.input_tokens, call.output_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    assert call.attributes[names.OUTPUT_MESSAGES][0]["parts"][0]["content"].strip() == (
        reply.choices[0].message.content.strip()
    )
    assert call.attributes[names.MAX_TOKENS] == 6
    refused = client.with_options(max_retries=0).chat.completions
    with pytest.raises(Exception, match="400"):
        refused.create(model=model_id, messages=[], extra_body={"session_id": "trace-bad"})
    failed = _finished(store, command="serve", session="trace-bad")
    assert failed.status == "error" and failed.error and failed.fix


def test_an_mcp_tool_call_is_one_run(tmp_path: Path) -> None:
    config = stdio_config(build_kb_index(tmp_path))
    (entry,) = config["mcpServers"].values()
    home = tmp_path / "home"
    entry["env"] |= {"ORCHESTRATOR_HOME": str(home)}
    store = home / "traces.sqlite"
    with load_mcp_tools(config) as tools:
        (rag,) = [t for t in tools if t.name == "rag"]
        text = rag.invoke("What is Zorblat famous for?")
        run = _finished(store, command="mcp", pipeline="rag")
        (calculator,) = [t for t in tools if t.name == "calculator"]
        assert calculator.invoke("6*7") == "42"
        math = _finished(store, command="mcp", pipeline="calculator")
    assert (run.name, run.status, run.input) == (
        "execute_tool rag",
        "ok",
        "What is Zorblat famous for?",
    )
    assert run.output and run.output.strip() in text
    with TraceStore(store) as traces:
        spans = traces.spans(run.run_id)
        assert (math.input, math.output) == ("6*7", "42")
    assert_one_tree(spans)
    (root,) = [s for s in spans if s.parent_id is None]
    assert (root.kind, root.attributes[names.TOOL_NAME]) == ("tool", "rag")
    (found,) = by_kind(spans, "retriever")
    assert found.attributes[names.DOC_IDS][0] == "zorblat.md"
    (call,) = by_kind(spans, "llm")
    assert call.input_tokens and call.output_tokens
    assert (run.input_tokens, run.output_tokens) == (call.input_tokens, call.output_tokens)


def test_request_fields_never_fail_on_a_body() -> None:
    from orchestrator.server.trace_requests import error_of, request_fields

    assert request_fields(b'{"model": "rag", "session_id": "s"}') == {
        "pipeline": "rag",
        "session": "s",
    }
    assert request_fields(b"[" * 5000 + b"]" * 5000) == {}
    assert request_fields(b"not json") == request_fields(b"[1]") == {}
    assert error_of(b'{"error": {"message": "bad", "fix": "do"}}', 400) == ("bad", "do")
    assert error_of(b"<html>", 502) == ("HTTP 502", None)
