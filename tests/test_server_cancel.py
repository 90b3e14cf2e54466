"""A client that leaves stops its generation on every model the server serves (the GGUF model
and the rag, agent and story pipelines), streamed or not: the model is free again at once, and
``/metrics`` tells truthfully which generations were cancelled and which completed.

Each abandoned request asks for many tokens and is dropped early; the assertions are on what
the server reports (outcomes, tokens generated, whether the model is busy), never on time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from ready_support import wait_until
from server_harness import Server, running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: What an abandoned request asks for: far more than it gets to generate before it is left.
MAX_TOKENS = 1500
#: Seconds a client waits before it gives up on a request that has sent it nothing visible.
LEAVE_AFTER = 2.0
#: Seconds a stream's client waits for its first piece (an agent's first step included).
STEP_LIMIT = 60.0
#: Requests that keep the model busy for much longer than LEAVE_AFTER if nobody stops them
#: (with a repeat penalty under 1 the model loops instead of ending its answer).
LOOPING = {"repeat_penalty": 0.8}
LONG = {
    "plain": "Write a very long story about a dragon.",
    "rag": "Write a very long story about Zorblat, the frozen moon.",
    "story": "a robot that learns to paint",
    "agent": "Write a very long essay about the history of every country, then compute 12 * 7.",
}
SHORT = {
    "plain": "Hi",
    "rag": "What is Zorblat covered in?",
    "story": "a cat",
    "agent": "What is 12 * 7?",
}
GREEDY = {"temperature": 0.0, "seed": 0}
#: Guard against a hang only: the tests assert on what the server reports, never on time.
POLL_LIMIT = 120.0


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orchestrator.retrieval import build_index

    root = tmp_path_factory.mktemp("rag")
    (root / "docs").mkdir()
    (root / "docs" / "zorblat.md").write_text(
        "Zorblat is a small frozen moon of Neptune. Its surface is covered in blue ice.",
        encoding="utf-8",
    )
    build_index([root / "docs"], root / "index", progress=False)
    return root / "index"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, index_dir: Path) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("serve")
    with running_server(tmp, "--index", str(index_dir), "--tools", "calculator") as running:
        yield running


@pytest.fixture(scope="module")
def gguf(server: Server) -> str:
    cards = httpx.get(f"{server.v1}/models", timeout=30).json()["data"]
    return str(next(c["id"] for c in cards if c["kind"] == "gguf"))


@dataclass
class Counts:
    cancelled: float
    completed: float
    tokens: float


def counts(server: Server, model: str) -> Counts:
    def outcome(name: str) -> float:
        return server.metric("orchestrator_generations_total", model=model, outcome=name)

    tokens = server.metric("orchestrator_completion_tokens_total", model=model)
    return Counts(outcome("cancelled"), outcome("completed"), tokens)


def wait_for(server: Server, target: float, **labels: str) -> None:
    """Poll ``orchestrator_generations_total{labels}`` until it reaches ``target`` (a failure
    naming it at POLL_LIMIT)."""
    wait_until(lambda: server.metric("orchestrator_generations_total", **labels) >= target,
               f"orchestrator_generations_total{labels} to reach {target:g}", limit=POLL_LIMIT,
               interval=0.1)


def model_tokens(server: Server) -> float:
    """Every token the model generated, whichever request asked for it."""
    return server.metric("orchestrator_model_generated_tokens_total")


def model_of(kind: str, gguf: str) -> str:
    return gguf if kind == "plain" else kind


def request(model: str, text: str, max_tokens: int, stream: bool) -> dict[str, Any]:
    return {
        "model": model, "messages": [{"role": "user", "content": text}],
        "max_tokens": max_tokens, "stream": stream, **GREEDY,
    }


def visible(line: str) -> bool:
    """Whether an event carries generated output: text, or an agent's step."""
    if not line.startswith("data: {"):
        return False
    return '"content":"' in line.replace('"content":""', "") or '"step":{' in line


