"""Ragas seconds per sample with the embedded judge (SmolLM2-135M), and with non-LLM metrics.

    ORCHESTRATOR_THREADS=1 python benchmarks/eval_ragas.py [--samples 4] [--judge-model PATH]

Samples come from evals/examples/rag_qa.jsonl with the reference as the response and the
reference document as the retrieved context, so the timing does not depend on an answering
model. Prints a Markdown table: seconds per sample for each LLM metric and for all non-LLM
metrics together, and how many scores could not be computed.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "evals" / "examples"
LLM = ["faithfulness", "answer_relevancy", "context_precision", "context_recall"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--judge-model", default=None)
    parser.add_argument("--max-tokens", type=int, default=384)
    args = parser.parse_args()

    from orchestrator.evals.judge import LlamaJudge, local_embeddings
    from orchestrator.evals.qa import load_qa
    from orchestrator.evals.rag import NON_LLM_METRICS, evaluate_rag

    samples = [
        replace(s, response=s.reference, retrieved_contexts=s.reference_contexts)
        for s in load_qa(EXAMPLES / "rag_qa.jsonl")[: args.samples]
    ]
    judge = LlamaJudge(model_path=args.judge_model, max_tokens=args.max_tokens)
    embeddings = local_embeddings()
    judge.generate("warm up: reply", _warmup_model())  # model load is not judging time
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; "
        f"ORCHESTRATOR_THREADS={os.environ.get('ORCHESTRATOR_THREADS', 'default')}; "
        f"judge: {judge.model_name}, max_tokens={args.max_tokens}\n"
    )
    print("| metric(s) | samples | s / sample | judge calls | mean | not computed |")
    print("|---|---|---|---|---|---|")
    for group in [[m] for m in LLM] + [list(NON_LLM_METRICS)]:
        calls = judge.calls
        started = time.perf_counter()
        result = evaluate_rag(samples, group, judge=judge, embeddings=embeddings, timeout=600)
        seconds = (time.perf_counter() - started) / len(samples)
        label = group[0] if len(group) == 1 else f"non-LLM ({len(group)} metrics)"
        means = [v for v in result.mean.values() if v is not None]
        mean = f"{sum(means) / len(means):.3f}" if means else "n/a"
        print(
            f"| {label} | {len(samples)} | {seconds:.1f} | {judge.calls - calls} | {mean} | "
            f"{len(result.failed)} |"
        )


def _warmup_model() -> type:
    from pydantic import BaseModel

    class Reply(BaseModel):
        ok: int

    return Reply


if __name__ == "__main__":
    main()
