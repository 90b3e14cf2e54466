"""A real ``orchestrator serve`` subprocess on a free loopback port, for the server tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

#: How long a server may take to load the model and answer /health (2 shared cores).
START_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        if _wait_ready(server):
            break
        _stop(process)
        if "address already in use" not in log.read_text(errors="replace").lower():
            raise AssertionError(f"server did not start:\n{log.read_text(errors='replace')}")
    else:
        raise AssertionError("no free port could be bound")
    try:
        yield server
    finally:
        _stop(process)


def _wait_ready(server: Server) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/health", timeout=5).status_code == 200:
                return True
        time.sleep(0.3)
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
