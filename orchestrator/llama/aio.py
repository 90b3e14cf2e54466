"""Async streaming without deadlocks: one whole generation runs in one worker thread.

LangChain's default ``astream`` fetches each chunk with a separate ``run_in_executor(next)``.
Our stream holds the engine lock from its first chunk to its last, so with more concurrent
streams than executor threads, the stream holding the lock could wait forever for a thread
to produce its next chunk. Here the producer thread runs the generator to the end and hands
chunks to the event loop through a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()


async def iterate_in_thread(make_iter: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Yield the items of ``make_iter()``, produced in a worker thread; stopping early (or a
    cancelled consumer) closes the iterator in that thread at its next item."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue()
    stop = threading.Event()

    def put(item: Any, error: BaseException | None = None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed under us: nobody listens
            loop.call_soon_threadsafe(queue.put_nowait, (item, error))

    def produce() -> None:
        try:
            iterator = make_iter()
            try:
                for item in iterator:
                    if stop.is_set():
                        break
                    put(item)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_DONE, exc)
            return
        put(_DONE)

    done = loop.run_in_executor(None, produce)
    try:
        while True:
            item, error = await queue.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        await asyncio.shield(done)


async def relay_chunks(make_iter: Callable[[], Iterator[T]], run_manager: Any) -> AsyncIterator[T]:
    """:func:`iterate_in_thread` for a model's ``_astream``: each chunk with text is also
    reported to the async callbacks, as the sync path reports it to the sync ones."""
    async for chunk in iterate_in_thread(make_iter):
        text = getattr(chunk, "text", "")
        if run_manager and text:
            await run_manager.on_llm_new_token(text, chunk=chunk)
        yield chunk
