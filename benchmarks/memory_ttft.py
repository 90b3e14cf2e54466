"""Time to first token across a multi-turn chat, per memory kind, with and without prefix reuse.

Runs the same scripted conversation (``--turns`` user messages) through
:class:`memory.Conversation` with each memory (buffer, window, summary, tokens), once with
llama.cpp prefix reuse (the KV cache of the unchanged prompt prefix is kept between turns) and
once without (``ChatLlamaCpp(prefix_reuse=False)``: every turn re-prefills the whole prompt).

    ORCHESTRATOR_THREADS=1 python -m benchmarks.memory_ttft --turns 20 --json out.json

Prints a Markdown table: mean and last-turn time to first token, prompt tokens at the last
turn and how many of them came from the cache, and the mean whole-turn time (answer plus, for
the summary memory, the summarizing call).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from rich.progress import Progress

QUESTIONS = [
    "Hi! My name is Maarten and I am 33 years old.",
    "What is 3 + 3?",
    "What is the capital of France?",
    "Name a fruit that is yellow.",
    "How many legs does a spider have?",
    "What colour is the sky on a clear day?",
    "Give me a synonym for happy.",
    "What is the opposite of cold?",
    "Which planet is closest to the sun?",
    "How many days are in a week?",
    "What do bees make?",
    "What is frozen water called?",
    "Name an animal that lives in the sea.",
    "What is 10 minus 4?",
    "What language is spoken in Spain?",
    "What do you use to write on paper?",
    "Which season comes after winter?",
    "What is the largest ocean?",
    "What is my name?",
    "How old am I?",
]


def run_conversation(
    kind: str,
    reuse: bool,
    turns: int,
    max_tokens: int,
    n_ctx: int | None = None,
    low_water: float = 0.75,
) -> dict[str, Any]:
    """One conversation; per-turn time to first token, prompt and cached tokens."""
    from orchestrator import ChatLlamaCpp
    from orchestrator.memory import Conversation, create_memory

    llm = ChatLlamaCpp(
        temperature=0.0, seed=0, max_tokens=max_tokens, prefix_reuse=reuse, n_ctx=n_ctx
    )
    options: dict[str, Any] = {"k": 3} if kind == "window" else {}
    if kind == "tokens":
        options["max_token_limit"] = 256
    memory = create_memory(kind, llm=llm, return_messages=True, **options)
    system = "You are a helpful assistant. Answer briefly."
    conv = Conversation(llm, memory, system=system, low_water=low_water)
    ttft, total, prompt, cached = [], [], [], []
    for i in range(turns):
        start = time.perf_counter()
        first = None
        for _ in conv.stream(QUESTIONS[i % len(QUESTIONS)]):
            if first is None:
                first = time.perf_counter() - start
        total.append(time.perf_counter() - start)
        ttft.append(first if first is not None else total[-1])
        prompt.append(int(conv.last_usage.get("input_tokens", 0)))
        details = conv.last_usage.get("input_token_details") or {}
        cached.append(int(details.get("cache_read", 0)))
    label = kind if n_ctx is None else f"{kind}, n_ctx {n_ctx}, cut to {low_water:.0%}"
    return {
        "kind": label,
        "prefix_reuse": reuse,
        "ttft_s": ttft,
        "turn_s": total,
        "prompt_tokens": prompt,
        "cached_tokens": cached,
    }


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "memory": run["kind"],
        "prefix_reuse": run["prefix_reuse"],
        "ttft_mean_ms": round(1000 * statistics.mean(run["ttft_s"]), 1),
        "ttft_last_ms": round(1000 * run["ttft_s"][-1], 1),
        "prompt_tokens_last": run["prompt_tokens"][-1],
        "cached_tokens_last": run["cached_tokens"][-1],
        "turn_mean_ms": round(1000 * statistics.mean(run["turn_s"]), 1),
        "reprefill_turns": sum(
            1
            for p, c in zip(run["prompt_tokens"][1:], run["cached_tokens"][1:], strict=True)
            if c < p / 2
        ),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| memory | prefix reuse | TTFT mean (ms) | TTFT turn N (ms) | prompt tokens turn N "
        "| cached turn N | whole turn mean (ms) | turns re-reading history |"
    )
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {r['memory']} | {'yes' if r['prefix_reuse'] else 'no'} | {r['ttft_mean_ms']} "
            f"| {r['ttft_last_ms']} | {r['prompt_tokens_last']} | {r['cached_tokens_last']} "
            f"| {r['turn_mean_ms']} | {r['reprefill_turns']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--kinds", default="buffer,window,summary,tokens")
    parser.add_argument(
        "--full-context",
        type=int,
        default=384,
        help="also run the buffer memory in this small context (0: skip), cutting the history "
        "to 75%% of the room (kept while it fits) vs. just enough each turn",
    )
    parser.add_argument("--json", type=Path, help="also write the raw per-turn figures here")
    args = parser.parse_args()
    os.environ.setdefault("ORCHESTRATOR_THREADS", "1")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    plan: list[tuple[str, bool, int | None, float]] = [
        (kind, reuse, None, 0.75) for kind in kinds for reuse in (True, False)
    ]
    if args.full_context:
        plan += [("buffer", True, args.full_context, low) for low in (0.75, 1.0)]
    runs = []
    with Progress() as progress:
        task = progress.add_task("conversations", total=len(plan))
        for kind, reuse, n_ctx, low in plan:
            progress.update(task, description=f"{kind}, prefix reuse {reuse}, n_ctx {n_ctx}")
            runs.append(run_conversation(kind, reuse, args.turns, args.max_tokens, n_ctx, low))
            progress.advance(task)
    rows = [summarize(r) for r in runs]
    print(
        f"\n{args.turns} turns, max_tokens={args.max_tokens}, "
        f"n_threads={os.environ['ORCHESTRATOR_THREADS']}, load average {os.getloadavg()}"
    )
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
