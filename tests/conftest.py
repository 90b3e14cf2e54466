"""Shared fixtures. Tests run offline: no hub downloads, no telemetry."""

from __future__ import annotations

import os

import orchestrator  # noqa: F401  (first: its telemetry opt-outs, orchestrator/privacy.py)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ORCHESTRATOR_THREADS", "1")

import pytest
from postgres_support import index_name, pg_dsn, pg_server  # noqa: F401  (PostgreSQL fixtures)


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
