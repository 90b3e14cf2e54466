"""Sync front-ends of coroutine functions that work wherever they are called from."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def blocking(afunc: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """``afunc`` for synchronous callers, with its signature.

    Outside an event loop it runs in a new one. Inside a running loop (a notebook cell, an
    async app), where ``asyncio.run`` would fail, it runs in a new loop on a worker thread and
    blocks the caller until done; async code should rather await ``afunc`` itself.
    """

    @functools.wraps(afunc)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        job = afunc(*args, **kwargs)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(job)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=run.__name__) as pool:
            return pool.submit(asyncio.run, job).result()

    run.__name__ = run.__qualname__ = afunc.__name__.removeprefix("a")
    run.__doc__ = f"``{afunc.__name__}``, blocking (see :func:`orchestrator.aio.blocking`).\n\n"
    run.__doc__ += afunc.__doc__ or ""
    return run
