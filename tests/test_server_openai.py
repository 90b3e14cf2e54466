"""``orchestrator serve`` through the official openai client: the endpoints answer what the
library answers in process (same GGUF, same grammars), with usage in every response."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import BaseModel
from server_harness import Server, sse_lines

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = {"temperature": 0.0, "seed": 0}


def test_models_lists_the_gguf_model_and_the_pipelines_but_not_rag_without_index(
    server: Server,
) -> None:
    from orchestrator.settings import resolve_model_path

    client: Any = server.client()
    ids = [m.id for m in client.models.list().data]
    assert ids == [Path(resolve_model_path(None)).stem, "agent", "story", "all-MiniLM-L6-v2"]
    assert client.models.retrieve("story").id == "story"


def test_chat_answer_equals_the_in_process_answer_with_usage(
    server: Server, model_id: str, chat_llm: Any
) -> None:
    client: Any = server.client()
    reply = client.chat.completions.create(
        model=model_id, messages=QUESTION, max_tokens=12, **GREEDY
    )
    local = chat_llm.invoke("What is the capital of France?", max_tokens=12)
    assert reply.choices[0].message.content == local.content
    assert reply.object == "chat.completion" and reply.model == model_id
    usage = reply.usage
    assert usage.prompt_tokens == local.usage_metadata["input_tokens"]
    assert usage.completion_tokens == local.usage_metadata["output_tokens"] <= 12
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_max_tokens_is_honoured_and_reported_as_length(server: Server, model_id: str) -> None:
    client: Any = server.client()
    reply = client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        max_tokens=5,
        **GREEDY,
    )
    assert reply.usage.completion_tokens == 5
    assert reply.choices[0].finish_reason == "length"


def test_stream_sends_the_same_text_then_usage_then_done(server: Server, model_id: str) -> None:
    client: Any = server.client()
    whole = client.chat.completions.create(
        model=model_id, messages=QUESTION, max_tokens=10, **GREEDY
    )
    chunks = list(
        client.chat.completions.create(
            model=model_id,
            messages=QUESTION,
            max_tokens=10,
            stream=True,
            stream_options={"include_usage": True},
            **GREEDY,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    body = {"model": model_id, "messages": QUESTION, "max_tokens": 3, "stream": True}
    with httpx.stream("POST", f"{server.v1}/chat/completions", json=body, timeout=120) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        events = sse_lines(raw)
    assert events[-1] == "[DONE]"
    assert all("usage" not in json.loads(e) for e in events[:-1])  # only when asked for


def test_seed_makes_sampling_repeatable(server: Server, model_id: str) -> None:
    client: Any = server.client()
    messages = [{"role": "user", "content": "Tell me something about cats."}]

    def sample(seed: int) -> str:
        reply = client.chat.completions.create(
            model=model_id, messages=messages, max_tokens=16, temperature=1.5, seed=seed
        )
        return str(reply.choices[0].message.content)

    assert sample(7) == sample(7)
    assert len({sample(s) for s in (1, 2, 3, 4)}) > 1


def test_stop_sequence_ends_the_answer_before_it(server: Server, model_id: str) -> None:
    client: Any = server.client()
    prompt = [{"role": "user", "content": "Count from 1 to 10, separated by commas."}]
    full = client.chat.completions.create(model=model_id, messages=prompt, max_tokens=30, **GREEDY)
    text = str(full.choices[0].message.content)
    middle = len(text) // 2
    stop = text[middle : middle + 3]
    cut = client.chat.completions.create(
        model=model_id, messages=prompt, max_tokens=30, stop=[stop], **GREEDY
    )
    assert cut.choices[0].message.content == text[: text.index(stop)].strip()
    assert cut.choices[0].finish_reason == "stop"


def test_forced_tool_call_is_a_parsed_openai_tool_call(server: Server, model_id: str) -> None:
    client: Any = server.client()
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    reply = client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[weather],
        tool_choice="required",
        max_tokens=48,
        **GREEDY,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    assert call.id.startswith("call_")
    assert reply.usage.completion_tokens > 0


class City(BaseModel):
    name: str
    population: int


def test_json_schema_response_format_parses_into_the_model(server: Server, model_id: str) -> None:
    client: Any = server.client()
    reply = client.chat.completions.parse(
        model=model_id,
        messages=[{"role": "user", "content": "Name a large city."}],
        response_format=City,
        max_tokens=64,
        **GREEDY,
    )
    parsed = reply.choices[0].message.parsed
    assert isinstance(parsed, City)
    assert City.model_validate_json(reply.choices[0].message.content) == parsed


def test_json_object_response_format_is_a_json_object(server: Server, model_id: str) -> None:
    client: Any = server.client()
    reply = client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": "Describe a dog as JSON."}],
        response_format={"type": "json_object"},
        max_tokens=64,
        **GREEDY,
    )
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_completion_equals_in_process_llamacpp_and_echo(
    server: Server, model_id: str, completion_llm: Any
) -> None:
    client: Any = server.client()
    prompt = "The three primary colours are"
    reply = client.completions.create(model=model_id, prompt=prompt, max_tokens=8, **GREEDY)
    assert reply.choices[0].text == completion_llm.invoke(prompt, max_tokens=8)
    assert reply.usage.completion_tokens == 8 and reply.choices[0].finish_reason == "length"
    echoed = client.completions.create(
        model=model_id, prompt=prompt, max_tokens=8, echo=True, **GREEDY
    )
    assert echoed.choices[0].text == prompt + reply.choices[0].text
    two = client.completions.create(model=model_id, prompt=[prompt, "2 + 2 ="], max_tokens=4)
    assert [c.index for c in two.choices] == [0, 1]
    streamed = client.completions.create(
        model=model_id, prompt=prompt, max_tokens=8, stream=True,
        stream_options={"include_usage": True}, **GREEDY,
    )
    chunks = list(streamed)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == reply.choices[0].text
    assert chunks[-1].usage.completion_tokens == 8


def test_embeddings_equal_the_retrieval_embedder(server: Server) -> None:
    from orchestrator.retrieval.dense import SentenceTransformerEmbedder

    client: Any = server.client()
    texts = ["The cat sat on the mat.", "Quantum field theory"]
    got = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)  # base64 on the wire
    as_floats = client.embeddings.create(
        model="all-MiniLM-L6-v2", input=texts[0], encoding_format="float"
    )
    local = SentenceTransformerEmbedder().embed_documents(texts)
    vectors = np.array([d.embedding for d in got.data], dtype=np.float32)
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(vectors, local, atol=1e-5)
    np.testing.assert_allclose(as_floats.data[0].embedding, local[0], atol=1e-5)
    assert got.usage.prompt_tokens == got.usage.total_tokens > len(texts)


def test_health_and_metrics_count_requests_and_tokens(server: Server, model_id: str) -> None:
    health = httpx.get(f"{server.url}/health", timeout=30).json()
    assert health["status"] == "ok" and health["model"] == model_id
    before = server.metric("orchestrator_completion_tokens_total", model=model_id)
    requests = server.metric(
        "orchestrator_requests_total", endpoint="/v1/chat/completions", status="200"
    )
    client: Any = server.client()
    reply = client.chat.completions.create(model=model_id, messages=QUESTION, max_tokens=4)
    after = server.metric("orchestrator_completion_tokens_total", model=model_id)
    assert after - before == reply.usage.completion_tokens
    assert server.metric(
        "orchestrator_requests_total", endpoint="/v1/chat/completions", status="200"
    ) == requests + 1
    assert server.metric("orchestrator_time_to_first_token_seconds_count", model=model_id) > 0
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert "orchestrator_request_duration_seconds_bucket" in text
    assert "orchestrator_prompt_tokens_total" in text
