"""The cancellation token without a model: LangChain runs inside a scope stop at their next
step, nothing that catches ``Exception`` swallows the stop, an async consumer that leaves
cancels its producer, and the server's accounting tells cancelled from completed."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.runnables import RunnableLambda

from orchestrator.cancellation import (
    CancellationToken,
    GenerationCancelled,
    cancellation_scope,
    current_cancellation,
    raise_if_cancelled,
)
from orchestrator.llama.aio import iterate_in_thread
from orchestrator.llama.engine import Usage
from orchestrator.server.generation import Tally, UsageTally
from orchestrator.server.metrics import Metrics


def test_a_chain_stops_at_its_next_step_even_a_step_that_drops_its_config() -> None:
    token = CancellationToken()
    ran: list[str] = []

    def first(x: str) -> str:
        ran.append("first")
        token.cancel()
        return x

    def second(x: str) -> str:
        ran.append("second")
        return x

    inner = RunnableLambda(second)
    careless = RunnableLambda(lambda x: inner.invoke(x))  # no config passed on
    with cancellation_scope(token), pytest.raises(GenerationCancelled):
        (RunnableLambda(first) | careless).invoke("x")
    assert ran == ["first"]
    assert current_cancellation() is None


def test_retries_fallbacks_and_except_exception_do_not_swallow_it() -> None:
    token = CancellationToken()
    calls = []

    def fails(x: str) -> str:
        calls.append(x)
        token.cancel()
        raise_if_cancelled()
        return x

    chain = RunnableLambda(fails).with_retry(stop_after_attempt=3).with_fallbacks(
        [RunnableLambda(lambda x: "fallback")]
    )
    with cancellation_scope(token), pytest.raises(GenerationCancelled):
        try:
            chain.invoke("x")
        except Exception:  # a tool failing into an observation, say
            pytest.fail("GenerationCancelled was caught as an Exception")
    assert calls == ["x"]


def test_a_child_token_is_cancelled_with_its_parent() -> None:
    parent = CancellationToken()
    child = CancellationToken(parent=parent)
    assert not child.cancelled
    parent.cancel()
    assert child.cancelled and not CancellationToken().cancelled


def test_an_async_consumer_that_leaves_cancels_the_producer_mid_step() -> None:
    """A producer inside one long step (a model call in ``invoke``) yields nothing; leaving
    must still stop it, at its next checkpoint, and only then return."""
    checkpoints = threading.Event()
    stopped: list[str] = []

    def producer() -> Iterator[int]:
        yield 1
        try:
            while True:  # one long step: a checkpoint per "token"
                checkpoints.set()
                raise_if_cancelled()
                time.sleep(0.001)
        except GenerationCancelled:
            stopped.append("cancelled")
            raise

    async def consume() -> None:
        async for _ in iterate_in_thread(producer):
            await asyncio.to_thread(checkpoints.wait)
            break

    asyncio.run(consume())
    assert stopped == ["cancelled"]


def test_a_cancelled_token_raises_to_a_consumer_that_still_listens() -> None:
    token = CancellationToken()

    def producer() -> Iterator[int]:
        token.cancel()
        raise_if_cancelled()
        yield 1

    async def consume() -> list[int]:
        return [item async for item in iterate_in_thread(producer, token)]

    with pytest.raises(GenerationCancelled):
        asyncio.run(consume())


def test_an_error_from_the_producer_does_not_keep_its_frames_alive() -> None:
    """A stream suspended in the producer's frames (a model's, holding the model) is closed as
    soon as the consumer has handled the error, not whenever the garbage collector runs."""
    closed: list[bool] = []

    def held() -> Iterator[int]:
        try:
            yield 1
        finally:
            closed.append(True)

    def producer() -> Iterator[int]:
        stream = held()
        next(stream)
        raise GenerationCancelled()
        yield 0  # a generator

    async def consume() -> None:
        with contextlib.suppress(GenerationCancelled):
            async for _ in iterate_in_thread(producer):
                pass

    gc.disable()
    try:
        asyncio.run(consume())
        assert closed == [True]
    finally:
        gc.enable()


def outcomes(metrics: Metrics, model: str = "m") -> dict[str, float]:
    return {
        name: metrics.generations.labels(model, name)._value.get()
        for name in ("completed", "cancelled", "error")
    }


def test_work_stopped_by_the_engine_is_cancelled_with_the_engine_token_count() -> None:
    metrics = Metrics.create()
    tally = Tally(metrics, "m", count_tokens=lambda text: len(text.split()))

    def pieces() -> Iterator[str]:
        with tally.generation():
            tally.text.append("one two")
            yield "one two"
            raise GenerationCancelled(Usage(prompt_tokens=5, completion_tokens=7))

    with pytest.raises(GenerationCancelled):
        list(pieces())
    assert outcomes(metrics) == {"completed": 0, "cancelled": 1, "error": 0}
    assert metrics.completion_tokens.labels("m")._value.get() == 7
    assert metrics.prompt_tokens.labels("m")._value.get() == 5


def test_a_pipeline_counts_finished_calls_and_the_one_it_stopped() -> None:
    from langchain_core.outputs import Generation, LLMResult

    metrics = Metrics.create()
    tally = Tally(metrics, "m")
    usage = UsageTally()
    info: dict[str, Any] = {"usage": {"prompt_tokens": 10, "completion_tokens": 4}}
    usage.on_llm_end(LLMResult(generations=[[Generation(text="t", generation_info=info)]]))
    with pytest.raises(GenerationCancelled), tally.generation(usage):
        error = GenerationCancelled(Usage(prompt_tokens=20, completion_tokens=2))
        usage.on_llm_error(error)
        raise error
    assert outcomes(metrics) == {"completed": 0, "cancelled": 1, "error": 0}
    assert metrics.completion_tokens.labels("m")._value.get() == 4 + 2
    assert metrics.prompt_tokens.labels("m")._value.get() == 30


def test_a_chat_left_after_its_work_is_done_is_completed() -> None:
    """The finish piece comes after the model's work: a client that leaves then stopped
    nothing, so the generation is completed, not cancelled."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, HumanMessage

    from orchestrator.server.generation import chat_pieces

    metrics = Metrics.create()
    llm = GenericFakeChatModel(messages=iter([AIMessage("hello there")]))
    stream = chat_pieces(llm, [HumanMessage("hi")], {}, Tally(metrics, "m"))
    for piece in stream:
        if piece.finish_reason:
            break
    stream.close()
    assert outcomes(metrics) == {"completed": 1, "cancelled": 0, "error": 0}
