"""Shared fixtures. Tests run offline: no hub downloads, no telemetry."""

from __future__ import annotations

import os
import tempfile

import orchestrator  # noqa: F401  (first: its telemetry opt-outs, orchestrator/privacy.py)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ORCHESTRATOR_THREADS", "1")
# Sessions, traces, checkpoints and the evaluation cache of tests land in a throwaway home, never
# in the user's own (tests that need a particular home set their own).
os.environ.setdefault("ORCHESTRATOR_HOME", tempfile.mkdtemp(prefix="orchestrator-test-home-"))

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from postgres_support import index_name, pg_dsn, pg_server  # noqa: F401  (PostgreSQL fixtures)

if TYPE_CHECKING:
    from server_harness import Server


@pytest.fixture(scope="session")
def chat_llm():  # type: ignore[no-untyped-def]
    """The real embedded model as a deterministic chat model (greedy, fixed seed)."""
    from orchestrator import ChatLlamaCpp

    return ChatLlamaCpp(temperature=0.0, seed=0, max_tokens=64)


@pytest.fixture(scope="session")
def completion_llm():  # type: ignore[no-untyped-def]
    """The real embedded model as a deterministic completion model."""
    from orchestrator import LlamaCpp

    return LlamaCpp(temperature=0.0, seed=0, max_tokens=32)


@pytest.fixture
def beir(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny BEIR directory from the test module's ``CORPUS`` (id -> text), ``QUERIES``
    (id -> text) and ``QRELS`` ((query, doc, grade) rows); indexes built from it are cached
    under tmp_path."""
    corpus, queries = request.module.CORPUS, request.module.QUERIES
    monkeypatch.setenv("ORCHESTRATOR_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in corpus.items())
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    )
    rows = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t{g}" for q, d, g in request.module.QRELS)]
    (root / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``orchestrator serve`` with its default options, one per test session: the model loads
    once for every server test module that needs no options of its own (a module that does
    defines its own ``server``)."""
    from server_harness import running_server

    with running_server(tmp_path_factory.mktemp("serve")) as running:
        yield running


@pytest.fixture
def model_id(server: Server) -> str:
    """The id ``/v1/models`` gives the GGUF model of the module's ``server``."""
    import httpx

    cards = httpx.get(f"{server.v1}/models", timeout=30).json()["data"]
    return str(next(c["id"] for c in cards if c["kind"] == "gguf"))


class NetworkAccessError(RuntimeError):
    """A test tried to reach a non-local address: Orchestrator must work offline."""


_LOCAL_PREFIXES = ("127.", "::1", "localhost", "0.0.0.0")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any in-process attempt to connect beyond loopback (unix sockets are fine)."""
    import socket

    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0]) if isinstance(address, tuple) else str(address)
            if not host.startswith(_LOCAL_PREFIXES):
                raise NetworkAccessError(f"test tried to connect to {address!r}")
        real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
