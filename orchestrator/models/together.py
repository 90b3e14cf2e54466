"""Independent model calls made together, as many at a time as the model decodes together.

A local model decodes up to ``n_parallel`` sequences in one ``llama_decode`` (the batched
engine), so calls that do not depend on each other finish sooner when they are made at the
same time: a technique's samples, the plans of several questions, an evaluation's samples and
its judge's prompts. :func:`parallel_calls` says how many at a time (the model's
:attr:`~orchestrator.models.Capabilities.parallel`); :func:`map_together` (threads) and
:func:`gather_together` (tasks) make them, results in input order as a loop returns them.

With one call at a time (a model that declares no parallelism: a fake, another LangChain
model) both are the loop itself, in order, so a scripted fake gets its calls in the order it
expects. The threads are LangChain's context-copying ones: a cancellation scope, tracing and
other context variables follow every call.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ContextThreadPoolExecutor

from orchestrator.models.capabilities import capabilities

T = TypeVar("T")
R = TypeVar("R")


def parallel_calls(llm: Any, config: RunnableConfig | None = None) -> int:
    """How many calls to ``llm`` (through any binding) to make at a time: as many as it
    decodes together, at most the ``max_concurrency`` of ``config`` (LangChain's bound on
    concurrent work, so ``{"max_concurrency": 1}`` makes them one after another)."""
    limit = capabilities(llm).parallel
    bound = (config or {}).get("max_concurrency")
    return max(1, min(limit, bound) if bound else limit)


def map_together(
    work: Callable[[T], R],
    items: Iterable[T],
    *,
    limit: int,
    until: Callable[[], bool] | None = None,
) -> list[R]:
    """``work(item)`` for every item, up to ``limit`` at a time; the results in item order.

    Calls start in item order, each once a slot is free. ``until`` is asked before each one
    starts (with ``limit`` 1: after the one before has finished, as in a loop); once it says
    so no other call starts, and the results are those of the calls made: a prefix of
    ``items`` (a call already running finishes). A failed call stops further calls from
    starting too; the first error in item order is raised once the running calls are done.
    """
    pending = list(items)
    if limit <= 1 or len(pending) <= 1:
        done: list[R] = []
        for item in pending:
            if until is not None and until():
                break
            done.append(work(item))
        return done
    slots = threading.BoundedSemaphore(limit)
    failed = threading.Event()
    futures: list[Future[R]] = []

    def finished(future: Future[R]) -> None:
        if future.exception() is not None:
            failed.set()
        slots.release()

    with ContextThreadPoolExecutor(max_workers=limit) as pool:
        for item in pending:
            slots.acquire()
            if failed.is_set() or (until is not None and until()):
                slots.release()
                break
            future = pool.submit(work, item)
            future.add_done_callback(finished)
            futures.append(future)
    return [future.result() for future in futures]


async def gather_together(jobs: Sequence[Callable[[], Awaitable[R]]], *, limit: int) -> list[R]:
    """Every job awaited, up to ``limit`` at a time, each in its own task (so the context
    variables it sets, such as a sample's deadline, stay its own); the results in job order.
    With ``limit`` 1 they run one after another, in order."""
    if limit <= 1 or len(jobs) <= 1:
        return [await asyncio.ensure_future(job()) for job in jobs]
    slots = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[R]]) -> R:
        async with slots:
            return await job()

    return list(await asyncio.gather(*(run(job) for job in jobs)))
