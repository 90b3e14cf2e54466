"""Repeatability under batching (issue 20, point 5): are greedy answers byte-identical alone
and inside a batch? Not a test: prints the figures docs/benchmarks.md quotes.

llama.cpp's arithmetic for a row can depend on the batch it is computed in (other kernels for
other batch shapes). The engine keeps prompts in their own aligned chunks (as a lone call has
them) and decodes generated tokens together; this counts, for 20 greedy prompts, how many
answers are the same (1) on a one-slot engine, alone, (2) on an eight-slot engine, alone, and
(3) on the eight-slot engine inside a ``batch()`` of 8.

Run: ``python benchmarks/batch_repeatable.py --max-tokens 48``.
"""

from __future__ import annotations

import argparse
import platform

from orchestrator import ChatLlamaCpp
from orchestrator.llama.registry import gpu_backend_available

QUESTIONS = [
    "Name a fruit.", "What is 2+2?", "Say hello in French.", "Name a color.",
    "What is the capital of France?", "Count to five.", "Name an animal.",
    "What is water made of?", "Write a haiku about rain.", "Why is the sky blue?",
    "List three planets.", "What is a cat?", "Give a synonym for happy.",
    "What day comes after Monday?", "Spell 'dog' backwards.", "What is the opposite of hot?",
    "Name a musical instrument.", "How many legs does a spider have?", "What is ice?",
    "Describe the sea.",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args()
    options = {"temperature": 0.0, "seed": 0, "max_tokens": args.max_tokens}
    one = ChatLlamaCpp(n_parallel=1, **options)
    reference = [one.invoke(q).content for q in QUESTIONS]
    many = ChatLlamaCpp(n_parallel=args.parallel, **options)
    alone = [many.invoke(q).content for q in QUESTIONS]
    many.engine.scheduler.stats["largest_batch"] = 0
    config = {"max_concurrency": args.parallel}
    together = [m.content for m in many.batch(QUESTIONS, config=config)]
    largest = many.engine.scheduler.stats["largest_batch"]
    device = "GPU" if gpu_backend_available() else f"CPU ({platform.processor() or 'x86_64'})"
    print(f"{len(QUESTIONS)} greedy prompts, {args.max_tokens} tokens, {device}:")
    same_alone = sum(a == b for a, b in zip(reference, alone, strict=True))
    same_batch = sum(a == b for a, b in zip(reference, together, strict=True))
    print(f"- {args.parallel}-slot engine, alone = 1-slot engine: {same_alone}/{len(QUESTIONS)}")
    print(f"- inside a batch of {largest} = 1-slot engine alone: {same_batch}/{len(QUESTIONS)}")


if __name__ == "__main__":
    main()
