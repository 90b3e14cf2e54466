"""Review regressions for the issue 12/13 command-line options, found by trying them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args",
    [
        ["index", "DOCS", "--index", "OUT", "--ray-workers", "2"],
        ["eval", "retrieval", "--dataset", "DOCS", "--ray-workers", "2"],
        ["eval", "rag", "--dataset", "DOCS/qa.jsonl", "--index", "OUT", "--ray-workers", "2"],
    ],
)
def test_ray_workers_without_ray_is_an_error(tmp_path: Path, args: list[str]) -> None:
    """``--ray-workers N`` alone was silently ignored (the work ran in this process)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The Verrin Bridge spans the river Olle.")
    (docs / "qa.jsonl").write_text('{"user_input": "q", "reference": "r"}\n')
    filled = [a.replace("DOCS", str(docs)).replace("OUT", str(tmp_path / "idx")) for a in args]
    result = runner.invoke(app, filled)
    assert result.exit_code == 2, result.output
    assert "--ray-workers applies to --ray only" in result.output
    assert "add --ray local" in result.output
    assert not (tmp_path / "idx").exists()
