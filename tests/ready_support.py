"""Starting things in tests: a free loopback port, and the one wait-until-ready loop.

A deadline is a guard against a hang, never a measurement: when it is hit the wait raises
``WaitTimeout`` naming what it waited for (it never returns as if the condition held), and a
watched process that exits first raises ``ProcessExited`` with its exit status and output.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold before the deadline."""


class ProcessExited(AssertionError):
    """The process that was to become ready exited first."""


def free_port() -> int:
    """A loopback port free right now (a server may still lose it: retry on "in use")."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _output(process: subprocess.Popen[bytes], log: Path | None) -> str:
    if log is not None and log.exists():
        return log.read_text(errors="replace")
    if process.stderr is not None or process.stdout is not None:
        out, err = process.communicate()
        return b"".join(part for part in (out, err) if part).decode(errors="replace")
    return "(output not captured)"


def wait_until(
    ready: Callable[[], T],
    what: str,
    *,
    limit: float,
    interval: float = 0.2,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``ready()`` until it returns a truthy value, and return that value.

    ``what`` completes "waited N s for ...". Exceptions in ``ignore`` (a connection refused
    while a server starts) count as "not yet". With ``process``, its exit ends the wait early;
    ``log`` (or the process's captured output) goes into either error.
    """
    deadline = time.monotonic() + limit
    while True:
        if process is not None and process.poll() is not None:
            raise ProcessExited(
                f"the process exited ({process.returncode}) before {what}:\n"
                f"{_output(process, log)}"
            )
        try:
            value = ready()
        except ignore:
            value = None  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() >= deadline:
            tail = f"\n{log.read_text(errors='replace')[-4000:]}" if log and log.exists() else ""
            raise WaitTimeout(f"waited {limit:g} s for {what}{tail}")
        time.sleep(interval)
