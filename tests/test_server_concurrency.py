"""Many clients at once queue on the model without deadlock, and a client that goes away stops
its generation (the model is free again at its next token)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from ready_support import wait_until
from server_harness import Server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLIENTS = 8
#: A prompt the embedded model continues greedily up to any max_tokens (no early end).
COUNTING = "Numbers from 1 to 1000: 1, 2, 3, 4, 5, 6, 7, 8,"
#: Guard against a hang only: the tests assert on counts, never on how long things took.
POLL_LIMIT = 120.0


def wait_for(server: Server, name: str, target: float, **labels: str) -> float:
    """``name{labels}`` once it reaches ``target`` (> 0; a failure naming it at POLL_LIMIT)."""

    def reached() -> float | None:
        value = server.metric(name, **labels)
        return value if value >= target else None

    return wait_until(reached, f"{name}{labels} to reach {target:g}", limit=POLL_LIMIT)


def test_eight_concurrent_streams_all_complete_with_the_sequential_answer(
    server: Server, model_id: str
) -> None:
    messages = [{"role": "user", "content": "Name three fruits."}]
    options: dict[str, Any] = {"max_tokens": 12, "temperature": 0.0, "seed": 0}
    client: Any = server.client()
    reference = client.chat.completions.create(model=model_id, messages=messages, **options)

    async def one(index: int) -> tuple[str, Any]:
        stream = await server.async_client().chat.completions.create(  # type: ignore[attr-defined]
            model=model_id,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            **options,
        )
        parts, usage = [], None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
            usage = chunk.usage or usage
        return "".join(parts).strip(), usage

    async def everyone() -> tuple[list[tuple[str, Any]], int]:
        tasks = [asyncio.create_task(one(i)) for i in range(CLIENTS)]
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(timeout=30) as http:  # the server answers meanwhile
            health = (await http.get(f"{server.url}/health")).status_code
        return list(await asyncio.gather(*tasks)), health

    steps, tokens = (
        server.metric(f"orchestrator_{n}_total") for n in ("decode_steps", "decoded_tokens")
    )
    results, health = asyncio.run(everyone())
    assert health == 200
    assert [text for text, _ in results] == [reference.choices[0].message.content] * CLIENTS
    assert all(u.completion_tokens == reference.usage.completion_tokens for _, u in results)
    # decoded together: the server's slots (serve --parallel, default 4) shared each step
    assert server.metric("orchestrator_slots") == 4
    mean_batch = (server.metric("orchestrator_decoded_tokens_total") - tokens) / (
        server.metric("orchestrator_decode_steps_total") - steps
    )
    assert mean_batch > 1
    assert server.metric("orchestrator_requests_running") == 0
    assert server.metric("orchestrator_requests_waiting") == 0


def test_raw_streams_end_with_done(server: Server, model_id: str) -> None:
    body = {
        "model": model_id,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 4,
        "stream": True,
    }

    async def one() -> list[str]:
        async with (
            httpx.AsyncClient(timeout=300) as http,
            http.stream("POST", f"{server.v1}/chat/completions", json=body) as response,
        ):
            return [line async for line in response.aiter_lines() if line.startswith("data: ")]

    async def all_of_them() -> list[list[str]]:
        return list(await asyncio.gather(*(one() for _ in range(4))))

    for events in asyncio.run(all_of_them()):
        assert events[-1] == "data: [DONE]" and len(events) > 2


def test_a_client_that_leaves_a_stream_stops_its_generation(server: Server, model_id: str) -> None:
    labels = {"model": model_id}
    cancelled = server.metric("orchestrator_generations_total", outcome="cancelled", **labels)
    tokens = server.metric("orchestrator_completion_tokens_total", **labels)
    left = server.metric("orchestrator_client_disconnects_total", endpoint="/v1/completions")
    body = {
        "model": model_id,
        "prompt": COUNTING,
        "max_tokens": 1500,
        "stream": True,
        "temperature": 0,
    }
    with httpx.stream("POST", f"{server.v1}/completions", json=body, timeout=120) as response:
        received = 0
        for line in response.iter_lines():
            received += line.startswith("data: ")
            if received == 3:
                break
    assert (
        wait_for(
            server, "orchestrator_generations_total", cancelled + 1, outcome="cancelled", **labels
        )
        == cancelled + 1
    )
    generated = server.metric("orchestrator_completion_tokens_total", **labels) - tokens
    assert 3 <= generated < 1500
    assert (
        server.metric("orchestrator_client_disconnects_total", endpoint="/v1/completions")
        == left + 1
    )
    client: Any = server.client()  # the model is free for the next client
    assert client.completions.create(model=model_id, prompt="Hi", max_tokens=2).usage


def test_a_client_that_leaves_a_whole_answer_stops_its_generation(
    server: Server, model_id: str
) -> None:
    labels = {"model": model_id, "outcome": "cancelled"}
    cancelled = server.metric("orchestrator_generations_total", **labels)
    body = {"model": model_id, "prompt": COUNTING, "max_tokens": 1500, "temperature": 0}
    with pytest.raises(httpx.ReadTimeout):  # the client gives up before the end
        httpx.post(f"{server.v1}/completions", json=body, timeout=httpx.Timeout(30, read=2))
    assert wait_for(server, "orchestrator_generations_total", cancelled + 1, **labels) == (
        cancelled + 1
    )
