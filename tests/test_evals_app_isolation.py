"""Importing and using the evaluation modules leaves the process as it was.

Each check runs in a fresh interpreter (``python -c``) with the offline variables that
conftest sets for the test session removed, so what the module itself does is what is seen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

_CONTROLLED = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "RAGAS_DO_NOT_TRACK", "MPLBACKEND")


def _run(code: str, **env: str) -> dict[str, Any]:
    """Run ``code`` in a clean interpreter; it prints one JSON object as its last line."""
    clean = {k: v for k, v in os.environ.items() if k not in _CONTROLLED}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


_STATE = """
import json, os, sys
def state():
    return {
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE"),
        "TRANSFORMERS_OFFLINE": os.environ.get("TRANSFORMERS_OFFLINE"),
        "RAGAS_DO_NOT_TRACK": os.environ.get("RAGAS_DO_NOT_TRACK"),
        "vertexai": "langchain_community.chat_models.vertexai" in sys.modules,
        "ragas": "ragas" in sys.modules,
        "pyplot": "matplotlib.pyplot" in sys.modules,
    }
"""


def test_importing_the_evals_modules_changes_nothing() -> None:
    code = _STATE + (
        "import orchestrator.evals, orchestrator.evals.judge, orchestrator.evals.rag\n"
        "import orchestrator.evals.report, orchestrator.evals.runner, orchestrator.evals.qa\n"
        "print(json.dumps(state()))\n"
    )
    assert _run(code) == {
        "HF_HUB_OFFLINE": None,
        "TRANSFORMERS_OFFLINE": None,
        "RAGAS_DO_NOT_TRACK": "true",  # every telemetry opt-out is set on import: privacy.py
        "vertexai": False,
        "ragas": False,  # Ragas (and the judge class built on it) load on first use
        "pyplot": False,
    }


def test_building_the_judge_leaves_no_stand_in_module_and_no_offline_switch() -> None:
    code = _STATE + (
        "from orchestrator.evals.judge import LlamaJudge\n"
        "from ragas.llms.base import InstructorBaseRagasLLM\n"
        "out = state()\n"
        "out['subclass'] = issubclass(LlamaJudge, InstructorBaseRagasLLM)\n"
        "print(json.dumps(out))\n"
    )
    assert _run(code) == {
        "HF_HUB_OFFLINE": None,
        "TRANSFORMERS_OFFLINE": None,
        "RAGAS_DO_NOT_TRACK": "true",  # set when Ragas is used, as Ragas documents
        "vertexai": False,
        "ragas": True,
        "pyplot": False,
        "subclass": True,
    }


_OFFLINE_EMBEDDINGS = _STATE + (
    "import socket\n"
    "def refuse(self, *args):\n"
    "    raise OSError(f'network access attempted: {args}')\n"
    "socket.socket.connect = refuse\n"
    "from orchestrator.evals.judge import local_embeddings\n"
    "embeddings = local_embeddings()\n"
    "out = state()\n"
    "out['dimension'] = len(embeddings.embed_text('wing lift'))\n"
    "print(json.dumps(out))\n"
)


@pytest.fixture(scope="module", autouse=True)
def offline_embeddings() -> Iterator[Future[dict[str, Any]]]:
    """The slowest check's interpreter, started with the module (autouse): it loads the model
    on the second core while the other checks run on the first."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(_run, _OFFLINE_EMBEDDINGS)


@pytest.mark.slow
def test_local_embeddings_load_offline_without_switching_the_process_offline(
    offline_embeddings: Future[dict[str, Any]],
) -> None:
    """No network (every connect refused) and no HF_HUB_OFFLINE: the local model still loads."""
    out = offline_embeddings.result()
    assert out["dimension"] == 384  # all-MiniLM-L6-v2
    assert out["HF_HUB_OFFLINE"] is None and out["TRANSFORMERS_OFFLINE"] is None


def test_reports_never_switch_the_matplotlib_backend(tmp_path: Path) -> None:
    """The figures are drawn on their own Agg canvas: the user's backend (svg here) stays."""
    results = {
        "suite": "s",
        "kind": "retrieval",
        "dataset": "d",
        "created": "now",
        "machine": "m",
        "metrics": ["map"],
        "configurations": [
            {
                "name": "bm25",
                "kind": "retrieval",
                "mean": {"map": 0.5},
                "per_query": {"1": {"map": 0.5}},
                "pr_curve": [(r / 10, 1 - r / 10) for r in range(11)],
                "seconds": 1.0,
            }
        ],
    }
    code = _STATE + (
        "import matplotlib\n"
        "from orchestrator.evals.report import write_reports\n"
        "before = matplotlib.get_backend()\n"
        f"paths = write_reports(json.loads({json.dumps(json.dumps(results))}), {str(tmp_path)!r})\n"
        "out = state()\n"
        "out.update(before=before, after=matplotlib.get_backend())\n"
        "out['png'] = open(paths['html'].parent / 'figures' / 'pr_curve.png', 'rb').read(4).hex()\n"
        "print(json.dumps(out))\n"
    )
    out = _run(code, MPLBACKEND="svg")
    assert (out["before"], out["after"]) == ("svg", "svg")
    assert out["pyplot"] is False
    assert out["png"] == "89504e47"  # a PNG was drawn all the same
