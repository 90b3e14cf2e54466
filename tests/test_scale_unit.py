"""``--ray`` without a running Ray: telemetry switched off, wrong addresses, worker env."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.scale import (
    CLUSTER_FIX,
    NO_TELEMETRY,
    RayConnectError,
    connect,
    disable_telemetry,
    worker_env,
)


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _no_ray_running() -> None:
    import ray

    assert not ray.is_initialized(), "these tests need no Ray session in this process"


def test_telemetry_is_switched_off_before_ray_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")
    disable_telemetry()
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    from ray._common.usage import usage_lib

    assert usage_lib.usage_stats_enabled() is False
    assert worker_env()["RAY_USAGE_STATS_ENABLED"] == "0"  # workers get it too


def test_worker_env_forwards_our_settings_and_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_CACHE", "/somewhere")
    monkeypatch.delenv("ORCHESTRATOR_THREADS", raising=False)
    monkeypatch.setenv("UNRELATED_SECRET", "x")
    env = worker_env()
    assert env["ORCHESTRATOR_CACHE"] == "/somewhere"
    assert env["ORCHESTRATOR_THREADS"] == "1"
    assert "UNRELATED_SECRET" not in env
    assert NO_TELEMETRY.items() <= env.items()


def test_an_address_nobody_answers_is_a_clear_error_not_a_hang() -> None:
    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(RayConnectError) as caught:
        connect(address)
    assert address in caught.value.message
    assert caught.value.fix == CLUSTER_FIX
    assert "ray start --head" in CLUSTER_FIX and "RAY_ADDRESS" in CLUSTER_FIX


def test_a_wrong_ray_address_in_the_environment_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_closed_port()}")
    with pytest.raises(RayConnectError, match="no Ray cluster answers"):
        connect("auto")


def test_a_malformed_address_names_the_accepted_forms() -> None:
    with pytest.raises(RayConnectError, match="not auto, local or a cluster address HOST:PORT"):
        connect("my-cluster")


def test_cli_index_with_a_bad_address_fails_before_reading_documents(tmp_path: Path) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text("some text to index")
    address = f"127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(
        app, ["index", str(doc), "--index", str(tmp_path / "ix"), "--ray", address]
    )
    assert result.exit_code != 0
    assert "no Ray cluster answers" in result.output and "ray start --head" in result.output
    assert not (tmp_path / "ix").exists()


def test_cli_eval_with_a_bad_address_is_the_same_error(tmp_path: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        '{"user_input": "q", "reference": "r", "response": "r", "retrieved_contexts": ["r"]}\n'
    )
    address = f"127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(
        app, ["eval", "rag", "--dataset", str(qa), "--metrics", "rouge", "--ray", address]
    )
    assert result.exit_code != 0
    assert "no Ray cluster answers" in result.output and "RAY_ADDRESS" in result.output


def _grpc_like_listener() -> tuple[str, socket.socket]:
    """A loopback server answering HTTP/2's preface with a SETTINGS frame, as a Ray GCS does."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            client.sendall(bytes.fromhex("000000040000000000"))
            client.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"127.0.0.1:{server.getsockname()[1]}", server


@pytest.mark.parametrize("user_value", [None, "7"])
def test_the_join_is_one_attempt_and_a_refused_token_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, user_value: str | None
) -> None:
    import ray

    from orchestrator.scale import AUTH_FIX

    key = "RAY_gcs_server_port_wait_time_s"
    if user_value is None:
        monkeypatch.delenv(key, raising=False)
    else:
        monkeypatch.setenv(key, user_value)
    seen: list[str | None] = []

    def refuse(**kwargs: object) -> None:  # what Ray 2.x raises for a missing token
        seen.append(os.environ.get(key))
        cause = RuntimeError("Failed to connect to GCS. ... InvalidAuthToken: token is missing")
        raise ConnectionError("Failed to connect to Ray cluster at X") from cause

    monkeypatch.setattr(ray, "init", refuse)
    address, server = _grpc_like_listener()
    try:
        with pytest.raises(RayConnectError) as caught:
            connect(address)
    finally:
        server.close()
    assert seen == [user_value or "1"]  # one attempt, unless the user chose otherwise
    assert os.environ.get(key) == user_value  # and the environment is as it was
    assert f"could not connect to Ray at {address!r} (one attempt, at most 60 s)" in str(
        caught.value
    )
    assert caught.value.fix == AUTH_FIX and "RAY_AUTH_MODE=token" in AUTH_FIX
