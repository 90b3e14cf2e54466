"""Runtime benchmarks (Foundation issue). Not a test: prints figures for docs/benchmarks.md.

1. ``throughput``: tokens/s of ``ChatLlamaCpp.stream`` vs raw ``llama_cpp.Llama.create_completion``
   (stream=True) on the same loaded model and the same prompt tokens, interleaved, median ratio.
2. ``ttft``: time to first token on turn 10 of a conversation, prefix reuse on vs off.
3. ``threads``: generation tokens/s with n_threads=1 vs 2 (the default is chosen from this).

Run: ``python benchmarks/runtime_bench.py all --rounds 7``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from rich.console import Console
from rich.progress import track

from orchestrator import ChatLlamaCpp
from orchestrator.llama.chat import render_messages
from orchestrator.llama.structured import to_role_dicts

console = Console()
PROMPT = "Write a long, detailed story about a lighthouse keeper and a storm."


def _ours(llm: ChatLlamaCpp, max_tokens: int) -> tuple[float, int, str]:
    llm.engine.reset()
    start = time.perf_counter()
    text, usage = "", None
    for chunk in llm.stream(PROMPT, max_tokens=max_tokens):
        text += str(chunk.content)
        usage = chunk.usage_metadata or usage
    elapsed = time.perf_counter() - start
    assert usage is not None
    return elapsed, int(usage["output_tokens"]), text


def _raw(llm: ChatLlamaCpp, max_tokens: int) -> tuple[float, int, str]:
    tokens = llm.prompt_tokens(render_messages(llm, [{"role": "user", "content": PROMPT}]))
    with llm.engine.exclusive() as llama:  # the engine's scheduler waits meanwhile
        llama.reset()
        start = time.perf_counter()
        text, n = "", 0
        for chunk in llama.create_completion(
            tokens,
            max_tokens=max_tokens,
            temperature=0.0,
            top_k=40,
            top_p=0.95,
            min_p=0.05,
            repeat_penalty=1.1,
            stream=True,
        ):
            text += chunk["choices"][0]["text"]
            n += 1
        return time.perf_counter() - start, n, text


def throughput(rounds: int, max_tokens: int) -> dict[str, Any]:
    llm = ChatLlamaCpp(temperature=0.0, seed=0, max_tokens=max_tokens)
    llm.warm_up()
    _ours(llm, 8)
    ratios, ours_tps, raw_tps = [], [], []
    for _ in track(range(rounds), description="throughput (interleaved)"):
        t_raw, n_raw, _ = _raw(llm, max_tokens)
        t_ours, n_ours, _ = _ours(llm, max_tokens)
        raw_tps.append(n_raw / t_raw)
        ours_tps.append(n_ours / t_ours)
        ratios.append(ours_tps[-1] / raw_tps[-1])
    return {
        "max_tokens": max_tokens,
        "ours_tokens_per_s_median": round(statistics.median(ours_tps), 1),
        "raw_tokens_per_s_median": round(statistics.median(raw_tps), 1),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
    }


def _conversation(llm: ChatLlamaCpp, turns: int) -> list[BaseMessage]:
    history: list[BaseMessage] = []
    for i in range(turns - 1):
        history.append(HumanMessage(f"Tell me one fact about the number {i + 1}."))
        history.append(AIMessage(str(llm.invoke(history, max_tokens=40).content)))
    history.append(HumanMessage("Now summarise everything you told me."))
    return history


def _first_token_seconds(llm: ChatLlamaCpp, history: list[BaseMessage]) -> float:
    start = time.perf_counter()
    stream = llm.stream(history, max_tokens=4)
    next(iter(stream))
    elapsed = time.perf_counter() - start
    for _ in stream:
        pass
    return elapsed


def ttft(rounds: int, turns: int = 10) -> dict[str, Any]:
    warm = ChatLlamaCpp(temperature=0.0, seed=0, prefix_reuse=True)
    cold = ChatLlamaCpp(temperature=0.0, seed=0, prefix_reuse=False)
    history = _conversation(warm, turns)
    n_prompt = len(warm.prompt_tokens(render_messages(warm, to_role_dicts(history))))
    reuse, no_reuse = [], []
    for _ in track(range(rounds), description=f"time to first token, turn {turns}"):
        # as in a live chat, the KV cache holds everything up to the previous answer
        warm.invoke(history[:-1], max_tokens=1)
        reuse.append(_first_token_seconds(warm, history))
        no_reuse.append(_first_token_seconds(cold, history))
    r, n = statistics.median(reuse), statistics.median(no_reuse)
    return {
        "turn": turns,
        "prompt_tokens": n_prompt,
        "ttft_ms_with_reuse": round(r * 1000, 1),
        "ttft_ms_without_reuse": round(n * 1000, 1),
        "speedup": round(n / r, 2),
    }


def threads(rounds: int, max_tokens: int) -> dict[str, Any]:
    models = {n: ChatLlamaCpp(temperature=0.0, seed=0, n_threads=n, n_batch=256) for n in (1, 2)}
    for llm in models.values():
        llm.warm_up()
    tps: dict[int, list[float]] = {1: [], 2: []}
    for _ in track(range(rounds), description="n_threads 1 vs 2"):
        for n, llm in models.items():
            t, k, _ = _ours(llm, max_tokens)
            tps[n].append(k / t)
    one, two = statistics.median(tps[1]), statistics.median(tps[2])
    return {
        "tokens_per_s_n_threads_1": round(one, 1),
        "tokens_per_s_n_threads_2": round(two, 1),
        "ratio_2_over_1": round(two / one, 3),
        "cpu_count": os.cpu_count(),
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["throughput", "ttft", "threads", "all"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "loadavg_at_start": round(os.getloadavg()[0], 2),
    }
    if args.which in ("throughput", "all"):
        results["throughput"] = throughput(args.rounds, args.max_tokens)
    if args.which in ("ttft", "all"):
        results["ttft"] = ttft(args.rounds)
    if args.which in ("threads", "all"):
        results["threads"] = threads(args.rounds, args.max_tokens)
    console.print_json(json.dumps(results))


if __name__ == "__main__":
    main()
