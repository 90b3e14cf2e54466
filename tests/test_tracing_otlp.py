"""OTLP export (issue 21, point 4): spans reach an OTLP/HTTP receiver this test starts on
loopback, named by the OpenTelemetry GenAI semantic conventions; nothing is sent unless an
endpoint is given."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import tool
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from tracing_support import ListRetriever
from typer.testing import CliRunner

from orchestrator import tracing
from orchestrator.tracing import names


class Receiver(ThreadingHTTPServer):
    """Collects the spans of every ``POST /v1/traces`` (protobuf) as name -> attributes."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[tuple[str, dict[str, Any]]] = []
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        self.server.paths.append(self.path)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    values = {a.key: _value(a.value) for a in span.attributes}
                    self.server.spans.append((span.name, values))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@tool
def shout(text: str) -> str:
    """Upper-cases the text."""
    return text.upper()


@pytest.mark.integration
def test_spans_reach_an_otlp_receiver_with_genai_names(
    receiver: Receiver, chat_llm: Any, tmp_path: Path
) -> None:
    with (
        tracing.tracing(tmp_path / "t.sqlite", otlp=receiver.url),
        tracing.run("job", session="conversation-7"),
    ):
        reply = chat_llm.invoke("Say hi", max_tokens=4, seed=3)
        shout.invoke({"text": "hey"})
        ListRetriever().invoke("tower")
    assert receiver.paths and set(receiver.paths) == {"/v1/traces"}
    by_operation = {a.get(names.OPERATION): (n, a) for n, a in receiver.spans}
    name, chat = by_operation["chat"]
    assert name == f"chat {chat[names.REQUEST_MODEL]}" and chat[names.REQUEST_MODEL].endswith(
        ".gguf"
    )
    usage = reply.usage_metadata
    assert (chat[names.INPUT_TOKENS], chat[names.OUTPUT_TOKENS]) == (
        usage["input_tokens"], usage["output_tokens"])  # fmt: skip
    assert chat[names.MAX_TOKENS] == 4 and chat[names.SEED] == 3
    assert chat[names.TEMPERATURE] == 0.0 and chat[names.FINISH_REASONS]
    name, call = by_operation["execute_tool"]
    assert (name, call[names.TOOL_NAME], call[names.TOOL_RESULT]) == (
        "execute_tool shout",
        "shout",
        "HEY",
    )
    assert by_operation["retrieval"][1][names.QUERY] == "tower"
    (root,) = [a for n, a in receiver.spans if n == "job"]
    assert root[names.CONVERSATION] == "conversation-7"


def test_the_environment_names_the_collector_and_nothing_is_sent_without_one(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    with tracing.tracing(tmp_path / "a.sqlite"):
        assert tracing.settings()["otlp"] is None  # type: ignore[index]
        shout.invoke({"text": "quiet"})
    assert receiver.spans == []
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    with tracing.tracing(tmp_path / "b.sqlite"):
        assert tracing.settings()["otlp"] == f"{receiver.url}/v1/traces"  # type: ignore[index]
        shout.invoke({"text": "loud"})
    assert [a[names.TOOL_RESULT] for _, a in receiver.spans] == ["LOUD"]


def test_the_cli_takes_otlp_and_refuses_a_url_that_is_not_one(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.cli.app import app

    monkeypatch.setenv("ORCHESTRATOR_HOME", str(tmp_path))
    bad = CliRunner().invoke(app, ["--otlp", "localhost:4318", "ask", "hi"])
    assert bad.exit_code == 2 and "--otlp http://127.0.0.1:4318" in bad.output
    assert not tracing.is_enabled()
