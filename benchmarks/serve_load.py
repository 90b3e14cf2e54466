"""Many clients at once (issue 20): ``orchestrator serve --parallel N`` vs llama.cpp's own
``llama-server --parallel N`` vs the one-slot server of before (an older checkout).

N clients each stream one chat completion (their own prompt, ``max_tokens`` tokens, greedy)
at the same moment; per load: aggregate completion tokens/s (all tokens / wall time until the
last client is done) and time to first token p50 / p95. Servers are started once per N and
measured interleaved, round after round, so load changes hit all of them alike. Not a test.

Run (what docs/benchmarks.md quotes)::

    python benchmarks/serve_load.py --clients 1,4,8,16 --rounds 3 --max-tokens 64 \\
        --llama-server /path/to/llama-server --old-tree /tmp/old-orchestrator

``--old-tree``: a folder laid out as the installed package (``orchestrator/`` with
``prompts``, ``memory``, ``chains``, ``agents``, ``evals`` inside, as ``.ci/mypy`` builds it)
of the commit to compare with; it is run with ``PYTHONPATH`` set to it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from orchestrator.llama.cpu_repack import repack_wanted
from orchestrator.settings import default_threads, embedded_model_path

TOPICS = ["a lighthouse", "the sea", "a cat", "a mountain", "a city", "a forest", "a river",
          "a robot", "a garden", "a train", "a castle", "a desert", "a ship", "a library",
          "a storm", "a bakery"]  # fmt: skip


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _process(command: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    log = Path(tempfile.mkdtemp(prefix="serve-load-")) / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # cwd: not a checkout, so PYTHONPATH decides the package
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def servers(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """The contexts that start each compared server for ``n`` slots."""
    model, env = str(embedded_model_path()), dict(os.environ)
    threads = str(args.threads)
    found: dict[str, Any] = {}
    for parallel in args.ours_parallel or [n]:
        port = _port()
        ours = [sys.executable, "-m", "orchestrator.cli.app", "serve", "--port", str(port)]
        command = [*ours, "--parallel", str(parallel)]
        found[f"orchestrator --parallel {parallel}"] = (command, env, port)
    if args.llama_server:
        port = _port()
        command = [args.llama_server, "-m", model, "--port", str(port), "--parallel", str(n),
                   "-c", str(4096 * n), "-t", threads, "-tb", threads, "--no-webui"]  # fmt: skip
        if not repack_wanted():  # the same weights layout as ours (orchestrator.llama.cpu_repack)
            command.append("--no-repack")
        found[f"llama-server --parallel {n}"] = (command, env, port)
    if args.old_tree:
        port = _port()
        old = [sys.executable, "-m", "orchestrator.cli.app", "serve", "--port", str(port)]
        found["one-slot (before)"] = (old, {**env, "PYTHONPATH": args.old_tree}, port)
    return found


def _client(url: str, body: dict[str, Any], started: float, out: list[Any]) -> None:
    first, tokens = None, 0
    with (
        httpx.Client(timeout=600) as client,
        client.stream("POST", f"{url}/v1/chat/completions", json=body) as response,
    ):
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"]
            if delta and delta[0].get("delta", {}).get("content"):
                tokens += 1
                first = first if first is not None else time.perf_counter() - started
    out.append((first, tokens))


def load(url: str, n: int, max_tokens: int) -> dict[str, float]:
    """``n`` clients at once: aggregate tokens/s and TTFT p50/p95 (seconds)."""
    results: list[Any] = []
    model = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
    bodies = [
        {
            "model": model,
            "messages": [{"role": "user", "content": f"Write a long story about {topic}."}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
        }
        for topic in (TOPICS[i % len(TOPICS)] for i in range(n))
    ]
    started = time.perf_counter()
    threads = [threading.Thread(target=_client, args=(url, b, started, results)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ttfts = sorted(r[0] for r in results if r[0] is not None)
    return {
        "tokens_per_s": sum(r[1] for r in results) / wall,
        "ttft_p50": statistics.median(ttfts),
        "ttft_p95": ttfts[min(len(ttfts) - 1, round(0.95 * (len(ttfts) - 1)))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="1,4,8,16")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="llama-server's -t/-tb (default: the thread count ours picks on this load; "
        "llama.cpp's spinning threads on cores others use are many times slower)",
    )
    parser.add_argument("--llama-server", help="llama.cpp's llama-server binary")
    parser.add_argument("--old-tree", help="package tree of the commit to compare with")
    parser.add_argument(
        "--ours-parallel",
        type=lambda text: [int(p) for p in text.split(",")],
        help="serve --parallel values to compare at every load (default: the clients' N)",
    )
    args = parser.parse_args()
    print(f"| clients | server | tokens/s (median of {args.rounds}) | TTFT p50 s | TTFT p95 s |")
    print("| --- | --- | --- | --- | --- |")
    for n in (int(c) for c in args.clients.split(",")):
        found = servers(n, args)
        figures: dict[str, list[dict[str, float]]] = {name: [] for name in found}
        with ExitStack() as stack:
            urls = {name: stack.enter_context(_process(*spec)) for name, spec in found.items()}
            for url in urls.values():
                load(url, 1, 4)  # warm: the model is loaded and its first call made
            for _ in range(args.rounds):
                for name, url in urls.items():
                    figures[name].append(load(url, n, args.max_tokens))
        for name, runs in figures.items():
            row = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(f"| {n} | {name} | {row['tokens_per_s']:.1f} | {row['ttft_p50']:.2f} | "
                  f"{row['ttft_p95']:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
