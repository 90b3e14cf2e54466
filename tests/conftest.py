"""Shared fixtures. Tests run offline: no hub downloads, no telemetry."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("ORCHESTRATOR_THREADS", "1")

import pytest


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
