"""Security of ``orchestrator serve``: loopback unless an API key is set, Bearer auth on every
endpoint but /health, and no request can make the server open a file of its choosing."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from ready_support import free_port
from server_harness import Server, running_server, serve_command

KEY = "s3cret-key"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.org"])
def test_binding_beyond_loopback_without_a_key_is_refused(host: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [*serve_command(free_port()), "--host", host],
        capture_output=True,
        text=True,
        timeout=120,
        env={"ORCHESTRATOR_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )
    assert done.returncode == 2
    assert f"refusing to listen on {host} without an API key" in done.stderr
    assert "--api-key" in done.stderr and "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("serve"), api_key=KEY) as running:
        yield running


@pytest.mark.integration
def test_every_endpoint_but_health_needs_the_key(server: Server) -> None:
    assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
    wrong = {"Authorization": "Bearer nope"}
    for method, path in [
        ("GET", "/v1/models"),
        ("GET", "/metrics"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("POST", "/v1/embeddings"),
    ]:
        for headers in ({}, wrong):
            response = httpx.request(method, f"{server.url}{path}", headers=headers, timeout=30)
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["error"]["code"] == "invalid_api_key"
            assert response.headers["www-authenticate"] == "Bearer"
    ok = httpx.get(f"{server.v1}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert ok.status_code == 200
    assert server.metric("orchestrator_errors_total", endpoint="/v1/models",
                         code="invalid_api_key") == 2


@pytest.mark.integration
def test_the_openai_client_works_with_the_key_only(server: Server) -> None:
    from openai import OpenAI

    client: Any = server.client()
    model = client.models.list().data[0].id
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    assert reply.usage.completion_tokens <= 2
    stranger = OpenAI(base_url=server.v1, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()


@pytest.mark.integration
def test_no_request_can_name_a_file(server: Server) -> None:
    from orchestrator.settings import resolve_model_path

    auth = {"Authorization": f"Bearer {KEY}"}
    hi = [{"role": "user", "content": "Hi"}]
    real_file = str(resolve_model_path(None))
    attempts = [
        ({"model": real_file, "messages": hi}, 404, "model"),
        ({"model": "/etc/passwd", "messages": hi}, 404, "model"),
        ({"model": "story", "messages": hi, "model_path": real_file}, 400, "model_path"),
        ({"model": "story", "messages": hi, "index": "/tmp"}, 400, "index"),
    ]
    for body, status, param in attempts:
        response = httpx.post(f"{server.v1}/chat/completions", json=body, headers=auth, timeout=60)
        assert response.status_code == status, body
        assert response.json()["error"]["param"] == param


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "/nope.gguf"], "model file not found: /nope.gguf"),
        (["--index", "/no-such-index"], "/no-such-index is not an index directory"),
        (["--tools", "calc"], "unknown tool 'calc'"),
        (["--tools", "knowledge_base"], "the knowledge_base tool needs an index"),
    ],
)
def test_bad_start_options_exit_2_with_the_fix(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [*serve_command(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"ORCHESTRATOR_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "COLUMNS": "200",
             "ORCHESTRATOR_THREADS": "1"},
    )
    assert done.returncode == 2
    assert message in done.stderr and "fix:" in done.stderr
    assert "Traceback" not in done.stderr
