"""The project's one progress display: Rich bars on stderr (stdout stays clean for ``--json``).

Indexing (chunking, embedding), ``search --run-out`` and the evaluators all draw through
:func:`progress_bar`; :func:`progress_task` is its one-bar form.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

#: ``advance(n)``: n more items done.
Advance = Callable[[int], None]
#: ``task(description, total) -> advance``; ``total=None`` when the amount is not known.
TaskFactory = Callable[[str, int | None], Advance]


def _nothing(n: int) -> None:
    """The advance of a disabled display."""


@contextlib.contextmanager
def progress_bar(enabled: bool = True) -> Iterator[TaskFactory]:
    """One display holding any number of bars; yields ``task(description, total) -> advance``.

    When ``enabled`` is false nothing is drawn and every ``advance`` is a no-op, so callers
    need no branches for ``--json`` or library use.
    """
    if not enabled:
        yield lambda description, total: _nothing
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:

        def task(description: str, total: int | None) -> Advance:
            task_id = bar.add_task(description, total=total)
            return lambda n: bar.advance(task_id, n)

        yield task


@contextlib.contextmanager
def progress_task(description: str, total: int | None, enabled: bool = True) -> Iterator[Advance]:
    """A display with a single bar; yields its ``advance(n)``."""
    with progress_bar(enabled) as task:
        yield task(description, total)
