"""The book's RAG answer metrics (issue 13) on the plain RAG chain, with controls of known value.

    ORCHESTRATOR_THREADS=1 python benchmarks/bench_citations.py [--mode hybrid] [--k 3]
        [--max-tokens 96] [--judge-model PATH.gguf] [--model PATH.gguf]

The plain RAG chain (``chains.rag.rag_chain``, the embedded model unless ``--model``) answers
every question of ``evals/examples/rag_qa.jsonl`` over an index of ``evals/examples/rag_docs``;
its answers are scored with citation recall / precision (ALCE) under both entailment judges
(the local judge and the lexical baseline), fluency (judged, and the perplexity baseline) and
perceived utility. All in one run, side by side.

Controls, built from each sample's reference answer and reference document, show what each
entailment judge makes of citations whose right value is known (contexts: [1] the sample's
own reference document, [2] the next sample's that is another document):

- ``ref cites [1]``: every reference sentence cites its own document: ideal recall 1, precision 1;
- ``ref cites [2]``: every sentence cites the unrelated document: ideal 0 and 0;
- ``ref cites [1][2]``: both: ideal recall 1, precision 0.5 (ALCE: [2] is not needed);
- ``ref scrambled``: the reference's words shuffled (seed 0), for fluency: should score lower
  than ``ref cites [1]`` (the same words, in order).

Prints Markdown: means per condition and metric, and time per condition.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1] / "evals" / "examples"
CITATION = [
    "citation_recall",
    "citation_precision",
    "citation_recall_lexical",
    "citation_precision_lexical",
]
QUALITY = ["fluency", "fluency_perplexity", "perceived_utility"]
#: condition -> (metrics, the ideal citation values where known)
CONDITIONS: dict[str, tuple[list[str], str]] = {
    "plain RAG": (CITATION + QUALITY, "-"),
    "ref cites [1]": (CITATION + QUALITY, "recall 1, precision 1"),
    "ref cites [2]": (CITATION, "recall 0, precision 0"),
    "ref cites [1][2]": (CITATION, "recall 1, precision 0.5"),
    "ref scrambled": (["fluency", "fluency_perplexity"], "fluency below ref cites [1]"),
}


def _cite(text: str, marker: str) -> str:
    """Each sentence of ``text`` with ``marker`` before its final stop."""
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    return " ".join(re.sub(r"([.!?]?)$", f" {marker}\\1", s, count=1) for s in sentences)


def _scramble(text: str, rng: random.Random) -> str:
    words = text.split()
    rng.shuffle(words)
    return " ".join(words)


def controls(samples: list[Any]) -> dict[str, list[Any]]:
    """The control conditions' samples (see the module docstring)."""
    rng = random.Random(0)
    out: dict[str, list[Any]] = {name: [] for name in CONDITIONS if name != "plain RAG"}
    for i, sample in enumerate(samples):
        own = sample.reference_contexts[0]
        after = samples[i + 1 :] + samples[:i]
        other = next(s.reference_contexts[0] for s in after if s.reference_contexts[0] != own)
        contexts = [own, other]
        for name, marker in (("[1]", "[1]"), ("[2]", "[2]"), ("[1][2]", "[1][2]")):
            response = _cite(sample.reference, marker)
            out[f"ref cites {name}"].append(
                replace(sample, response=response, retrieved_contexts=contexts)
            )
        scrambled = _scramble(sample.reference, rng)
        out["ref scrambled"].append(
            replace(sample, response=scrambled, retrieved_contexts=contexts)
        )
    return out


def answered(args: argparse.Namespace, samples: list[Any]) -> tuple[list[Any], float]:
    """The samples answered by the plain RAG chain, and seconds per answer."""
    from orchestrator.agents.pipelines import build
    from orchestrator.evals.qa import answer_samples
    from orchestrator.evals.retrieval import ensure_index
    from orchestrator.evals.runner import index_modes, pipeline_spec
    from orchestrator.evals.suite import PipelineConfig

    config = PipelineConfig(
        name="plain", mode=args.mode, k=args.k, model=args.model, max_tokens=args.max_tokens
    )
    index = ensure_index([EXAMPLES / "rag_docs"], None, index_modes(config))
    chain = build(pipeline_spec(config, Path.cwd(), index))
    started = time.perf_counter()
    out = answer_samples(samples, chain)
    return out, (time.perf_counter() - started) / len(samples)


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", default="hybrid", choices=["dense", "bm25", "hybrid"])
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--model", default=None, help="GGUF answering (default: embedded)")
    parser.add_argument("--judge-model", default=None, help="GGUF judging (default: embedded)")
    args = parser.parse_args()

    from orchestrator.chains.rag import cited_numbers
    from orchestrator.evals.judge import LlamaJudge
    from orchestrator.evals.qa import load_qa
    from orchestrator.evals.rag import evaluate_rag

    samples = load_qa(EXAMPLES / "rag_qa.jsonl")
    plain, answer_seconds = answered(args, samples)
    judge = LlamaJudge(model_path=args.judge_model, max_tokens=32)
    conditions = {"plain RAG": plain, **controls(samples)}
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; "
        f"ORCHESTRATOR_THREADS={os.environ.get('ORCHESTRATOR_THREADS', 'default')}; "
        f"answering: {args.model or 'embedded'} ({args.mode}, k={args.k}, "
        f"max_tokens={args.max_tokens}), {answer_seconds:.1f} s/answer; judge: {judge.model_name}"
    )
    citing = sum(bool(cited_numbers(s.response, len(s.retrieved_contexts))) for s in plain)
    print(f"plain RAG answers citing a retrieved passage: {citing} of {len(plain)}\n")
    names = CITATION + QUALITY
    print("| condition | ideal | " + " | ".join(names) + " | s / sample | judge calls |")
    print("|---|---|" + "---|" * (len(names) + 2))
    for name, rows in conditions.items():
        metrics, ideal = CONDITIONS[name]
        calls = judge.calls
        started = time.perf_counter()
        result = evaluate_rag(rows, metrics, judge=judge, timeout=600, name=name)
        seconds = (time.perf_counter() - started) / len(rows)
        cells = [_cell(result.mean.get(m)) if m in metrics else "-" for m in names]
        print(
            f"| {name} | {ideal} | " + " | ".join(cells) + f" | {seconds:.1f} | "
            f"{judge.calls - calls} |"
        )
        for failure in result.failed:
            print(f"<!-- not scored: {failure} -->")
    print("\nplain RAG answers:")
    for sample in plain:
        print(f"- {sample.id}: {sample.response[:160]!r}")


if __name__ == "__main__":
    main()
