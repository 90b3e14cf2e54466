"""Repeatable greedy decoding with prefix reuse: does it hold, and what does it cost?

Two measurements (issue 10.6):

``repeat``: each prompt is asked greedily (``temperature=0, seed=0``) once with a cold cache,
twice warm, and once more after an unrelated call, through ``ChatLlamaCpp`` (aligned prefix
reuse) and through raw ``Llama.create_completion`` (llama-cpp-python's own reuse, what the
runtime did before). Counts the prompts whose four answers are identical.

``ttft``: the cost in a live chat. Turn N of a conversation whose previous turn was just
answered (the cache holds that prompt and answer): time to first token and prompt tokens
evaluated, for aligned reuse (ours), llama-cpp-python's own reuse (``Llama.create_completion``,
not repeatable) and no reuse. Rounds are interleaved; medians are reported.

``chunks``: prompt-evaluation throughput (cold prefill of one long prompt) for each prefill
chunk size. Prompts are evaluated in chunks aligned to absolute positions and only whole
chunks are reused, so the chunk size is both the prefill batch and the reuse granularity.

    ORCHESTRATOR_THREADS=1 python benchmarks/runtime_repeatable.py repeat
    ORCHESTRATOR_THREADS=1 python benchmarks/runtime_repeatable.py ttft --rounds 5 --turns 10
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


def _four_answers(ask: Callable[[str], str], reset: Callable[[], None], prompt: str) -> list[str]:
    reset()  # cold
    answers = [ask(prompt), ask(prompt), ask(prompt)]
    ask(UNRELATED)
    return [*answers, ask(prompt)]


def repeat() -> None:
    llm = ChatLlamaCpp(temperature=0.0, seed=0, n_parallel=1)
    same = sum(len(set(_four_answers(_ours(llm), llm.engine.reset, p))) == 1 for p in PROMPTS)
    _report("ChatLlamaCpp (aligned reuse)", same)
    with llm.engine.exclusive() as llama:  # the raw object's own cache reuse, undisturbed
        same = sum(len(set(_four_answers(_raw(llm), llama.reset, p))) == 1 for p in PROMPTS)
    _report("raw Llama", same)


def _report(name: str, same: int) -> None:
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
                engine.reset()
                start = time.perf_counter()
                engine.next_token_logprobs(tokens, [0])  # the whole prompt, then one read
                rates[size].append(len(tokens) / (time.perf_counter() - start))
    finally:
        kvcache.PREFILL_CHUNK = original
    print(f"cold prefill of {len(tokens)} tokens, median of {rounds} rounds")
    print("| prefill chunk (tokens) | prompt tokens/s |\n| --- | --- |")
    for size in sizes:
        print(f"| {size} | {statistics.median(rates[size]):.0f} |")


CHAT = [
    "Hi! My name is Maarten and I am 33 years old.",
    "What is 3 + 3?",
    "What is the capital of France?",
    "Name a colour of the sky.",
    "What is my name?",
    "Give me a word that rhymes with cat.",
    "How many legs does a spider have?",
    "What is the opposite of hot?",
    "Name a fruit that is yellow.",
    "How old am I?",
    "Name a planet.",
    "What do bees make?",
]


def _history(llm: ChatLlamaCpp, turns: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Messages before turn ``turns``'s last answer, and the prompt of turn ``turns``."""
    messages: list[dict[str, str]] = []
    for question in CHAT[: turns - 1]:
        messages.append({"role": "user", "content": question})
        answer = llm.invoke([(m["role"], m["content"]) for m in messages], max_tokens=24)
        messages.append({"role": "assistant", "content": str(answer.content)})
    previous = messages[:-1]
    return previous, [*messages, {"role": "user", "content": CHAT[turns - 1]}]


def _evaluated(llama: Any) -> int:
    import llama_cpp

    data = llama_cpp.llama_perf_context(llama._ctx.ctx)
    return int(data.n_p_eval + data.n_eval)


def ttft(rounds: int, turns: int) -> None:
    llm = ChatLlamaCpp(temperature=0.0, seed=0)
    llama = llm.engine.llama
    previous, current = _history(llm, turns)
    prev_tokens = llm.prompt_tokens(render_messages(llm, previous))
    tokens = llm.prompt_tokens(render_messages(llm, current))
    answer_len = 24

    def ours(reuse: bool) -> tuple[float, int]:
        from orchestrator.llama.engine import Usage

        sampling = llm.sampling({"max_tokens": answer_len})
        list(llm.engine.stream(prev_tokens, sampling, usage=Usage(), reuse_prefix=reuse))
        before, start = _evaluated(llama), time.perf_counter()
        stream = llm.engine.stream(tokens, llm.sampling({"max_tokens": 1}), reuse_prefix=reuse)
        next(stream, None)
        elapsed = time.perf_counter() - start
        stream.close()
        return elapsed, _evaluated(llama) - before

    def raw() -> tuple[float, int]:
        llama.create_completion(prev_tokens, max_tokens=answer_len, temperature=0.0)
        before, start = _evaluated(llama), time.perf_counter()
        stream = llama.create_completion(tokens, max_tokens=1, temperature=0.0, stream=True)
        next(iter(stream), None)
        elapsed = time.perf_counter() - start
        return elapsed, _evaluated(llama) - before

    runs: dict[str, Callable[[], tuple[float, int]]] = {
        "aligned reuse (ours)": lambda: ours(True),
        "llama-cpp-python reuse (not repeatable)": raw,
        "no reuse (prefix_reuse=False)": lambda: ours(False),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    counts: dict[str, int] = {}
    for _ in range(rounds):
        for name, run in runs.items():
            elapsed, counts[name] = run()
            times[name].append(elapsed)
    print(f"turn {turns}: {len(tokens)} prompt tokens, median of {rounds} rounds")
    print("| prefix reuse | TTFT (ms) | prompt tokens evaluated |\n| --- | --- | --- |")
    for name in runs:
        print(f"| {name} | {statistics.median(times[name]) * 1000:.0f} | {counts[name]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["repeat", "ttft", "chunks"])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="8,16,32,64,128,512")
    args = parser.parse_args()
    if args.what == "repeat":
        repeat()
    elif args.what == "ttft":
        ttft(args.rounds, args.turns)
    else:
        chunks(args.rounds, [int(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
