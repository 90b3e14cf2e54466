"""A session of ``orchestrator serve`` that outlives the server (issue 20, point 4): after a
restart, the session's first turn loads the KV state the previous server saved and llama.cpp
evaluates only the new tokens (its own counters, read through /metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from server_harness import Server, running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GREEDY = {"temperature": 0.0, "seed": 0}
FIRST = (
    "Tell me about the sea, the sky and the mountains, please; I like all three of them, and I "
    "spend my holidays walking along the coast or climbing the hills above the harbour."
)


def ask(server: Server, text: str, max_tokens: int, session: str | None = "kept") -> Any:
    client: Any = server.client()
    cards = httpx.get(f"{server.v1}/models", timeout=30).json()["data"]
    model = next(c["id"] for c in cards if c["kind"] == "gguf")
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        max_tokens=max_tokens,
        extra_body={"session_id": session} if session else None,
        **GREEDY,
    )


def test_a_restarted_server_resumes_a_session_without_reading_its_history(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path) as server:
        first = ask(server, FIRST, max_tokens=8)
    previous = first.usage.prompt_tokens
    states = list((tmp_path / "home" / "sessions.db-kv").glob("*.kv"))
    assert len(states) == 1, "the turn's KV state is saved beside the session store"
    with running_server(tmp_path) as server:
        # llama.cpp reports each of its two counters as at least 1: leave 0 behind first
        ask(server, "Hello there.", max_tokens=2, session=None)
        before = server.metric("orchestrator_model_evaluated_tokens_total")
        second = ask(server, "And which of them is the highest?", max_tokens=1)
        after = server.metric("orchestrator_model_evaluated_tokens_total")
    reused = second.usage.prompt_tokens_details.cached_tokens
    assert reused == previous - previous % 32  # the previous prompt's whole aligned chunks
    assert after - before == second.usage.prompt_tokens - reused
