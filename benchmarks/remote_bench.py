"""A chain on a served model vs the same chain in process: what the HTTP hop costs.

Not a test: prints figures for docs/benchmarks.md. One GGUF, two ways:

- ``served``: ``prompt | remote_chat_model(base_url, ...)`` against llama.cpp's Python server
  (``python -m llama_cpp.server``), started here on the same file, ``n_ctx`` and thread count;
- ``in process``: ``prompt | ChatLlamaCpp(...)`` on that file.

Both decode greedily (temperature 0, seed 0) with the same prompt and ``max_tokens``; each round
runs both, the order alternating, so machine load hits both alike. Tokens are the generated
tokens each side reports (``usage_metadata["output_tokens"]``; the server's ``usage``), time is
the wall time of ``chain.invoke``. Reported: median tokens/s per side, the median of the
per-round ratios (served / in process), and the load average at start and end.

Run: ``python benchmarks/remote_bench.py --rounds 7`` (``--model`` for another GGUF;
``--base-url`` to measure an already running server instead of starting one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import llama_cpp

from orchestrator import ChatLlamaCpp
from orchestrator.prompts.templates import PromptTemplate
from orchestrator.remote import RemoteModelError, remote_chat_model, served_models
from orchestrator.settings import default_threads, embedded_model_path

PROMPT = PromptTemplate.from_template(
    "Write a long, detailed story about {topic}. Describe every place and every person."
)
TOPIC = "a lighthouse keeper who finds a message in a bottle"


def _timed(chain: Any) -> tuple[int, float]:
    start = time.perf_counter()
    reply = chain.invoke({"topic": TOPIC})
    seconds = time.perf_counter() - start
    return int((reply.usage_metadata or {})["output_tokens"]), seconds


def start_server(model: Path, threads: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m llama_cpp.server`` on ``model`` (n_ctx 2048, ``threads`` for decoding and
    prompt batches, as in process), once it answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # through cpu_repack: llama.cpp's AMX weight repack crashes (orchestrator/llama/cpu_repack.py)
    command = [sys.executable, "-m", "orchestrator.llama.cpu_repack", "llama_cpp.server",
               "--model", str(model),
               "--model_alias", model.stem, "--host", "127.0.0.1", "--port", str(port),
               "--n_ctx", "2048", "--n_threads", str(threads), "--n_threads_batch",
               str(threads)]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            served_models(url, None, timeout=5)
            return process, url
        except RemoteModelError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"llama_cpp.server did not start; see {log}")


def run(model: Path, rounds: int, max_tokens: int, base_url: str | None) -> dict[str, Any]:
    threads = default_threads()
    server = None
    if base_url is None:  # same file, context and threads as the in-process model
        log = Path("/tmp") / f"remote-bench-{os.getpid()}.log"
        server, base_url = start_server(model, threads, log)
    try:
        served = remote_chat_model(base_url, temperature=0.0, seed=0, max_tokens=max_tokens)
        local = ChatLlamaCpp(
            model_path=str(model), n_ctx=2048, n_threads=threads, temperature=0.0, seed=0,
            max_tokens=max_tokens,
        )  # fmt: skip
        chains = {"served": PROMPT | served, "in process": PROMPT | local}
        for chain in chains.values():  # warm-up: load, first prompt
            _timed(chain)
        rates: dict[str, list[float]] = {name: [] for name in chains}
        tokens: dict[str, list[int]] = {name: [] for name in chains}
        load_start = os.getloadavg()[0]
        for r in range(rounds):
            order = list(chains) if r % 2 == 0 else list(reversed(chains))
            for name in order:
                n, seconds = _timed(chains[name])
                rates[name].append(n / seconds)
                tokens[name].append(n)
        ratios = [s / p for s, p in zip(rates["served"], rates["in process"], strict=True)]
        return {
            "model": str(model),
            "served_at": base_url,
            "rounds": rounds,
            "max_tokens": max_tokens,
            "threads": threads,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, python "
            f"{platform.python_version()}, llama-cpp-python {llama_cpp.__version__}",
            "load_average_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
            "generated_tokens": tokens,
            "median_tokens_per_s": {k: round(statistics.median(v), 1) for k, v in rates.items()},
            "ratio_served_over_in_process": round(statistics.median(ratios), 3),
            "ratios": [round(x, 3) for x in ratios],
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: embedded)")
    parser.add_argument("--base-url", default=None, help="a running server (default: start one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    result = run(args.model or embedded_model_path(), args.rounds, args.max_tokens, args.base_url)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