def abandon(
    server: Server, model: str, text: str, stream: bool, patience: float
) -> tuple[bool, float]:
    """Send a long request and leave: a stream at its first visible piece, else (and a stream
    that sent none) after ``patience`` seconds without a byte. Whether a piece came, and the
    tokens the model had generated (all requests) when the client had left."""
    payload = {**request(model, text, MAX_TOKENS, stream), **LOOPING}
    timeout = httpx.Timeout(60, read=patience)
    got_a_piece = False
    with contextlib.suppress(httpx.ReadTimeout):
        if not stream:
            httpx.post(f"{server.v1}/chat/completions", json=payload, timeout=timeout)
        else:
            with httpx.stream(
                "POST", f"{server.v1}/chat/completions", json=payload, timeout=timeout
            ) as response:
                got_a_piece = any(visible(line) for line in response.iter_lines())
    return got_a_piece, model_tokens(server)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("kind", ["story", "agent", "rag", "plain"])
def test_a_client_that_leaves_stops_the_generation_and_frees_the_model(
    server: Server, gguf: str, kind: str, stream: bool
) -> None:
    model = model_of(kind, gguf)
    before, model_before = counts(server, model), model_tokens(server)
    # a stream is left at its first piece (a story sends none before its end), else soon
    patience = STEP_LIMIT if stream and kind != "story" else LEAVE_AFTER
    got_a_piece, when_left = abandon(server, model, LONG[kind], stream, patience)
    wait_for(server, before.cancelled + 1, model=model, outcome="cancelled")
    # counted once it had stopped: the model is free, and it stopped soon after the client
    # left (at its next token or step), not at the end of its MAX_TOKENS
    assert server.metric("orchestrator_model_busy") == 0
    assert model_tokens(server) - when_left < MAX_TOKENS // 8
    after = counts(server, model)
    assert (after.cancelled, after.completed) == (before.cancelled + 1, before.completed)
    # what it generated is reported (the model's own count), not dropped or made up
    decoded, reported = model_tokens(server) - model_before, after.tokens - before.tokens
    assert abs(reported - decoded) <= 2
    assert reported > 0 or not got_a_piece
    plain = counts(server, gguf)
    short = request(gguf, "Hi", 2, False)
    served = httpx.post(f"{server.v1}/chat/completions", json=short, timeout=300)
    assert served.status_code == 200 and served.json()["usage"]["completion_tokens"] > 0
    assert counts(server, gguf).completed == plain.completed + 1


@pytest.mark.parametrize(
    ("kind", "stream"),
    [("story", False), ("story", True), ("rag", False), ("rag", True), ("plain", False),
     ("plain", True), ("agent", True)],
)
def test_a_request_that_finishes_is_counted_completed(
    server: Server, gguf: str, kind: str, stream: bool
) -> None:
    model = model_of(kind, gguf)
    before = counts(server, model)
    payload = request(model, SHORT[kind], 16 if kind == "agent" else 4, stream)
    with httpx.stream(
        "POST", f"{server.v1}/chat/completions", json=payload, timeout=300
    ) as response:
        assert response.status_code == 200
        response.read()
    after = counts(server, model)
    assert (after.cancelled, after.completed) == (before.cancelled, before.completed + 1)
    assert after.tokens > before.tokens


def test_a_client_that_leaves_once_the_answer_came_is_counted_completed(server: Server) -> None:
    """The story's message arrives once all its steps are done: a client that leaves then,
    before the stream's end, stopped nothing, so nothing is counted cancelled."""
    before = counts(server, "story")
    payload = request("story", SHORT["story"], 4, True)
    with httpx.stream(
        "POST", f"{server.v1}/chat/completions", json=payload, timeout=300
    ) as response:
        assert any(visible(line) for line in response.iter_lines())
    wait_for(server, before.completed + 1, model="story", outcome="completed")
    after = counts(server, "story")
    assert (after.cancelled, after.completed) == (before.cancelled, before.completed + 1)
