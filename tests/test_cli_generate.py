"""The CLI as a user runs it: real processes, real model. The processes share nothing, so
they all start together (``runs``) and each test checks its own."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.app", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def commands(tmp: Path) -> dict[str, tuple[str, ...]]:
    """Each test's command line."""
    return {
        "ask_json": ("ask", "What is the capital of France?", "--max-tokens", "12", "--seed",
                     "1", "--json"),
        "ask_plain": ("ask", "Say hello.", "--max-tokens", "8"),
        "story": ("story", "a robot learning to paint", "--max-tokens", "30", "--json"),
        "models": ("models", "--json"),
        "missing_model": ("ask", "hi", "--model", str(tmp / "missing.gguf")),
        "unknown_option": ("ask", "hi", "--modle", "x"),
    }  # fmt: skip


Runs = dict[str, Future[subprocess.CompletedProcess[str]]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    wanted = commands(tmp_path_factory.mktemp("cli"))
    with ThreadPoolExecutor(len(wanted)) as pool:
        yield {name: pool.submit(run_cli, *args) for name, args in wanted.items()}


def test_ask_json(runs: Runs) -> None:
    proc = runs["ask_json"].result()
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert set(payload) == {"answer", "model", "usage"}
    assert payload["answer"] and payload["usage"]["output_tokens"] <= 12
    assert payload["model"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")


def test_ask_streams_plain_text(runs: Runs) -> None:
    proc = runs["ask_plain"].result()
    assert proc.returncode == 0 and proc.stdout.strip()


def test_story_json_has_the_four_fields(runs: Runs) -> None:
    proc = runs["story"].result()
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)) == {"summary", "title", "character", "story"}


def test_models_json_describes_the_file(runs: Runs) -> None:
    proc = runs["models"].result()
    info = json.loads(proc.stdout)
    assert info["architecture"] == "llama" and info["context_default"] == 4096
    assert info["gpu_layers_offloaded"] == 0 or info["gpu_backend"]


def test_missing_model_is_a_clear_error(runs: Runs) -> None:
    proc = runs["missing_model"].result()
    assert proc.returncode == 2
    assert "model file not found" in proc.stderr and "fix:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_option_is_rejected(runs: Runs) -> None:
    proc = runs["unknown_option"].result()
    assert proc.returncode == 2 and "--modle" in proc.stderr


def test_missing_optional_dependency_names_the_extra(capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from orchestrator.cli.common import guarded

    @guarded
    def needs_faiss() -> None:
        raise ModuleNotFoundError("No module named 'faiss'", name="faiss")

    with pytest.raises(typer.Exit) as exit_info:
        needs_faiss()
    assert exit_info.value.exit_code == 2
    assert "orchestrator[rag]" in capsys.readouterr().err
