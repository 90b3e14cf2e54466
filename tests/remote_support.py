"""Servers for the remote-model tests.

- :func:`llama_server`: llama.cpp's own OpenAI-compatible server (``python -m
  llama_cpp.server``) on the embedded GGUF, one per test session, on a free loopback port.
- :class:`FakeOpenAIServer`: a tiny in-process HTTP server for unit tests: it lists models,
  records every request body, and honours (or ignores) grammars and JSON schemas as a chosen
  kind of server would, so the probe, the payload and the error mapping can be checked without
  a model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ready_support import free_port, wait_until

#: How long the server may take to load the model and answer /v1/models (2 shared cores).
START_TIMEOUT = 180.0
MODEL_ALIAS = "smollm2"


@dataclass
class LlamaServer:
    """A running ``llama_cpp.server``: base URL (ending in /v1), served name, process, log."""

    base_url: str
    model: str
    process: subprocess.Popen[bytes]
    log: Path


def start_llama_server(log: Path, *, n_ctx: int = 2048) -> LlamaServer:
    """Start ``python -m llama_cpp.server`` on the embedded model; wait for ``/v1/models``."""
    from orchestrator.settings import embedded_model_path

    port = free_port()
    command = [
        sys.executable,
        "-m",
        "orchestrator.llama.cpu_repack",  # llama.cpp's AMX repack crashes: see that module
        "llama_cpp.server",
        "--model",
        str(embedded_model_path()),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        # one thread, as the suite's own engines (conftest: ORCHESTRATOR_THREADS=1); the
        # server's default batch threads are every core, which spin against the test's own
        # processes on a small machine
        "--n_threads",
        "1",
        "--n_threads_batch",
        "1",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", MODEL_ALIAS, process, log)

    def answers() -> bool:
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as reply:
            return bool(reply.status == 200)

    try:
        wait_until(answers, f"llama_cpp.server to answer {server.base_url}/models",
                   limit=START_TIMEOUT, interval=0.5, process=process, log=log, ignore=(OSError,))
    except AssertionError:
        stop_llama_server(server)
        raise
    return server


def stop_llama_server(server: LlamaServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=15)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama.cpp's server on the embedded GGUF for the whole session (killed at the end)."""
    server = start_llama_server(tmp_path_factory.mktemp("llama-server") / "server.log")
    try:
        yield server
    finally:
        stop_llama_server(server)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for an ``orchestrator`` subprocess (no stray base URL or key)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_BASE")}
    env.pop("ORCHESTRATOR_API_KEY", None)
    env.update(extra)
    return env


# -- the fake server ------------------------------------------------------------------------


@dataclass
class FakeOpenAIServer:
    """An OpenAI-shaped server: ``honours`` is any of ``grammar``, ``openai_json`` and
    ``llama_json`` (which request fields it applies); unknown fields are ignored, as real
    servers do. ``reply`` is the text of an unconstrained answer; ``status`` forces an error
    status for chat requests; ``key`` makes it require that bearer token."""

    models: list[str] = field(default_factory=lambda: ["served-model"])
    honours: set[str] = field(default_factory=set)
    reply: str = "plain words"
    status: int = 200
    error: str = "boom"
    key: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""
    _httpd: ThreadingHTTPServer | None = None

    def __enter__(self) -> FakeOpenAIServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorised(self) -> bool:
                if owner.key and self.headers.get("Authorization") != f"Bearer {owner.key}":
                    self._send(401, {"error": {"message": "invalid api key"}})
                    return False
                return True

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                if self.path.rstrip("/") != "/v1/models":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                data = [{"id": m, "object": "model", "owned_by": "me"} for m in owner.models]
                self._send(200, {"object": "list", "data": data})

            def do_POST(self) -> None:
                if not self._authorised():
                    return
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                owner.requests.append(body)
                if owner.status != 200:
                    self._send(owner.status, {"error": {"message": owner.error}})
                    return
                self._send(200, owner.completion(body))

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        text = self.answer(body)
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }

    def answer(self, body: dict[str, Any]) -> str:
        """What a constrained server would write: the only word a one-literal grammar
        admits, or the probe object for a schema whose only property has one enum value."""
        grammar = body.get("grammar")
        if grammar and "grammar" in self.honours and grammar.startswith('root ::= "'):
            return str(grammar.split('"')[1])
        fmt = body.get("response_format") or {}
        kind = fmt.get("type")
        schema = None
        if kind == "json_schema" and "openai_json" in self.honours:
            schema = fmt["json_schema"]["schema"]
        elif kind == "json_object" and "schema" in fmt and "llama_json" in self.honours:
            schema = fmt["schema"]
        if schema is not None:
            props = schema.get("properties", {})
            return json.dumps({k: (v.get("enum") or ["x"])[0] for k, v in props.items()})
        return self.reply
