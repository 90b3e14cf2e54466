"""Repeatable greedy decoding with prefix reuse: does it hold, and what does it cost?

Two measurements (issue 10.6):

``repeat``: each prompt is asked greedily (``temperature=0, seed=0``) once with a cold cache,
twice warm, and once more after an unrelated call, through ``ChatLlamaCpp`` (aligned prefix
reuse) and through raw ``Llama.create_completion`` (llama-cpp-python's own reuse, what the
runtime did before). Counts the prompts whose four answers are identical.

``chunks``: prompt-evaluation throughput (cold prefill of one long prompt) for each prefill
chunk size. Prompts are evaluated in chunks aligned to absolute positions and only whole
chunks are reused, so the chunk size is both the prefill batch and the reuse granularity.

    ORCHESTRATOR_THREADS=1 python benchmarks/runtime_repeatable.py repeat
    ORCHESTRATOR_THREADS=1 python benchmarks/runtime_repeatable.py chunks --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from orchestrator import ChatLlamaCpp
from orchestrator.llama import kvcache
from orchestrator.llama.chat import render_messages

PROMPTS = [
    "Répondez avec des emojis 🎉🐈‍⬛: où est 東京?",
    "请用中文写一句关于猫的话。",
    "Write a haiku about the sea.",
    "List three uses of a paperclip.",
    "Explain what a hash map is in two sentences.",
    "What is the boiling point of water in Fahrenheit?",
    "Translate 'good morning' into German, French and Spanish.",
    "Give me a name for a grey cat.",
]
UNRELATED = "Tell me something about volcanoes."
MAX_TOKENS = 48


def _ours(llm: ChatLlamaCpp) -> Callable[[str], str]:
    return lambda q: str(llm.invoke(q, max_tokens=MAX_TOKENS).content)


def _raw(llm: ChatLlamaCpp) -> Callable[[str], str]:
    llama = llm.engine.llama

    def ask(q: str) -> str:
        tokens = llm.prompt_tokens(render_messages(llm, [{"role": "user", "content": q}]))
        out = llama.create_completion(
            tokens, max_tokens=MAX_TOKENS, temperature=0.0, repeat_penalty=1.1, seed=0
        )
        return str(out["choices"][0]["text"])

    return ask


def _four_answers(ask: Callable[[str], str], llama: Any, prompt: str) -> list[str]:
    llama.reset()  # cold
    answers = [ask(prompt), ask(prompt), ask(prompt)]
    ask(UNRELATED)
    return [*answers, ask(prompt)]


def repeat() -> None:
    llm = ChatLlamaCpp(temperature=0.0, seed=0)
    llama = llm.engine.llama
    for name, ask in (("ChatLlamaCpp (aligned reuse)", _ours(llm)), ("raw Llama", _raw(llm))):
        same = 0
        for prompt in PROMPTS:
            answers = _four_answers(ask, llama, prompt)
            same += len(set(answers)) == 1
        print(f"{name}: {same}/{len(PROMPTS)} prompts gave one answer cold, warm x2, after another")


def chunks(rounds: int, sizes: list[int]) -> None:
    llm = ChatLlamaCpp(temperature=0.0, seed=0)
    engine = llm.engine
    fact = "Fact {}: the river is long and wide."
    turns = [{"role": "user", "content": fact.format(i)} for i in range(40)]
    tokens = llm.prompt_tokens(render_messages(llm, turns))[:1024]
    rates: dict[int, list[float]] = {size: [] for size in sizes}
    original = kvcache.PREFILL_CHUNK
    try:
        for _ in range(rounds):  # interleaved, so load changes hit every size alike
            for size in sizes:
                kvcache.PREFILL_CHUNK = size
                with engine.exclusive() as llama:
                    start = time.perf_counter()
                    engine.prefill(llama, tokens, reuse_prefix=False)
                    rates[size].append(len(tokens) / (time.perf_counter() - start))
    finally:
        kvcache.PREFILL_CHUNK = original
    print(f"cold prefill of {len(tokens)} tokens, median of {rounds} rounds")
    print("| prefill chunk (tokens) | prompt tokens/s |\n| --- | --- |")
    for size in sizes:
        print(f"| {size} | {statistics.median(rates[size]):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["repeat", "chunks"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="8,16,32,64,128,512")
    args = parser.parse_args()
    if args.what == "repeat":
        repeat()
    else:
        chunks(args.rounds, [int(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
