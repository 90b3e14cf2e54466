"""A real ``orchestrator serve`` subprocess on a free loopback port, for the server tests."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from ready_support import free_port, wait_until

#: How long a server may take to load the model and answer /health (2 shared cores).
START_TIMEOUT = 180.0


@dataclass
class Server:
    """A running server: its base URL, process and log file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    api_key: str | None = None

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def client(self, **kwargs: object) -> object:
        from openai import OpenAI

        return OpenAI(
            base_url=self.v1, api_key=self.api_key or "unused", timeout=300.0, max_retries=0,
            **kwargs,  # type: ignore[arg-type]
        )

    def async_client(self) -> object:
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            base_url=self.v1, api_key=self.api_key or "unused", timeout=300.0, max_retries=0
        )

    def metric(self, name: str, **labels: str) -> float:
        """One sample of /metrics (0 when absent)."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        text = httpx.get(f"{self.url}/metrics", headers=headers, timeout=30).text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            base, _, rest = series.partition("{")
            got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
            if base == name and got == wanted:
                return float(value)
        return 0.0


def serve_command(port: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli.app", "serve", "--port", str(port), *args]


@contextlib.contextmanager
def running_server(
    tmp: Path, *args: str, api_key: str | None = None, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Start ``orchestrator serve ARGS`` and wait for /health; stop it afterwards."""
    environment = {**os.environ, "ORCHESTRATOR_HOME": str(tmp / "home"), **(env or {})}
    extra: Sequence[str] = ("--api-key", api_key) if api_key else ()
    for _attempt in range(3):  # a port taken between choosing and binding: try another
        port = free_port()
        log = tmp / f"serve-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                serve_command(port, *args, *extra), stdout=out, stderr=subprocess.STDOUT,
                env=environment,
            )
        server = Server(f"http://127.0.0.1:{port}", process, log, api_key)
        try:
            health = f"{server.url}/health"
            wait_until(functools.partial(_healthy, health), f"orchestrator serve to answer "
                       f"{health}", limit=START_TIMEOUT, interval=0.3, process=process, log=log)
            break
        except AssertionError:
            _stop(process)
            if "address already in use" not in log.read_text(errors="replace").lower():
                raise
    else:
        raise AssertionError("no free port could be bound")
    try:
        yield server
    finally:
        _stop(process)


def _healthy(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=5).status_code == 200
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def sse_lines(response: httpx.Response) -> list[str]:
    """The ``data:`` payloads of a server-sent event stream, in order."""
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]
