"""A small RAG suite over the shipped example set, for tests that run suites end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1] / "evals" / "examples"


def example_suite(folder: Path, samples: int, body: str) -> list[dict[str, Any]]:
    """Write ``folder/suite.yaml`` over the first ``samples`` questions of the example set
    (copied to ``folder/qa.jsonl``) and the example documents; ``body`` is the rest of the
    suite (metrics, judge, configurations). Returns those questions."""
    lines = (EXAMPLES / "rag_qa.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines[:samples]]
    (folder / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "suite.yaml").write_text(
        f"name: {folder.name}\ndataset: qa.jsonl\ndocuments: [{EXAMPLES / 'rag_docs'}]\n{body}"
    )
    return rows
