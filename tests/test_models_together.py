"""Independent calls made together: order, bounds, stopping, failures, context variables."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from contextvars import ContextVar

import pytest

from orchestrator.cancellation import CancellationToken, cancellation_scope, current_cancellation
from orchestrator.models import Capabilities
from orchestrator.models.together import gather_together, map_together, parallel_calls
from orchestrator.testing import ScriptedChatModel


class Peak:
    """Counts the calls running at once."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.lock = threading.Lock()

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


class ParallelChatModel(ScriptedChatModel):
    """A scripted fake that declares it decodes ``parallel`` calls together."""

    parallel: int = 3

    def model_capabilities(self) -> Capabilities:
        return dataclasses.replace(super().model_capabilities(), parallel=self.parallel)


def test_parallel_calls_follow_the_model_through_bindings_and_max_concurrency() -> None:
    model = ParallelChatModel(parallel=4)
    assert parallel_calls(model) == 4
    assert parallel_calls(model.bind(max_tokens=3)) == 4
    assert parallel_calls(model, {"max_concurrency": 2}) == 2
    assert parallel_calls(model, {"max_concurrency": 9}) == 4
    assert parallel_calls(ScriptedChatModel()) == 1  # a model that does not say: one at a time


def test_map_together_runs_up_to_the_limit_and_keeps_the_order() -> None:
    peak = Peak()

    def work(i: int) -> int:
        with peak:
            time.sleep(0.02 * (5 - i % 5))  # later items finish first
        return i * i

    assert map_together(work, range(10), limit=3) == [i * i for i in range(10)]
    assert 1 < peak.most <= 3
    peak.most = 0
    assert map_together(work, range(4), limit=1) == [0, 1, 4, 9]
    assert peak.most == 1


@pytest.mark.parametrize("limit", [1, 3])
def test_until_stops_new_calls_and_returns_the_prefix_made(limit: int) -> None:
    started: list[int] = []

    def work(i: int) -> int:
        started.append(i)
        return i

    assert map_together(work, range(10), limit=limit, until=lambda: len(started) >= 5) == list(
        range(len(started))
    )
    assert 5 <= len(started) <= 5 + limit - 1


@pytest.mark.parametrize("limit", [1, 3])
def test_a_failure_stops_new_calls_and_is_raised(limit: int) -> None:
    started: list[int] = []

    def work(i: int) -> int:
        started.append(i)
        if i == 2:
            raise ValueError("item 2")
        time.sleep(0.01)
        return i

    with pytest.raises(ValueError, match="item 2"):
        map_together(work, range(20), limit=limit)
    assert len(started) <= 3 + limit  # the calls already running, then nothing new


def test_calls_made_together_keep_the_callers_cancellation_scope() -> None:
    token = CancellationToken()
    with cancellation_scope(token):
        seen = map_together(lambda _: current_cancellation(), range(4), limit=2)
    assert seen == [token] * 4


def test_gather_together_bounds_orders_and_isolates_context_variables() -> None:
    mark: ContextVar[int] = ContextVar("mark", default=-1)
    running, most = [0], [0]

    def job(i: int):  # type: ignore[no-untyped-def]
        async def run() -> tuple[int, int]:
            mark.set(i)  # each job's own task: never seen by another job
            running[0] += 1
            most[0] = max(most[0], running[0])
            await asyncio.sleep(0.01 * (4 - i))
            running[0] -= 1
            return i, mark.get()

        return run

    for limit in (1, 2):
        running[0] = most[0] = 0
        out = asyncio.run(gather_together([job(i) for i in range(4)], limit=limit))
        assert out == [(i, i) for i in range(4)] and most[0] == limit
        assert mark.get() == -1
