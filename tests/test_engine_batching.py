"""The batched engine (issue 20): many requests share one llama.cpp context, and each gets what
it asked for; a caller that leaves frees its slot; a long prompt does not stall the others.

Real model, real threads. Answers are compared with the same calls made alone: on this CPU
build a row's arithmetic does not depend on the batch it was decoded in (docs/benchmarks.md,
"Repeatability"), so any difference would be cross-talk between sequences.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orchestrator import ChatLlamaCpp, LlamaCpp
from orchestrator.cancellation import CancellationToken, GenerationCancelled, cancellation_scope

pytestmark = pytest.mark.integration

Check = Callable[[str, dict[str, Any]], bool]
#: A grammar that cannot end before 300 words: a generation that runs until stopped.
ENDLESS = 'root ::= "la "{300}'

#: (call options, the constraint the answer must meet), several of each kind.
CASES: list[tuple[dict[str, Any], Check]] = [
    (
        {"input": "Is the sky blue? Answer:", "grammar": 'root ::= "yes" | "no"'},
        lambda text, usage: text in {"yes", "no"},
    ),
    (
        {"input": "A number:", "grammar": "root ::= [0-9] [0-9]? [0-9]?"},
        lambda text, usage: re.fullmatch(r"[0-9]{1,3}", text) is not None,
    ),
    (
        {"input": "Name three colors, separated by commas:", "stop": [","]},
        lambda text, usage: "," not in text,
    ),
    (
        {"input": "Tell me a long story about a cat.", "max_tokens": 5},
        lambda text, usage: usage["output_tokens"] == 5,
    ),
    (
        {"input": "Tell me a long story about a dog.", "max_tokens": 9},
        lambda text, usage: usage["output_tokens"] == 9,
    ),
    (
        {"input": "Write a poem.", "temperature": 0.9, "seed": 7},
        lambda text, usage: bool(text),
    ),
    (
        {"input": "Write a poem.", "temperature": 0.9, "seed": 8},
        lambda text, usage: bool(text),
    ),
    (
        {"input": "Write a poem.", "temperature": 0.9, "seed": 7},
        lambda text, usage: bool(text),
    ),
    ({"input": "What is the capital of France?"}, lambda text, usage: bool(text)),
    ({"input": "Say hello in French."}, lambda text, usage: bool(text)),
    (
        {"input": "Yes or no: is water wet?", "grammar": 'root ::= "yes" | "no"'},
        lambda text, usage: text in {"yes", "no"},
    ),
    (
        {"input": "List animals, one per line:", "stop": ["\n"], "max_tokens": 12},
        lambda text, usage: "\n" not in text,
    ),
]


@pytest.fixture(scope="module")
def llm8() -> ChatLlamaCpp:
    return ChatLlamaCpp(temperature=0, seed=0, max_tokens=16, n_parallel=8)


def _stream(llm: ChatLlamaCpp, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    options = dict(options)
    text, usage = "", None
    for chunk in llm.stream(options.pop("input"), **options):
        text += str(chunk.content)
        usage = chunk.usage_metadata or usage
    assert usage is not None
    return text, dict(usage)


def test_concurrent_streams_each_get_what_they_asked_for(llm8: ChatLlamaCpp) -> None:
    alone = [_stream(llm8, options) for options, _ in CASES]
    scheduler = llm8.engine.scheduler
    scheduler.stats["largest_batch"] = 0
    together: list[Any] = [None] * len(CASES)
    start = threading.Barrier(len(CASES))

    def run(i: int) -> None:
        start.wait()
        together[i] = _stream(llm8, CASES[i][0])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(CASES))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert scheduler.stats["largest_batch"] > 1, "the streams were decoded together"
    for (options, check), (text, usage), lone in zip(CASES, together, alone, strict=True):
        assert check(text, usage), (options, text)
        assert text == lone[0], f"{options}: batched {text!r} but alone {lone[0]!r}"
    assert together[5][0] == together[7][0], "the same seed gives the same sample"
    assert scheduler.occupancy() == (0, 0)


def test_batch_of_16_equals_16_lone_calls(llm8: ChatLlamaCpp) -> None:
    prompts = [f"Give me fact number {i} about the moon." for i in range(16)]
    alone = [llm8.invoke(p).content for p in prompts]
    llm8.engine.scheduler.stats["largest_batch"] = 0
    together = [m.content for m in llm8.batch(prompts, config={"max_concurrency": 16})]
    assert together == alone
    assert llm8.engine.scheduler.stats["largest_batch"] == 8  # every slot, 8 waiting


def test_a_closed_stream_frees_its_slot_at_the_next_step() -> None:
    llm = LlamaCpp(temperature=0, seed=0, n_parallel=1)
    engine = llm.engine
    stream = llm.stream("Sing:", max_tokens=400, grammar=ENDLESS)
    next(iter(stream))
    stream.close()
    before = engine.generated_tokens
    assert llm.invoke("Hi", max_tokens=3) is not None  # the one slot is free: no hang
    assert engine.generated_tokens - before <= 3 + 2, "the closed stream stopped within a step"
    assert engine.scheduler.occupancy() == (0, 0)


def test_a_cancelled_caller_hears_why_and_frees_the_slot() -> None:
    llm = LlamaCpp(temperature=0, seed=0, n_parallel=1)
    token = CancellationToken()
    pieces: Iterator[str]
    with cancellation_scope(token):
        pieces = iter(llm.stream("Sing:", max_tokens=400, grammar=ENDLESS))
        next(pieces)
        token.cancel()
        with pytest.raises(GenerationCancelled) as info:
            list(pieces)
    assert 0 < info.value.usage.completion_tokens < 400
    assert llm.invoke("Hi", max_tokens=2) is not None
    assert llm.engine.scheduler.occupancy() == (0, 0)


def test_a_long_prompt_never_stalls_another_stream_for_more_than_one_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    llm = LlamaCpp(temperature=0, seed=0, n_parallel=2)
    scheduler = llm.engine.scheduler
    events: list[tuple[str, set[int]]] = []
    decode, prefill = scheduler._decode, scheduler._prefill
    monkeypatch.setattr(
        scheduler, "_decode", lambda rs: (events.append(("D", {id(r) for r in rs})), decode(rs))
    )
    monkeypatch.setattr(
        scheduler, "_prefill", lambda rs: (events.append(("P", {id(r) for r in rs})), prefill(rs))
    )
    short = iter(llm.stream("Sing:", max_tokens=60, grammar=ENDLESS))
    next(short)
    long_prompt = "The river is long and wide. " * 100  # ~20 prefill chunks
    assert llm.invoke(long_prompt, max_tokens=1) is not None
    rest = list(short)
    assert rest, "the short stream went on"
    prefills = [i for i, (kind, _) in enumerate(events) if kind == "P"]
    assert len(prefills) >= 10
    decodes = {i for i, (kind, _) in enumerate(events) if kind == "D"}
    last_decode = max(decodes)
    for a, b in itertools.pairwise(prefills):
        if b < last_decode:  # while the short stream still generates
            assert any(a < d < b for d in decodes), "a decode step between two prefill chunks"


def test_samples_of_one_prompt_share_its_prefill_and_keep_their_own_seeds() -> None:
    """Self-consistency's shape: N seeded samples of one prompt at once. The prompt is
    prefilled once and copied (llama_memory_seq_cp); each sample equals its cold self."""
    question = "Fact: the river is long and the sea is deep and blue. " * 8 + "What is long?"
    cold = ChatLlamaCpp(temperature=0.8, max_tokens=12, n_parallel=4, prefix_reuse=False)
    alone = [cold.invoke(question, seed=seed).content for seed in range(4)]
    llm = ChatLlamaCpp(temperature=0.8, max_tokens=12, n_parallel=4)
    llm.engine.reset()
    stats = llm.engine.scheduler.stats
    shared = stats["shared_prefixes"]
    results: list[Any] = [None] * 4
    start = threading.Barrier(4)

    def sample(seed: int) -> None:
        start.wait()
        results[seed] = llm.invoke(question, seed=seed)

    threads = [threading.Thread(target=sample, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.content for r in results] == alone
    assert stats["shared_prefixes"] - shared == 3
    reads = sorted(r.usage_metadata["input_token_details"]["cache_read"] for r in results)
    assert reads[0] == 0 and reads[1] == reads[3] > 0
