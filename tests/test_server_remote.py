"""``orchestrator serve --base-url``: the server fronting a REAL served model (llama.cpp's
``python -m llama_cpp.server`` on the embedded GGUF, one per session) for chat, a stream and
the ``rag`` pipeline; what only a local GGUF can do (text completion) is a 400 naming the fix,
never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from remote_support import LlamaServer, llama_server  # noqa: F401  (fixture)
from server_harness import Server, running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCS = [
    {"doc_id": "zorblat", "text": "Zorblat is a small volcanic island famous for purple sand."},
    {"doc_id": "quimby", "text": "Quimby is a river town known for its annual cheese fair."},
    {"doc_id": "vorn", "text": "The Vorn glacier feeds three lakes and moves forty metres a year."},
]


@pytest.fixture(scope="module")
def fronting(
    tmp_path_factory: pytest.TempPathFactory,
    llama_server: LlamaServer,  # noqa: F811
) -> Iterator[Server]:
    """``orchestrator serve --base-url`` (with an index: model ``rag``) in front of it."""
    from orchestrator.retrieval import build_index

    tmp = tmp_path_factory.mktemp("serve-remote")
    build_index(DOCS, tmp / "index")
    url = llama_server.base_url
    with running_server(tmp, "--base-url", url, "--index", str(tmp / "index")) as server:
        yield server


def test_models_list_the_served_model(fronting: Server, llama_server: LlamaServer) -> None:  # noqa: F811
    cards = httpx.get(f"{fronting.v1}/models", timeout=30).json()["data"]
    kinds = {c["id"]: c["kind"] for c in cards}
    assert kinds[llama_server.model] == "served"
    assert kinds["rag"] == "rag" and kinds["agent"] == "agent"
    health = httpx.get(f"{fronting.url}/health", timeout=30).json()
    assert health["model"] == llama_server.model
    # the model's own gauges are a local engine's: absent here, and /metrics still answers
    metrics = httpx.get(f"{fronting.url}/metrics", timeout=30)
    assert metrics.status_code == 200 and "orchestrator_model_busy" not in metrics.text


def test_chat_completion_whole_and_streamed(
    fronting: Server,
    llama_server: LlamaServer,  # noqa: F811
) -> None:
    client: Any = fronting.client()
    messages = [{"role": "user", "content": "Say hello."}]
    reply = client.chat.completions.create(
        model=llama_server.model,
        messages=messages,
        max_tokens=8,
        temperature=0,
        extra_body={"top_k": 1},  # llama.cpp's option: travels to the upstream in the body
    )
    assert reply.model == llama_server.model
    assert reply.choices[0].message.content.strip()
    assert 0 < reply.usage.completion_tokens <= 8
    stream = client.chat.completions.create(
        model=llama_server.model,
        messages=messages,
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")


def test_rag_over_the_served_model(fronting: Server) -> None:
    body = {
        "model": "rag",
        "messages": [{"role": "user", "content": "Which island has purple sand?"}],
        "max_tokens": 24,
    }
    reply = httpx.post(f"{fronting.v1}/chat/completions", json=body, timeout=300)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["sources"][0]["doc_id"] == "zorblat"
    assert "purple sand" in data["sources"][0]["text"]
    assert data["choices"][0]["message"]["content"].strip()


def test_text_completion_is_a_400_naming_the_fix(
    fronting: Server,
    llama_server: LlamaServer,  # noqa: F811
) -> None:
    body = {"model": llama_server.model, "prompt": "Once upon", "max_tokens": 4}
    reply = httpx.post(f"{fronting.v1}/completions", json=body, timeout=60)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "model_not_supported" and error["param"] == "model"
    assert "local GGUF" in error["message"] and "--base-url" in error["fix"]


def test_upstream_key_without_base_url_is_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from orchestrator.cli.app import app

    result = CliRunner().invoke(app, ["serve", "--upstream-api-key", "k"])
    assert result.exit_code == 2
    assert "--base-url" in result.output
