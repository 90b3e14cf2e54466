"""``orchestrator serve`` benchmarks (issue 11). Not a test: prints figures for docs/benchmarks.md.

1. ``throughput``: generation tokens/s through the server with the official openai client
   (streamed, and whole) vs ``ChatLlamaCpp.stream`` in this process: same GGUF, same prompt,
   same sampling, rounds interleaved; the ratio is server / in process (goal >= 0.9).
2. ``concurrency``: N clients stream at once (raw SSE over httpx, so ``data: [DONE]`` is
   checked): how many complete, p50 / p95 time to first token and total time.

Run: ``python benchmarks/serve_bench.py --rounds 7 --max-tokens 128 --clients 8``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from orchestrator import ChatLlamaCpp

console = Console()
PROMPT = "Write a long, detailed story about a lighthouse keeper and a storm."
SAMPLING = {"temperature": 0.0, "seed": 0}


@contextmanager
def server_process(max_tokens: int) -> Iterator[str]:
    """``orchestrator serve`` on a free loopback port; yields its /v1 URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    home = tempfile.mkdtemp(prefix="serve-bench-")
    log = Path(home) / "serve.log"
    command = [
        sys.executable,
        "-m",
        "orchestrator.cli.app",
        "serve",
        "--port",
        str(port),
        "--max-tokens-limit",
        str(max(max_tokens, 256)),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ORCHESTRATOR_HOME": home},
        )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"server exited:\n{log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _served_stream(client: Any, model: str, max_tokens: int) -> tuple[float, int]:
    start = time.perf_counter()
    usage = None
    for chunk in client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=max_tokens,
        stream=True,
        stream_options={"include_usage": True},
        **SAMPLING,
    ):
        usage = chunk.usage or usage
    elapsed = time.perf_counter() - start
    assert usage is not None
    return elapsed, int(usage.completion_tokens)


def _served_whole(client: Any, model: str, max_tokens: int) -> tuple[float, int]:
    start = time.perf_counter()
    reply = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=max_tokens,
        **SAMPLING,
    )
    return time.perf_counter() - start, int(reply.usage.completion_tokens)


def _in_process(llm: ChatLlamaCpp, max_tokens: int) -> tuple[float, int]:
    start = time.perf_counter()
    usage = None
    for chunk in llm.stream(PROMPT, max_tokens=max_tokens):
        usage = chunk.usage_metadata or usage
    elapsed = time.perf_counter() - start
    assert usage is not None
    return elapsed, int(usage["output_tokens"])


def throughput(url: str, model: str, rounds: int, max_tokens: int) -> dict[str, Any]:
    """Median tokens/s of each path over interleaved rounds, and the median per-round ratio."""
    from openai import OpenAI

    client = OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=600)
    llm = ChatLlamaCpp(max_tokens=max_tokens, **SAMPLING)  # type: ignore[arg-type]
    _in_process(llm, 8), _served_stream(client, model, 8)  # load and warm both
    rates: dict[str, list[float]] = {"stream": [], "whole": [], "in_process": []}
    for _ in range(rounds):
        for name, run in (
            ("stream", lambda: _served_stream(client, model, max_tokens)),
            ("in_process", lambda: _in_process(llm, max_tokens)),
            ("whole", lambda: _served_whole(client, model, max_tokens)),
        ):
            elapsed, tokens = run()
            rates[name].append(tokens / elapsed)
    ratios = [s / p for s, p in zip(rates["stream"], rates["in_process"], strict=True)]
    whole = [w / p for w, p in zip(rates["whole"], rates["in_process"], strict=True)]
    return {
        "tokens_per_s": {k: round(statistics.median(v), 2) for k, v in rates.items()},
        "ratio_stream_vs_in_process": round(statistics.median(ratios), 3),
        "ratio_whole_vs_in_process": round(statistics.median(whole), 3),
        "ratio_min_max": [round(min(ratios), 3), round(max(ratios), 3)],
    }


async def _one_client(url: str, model: str, max_tokens: int, index: int) -> dict[str, Any]:
    body = {
        "model": model,
        "max_tokens": max_tokens,
        "stream": True,
        "messages": [{"role": "user", "content": f"{PROMPT} (reader {index})"}],
        **SAMPLING,
    }
    start = time.perf_counter()
    first: float | None = None
    events: list[str] = []
    async with (
        httpx.AsyncClient(timeout=900) as http,
        http.stream("POST", f"{url}/chat/completions", json=body) as response,
    ):
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            events.append(line[6:])
            if first is None and line != "data: [DONE]":
                delta = json.loads(line[6:])["choices"][0]["delta"]
                if delta.get("content"):
                    first = time.perf_counter() - start
    return {"ttft": first, "total": time.perf_counter() - start, "done": events[-1] == "[DONE]"}


def concurrency(url: str, model: str, clients: int, max_tokens: int) -> dict[str, Any]:
    async def everyone() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(*(_one_client(url, model, max_tokens, i) for i in range(clients)))
        )

    start = time.perf_counter()
    results = asyncio.run(everyone())
    wall = time.perf_counter() - start
    ttfts = sorted(r["ttft"] for r in results if r["ttft"] is not None)
    totals = sorted(r["total"] for r in results)

    def pct(values: list[float], q: float) -> float:  # nearest rank
        return round(values[max(0, math.ceil(q * len(values)) - 1)], 2)

    return {
        "clients": clients,
        "completed_with_done": sum(r["done"] for r in results),
        "ttft_p50_s": pct(ttfts, 0.5),
        "ttft_p95_s": pct(ttfts, 0.95),
        "total_p50_s": pct(totals, 0.5),
        "total_p95_s": pct(totals, 0.95),
        "wall_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--client-tokens", type=int, default=32)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with server_process(args.max_tokens) as url:
        model = httpx.get(f"{url}/models", timeout=30).json()["data"][0]["id"]
        report = {
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "threads": os.environ.get("ORCHESTRATOR_THREADS", "default"),
                "load_before": [round(x, 2) for x in load_before],
            },
            "model": model,
            "throughput": throughput(url, model, args.rounds, args.max_tokens),
            "concurrency": concurrency(url, model, args.clients, args.client_tokens),
        }
    report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    console.print_json(json.dumps(report))


if __name__ == "__main__":
    main()
