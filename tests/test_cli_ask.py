"""``orchestrator ask --technique``: option rules (no model), a scripted model, the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator.chains.techniques import PROMPT_TECHNIQUES
from orchestrator.cli import ask as ask_module
from orchestrator.cli.app import app
from orchestrator.testing import ScriptedChatModel

runner = CliRunner()


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedChatModel:
    """``ask`` gets a scripted chat model instead of loading the GGUF."""
    model = ScriptedChatModel()
    built: list[dict[str, Any]] = []

    def fake_chat_model(spec: Any = None, /, **fields: Any) -> ScriptedChatModel:
        built.append(fields)
        return model

    monkeypatch.setattr("orchestrator.models.chat_model", fake_chat_model)
    monkeypatch.setattr(ask_module, "model_label", lambda llm: "scripted")
    model.calls = []
    return model


def test_cli_names_match_the_table() -> None:
    assert tuple(PROMPT_TECHNIQUES) == ask_module.TECHNIQUES


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--technique", "cot", "--samples", "3"],
            "--samples applies to --technique self-consistency",
        ),
        (["--samples", "3"], "--samples applies to --technique self-consistency, not to plain"),
        (["--technique", "self-consistency", "--depth", "2"], "--depth applies to --technique tot"),
        (
            ["--technique", "few-shot", "--time-limit", "5"],
            "--time-limit applies to --technique tot",
        ),
        (["--technique", "cot", "--system", "be brief"], "--system applies to --technique plain"),
        (["--technique", "self-consistancy"], "did you mean 'self-consistency'?"),
    ],
)
def test_options_for_another_technique_are_errors(
    scripted: ScriptedChatModel, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["ask", "q", *args])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert "fix:" in result.output and scripted.calls == []


def test_self_consistency_json_has_votes_and_seeded_samples(scripted: ScriptedChatModel) -> None:
    scripted.replies = ["r0", "Answer: 42", "r1", "Answer: 41", "r2", "Answer: 42."]
    result = runner.invoke(
        app,
        [
            "ask",
            "What is 17 + 25?",
            "--technique",
            "self_consistency",
            "--samples",
            "3",
            "--seed",
            "7",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["answer"] == "42" and payload["technique"] == "self-consistency"
    assert payload["votes"] == {"42": 2, "41": 1} and payload["model"] == "scripted"
    assert [s["seed"] for s in payload["samples"]] == [7, 8, 9] and payload["base_seed"] == 7
    assert {c["kwargs"]["temperature"] for c in scripted.calls} == {0.7}


def test_tot_json_has_thoughts_and_the_stop_reason(scripted: ScriptedChatModel) -> None:
    scripted.replies = ["idea one", "idea two", "likely", "sure", "Answer: 5"]
    result = runner.invoke(
        app, ["ask", "q", "--technique", "tot", "--depth", "1", "--breadth", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["answer"] == "5" and payload["stop_reason"] == "depth"
    assert payload["best_path"] == ["idea two"] and len(payload["thoughts"]) == 2


def test_cot_prints_reasoning_then_the_answer(scripted: ScriptedChatModel) -> None:
    scripted.replies = ["five and five [b]make[/b] ten", "Answer: 10"]
    result = runner.invoke(app, ["ask", "What is 5 + 5?", "--technique", "cot"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "five and five [b]make[/b] ten" and lines[-1] == "10"


def test_self_consistency_text_lists_samples_and_votes(scripted: ScriptedChatModel) -> None:
    scripted.replies = ["r", "Answer: 3", "r", "Answer: 4"]
    result = runner.invoke(app, ["ask", "q", "--technique", "self-consistency", "--samples", "2"])
    assert result.exit_code == 0, result.output
    assert "seed 0: 3" in result.stdout and "votes: 3: 1, 4: 1" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "3"


def test_self_consistency_at_temperature_zero_is_refused(scripted: ScriptedChatModel) -> None:
    result = runner.invoke(app, ["ask", "q", "--technique", "self-consistency", "-t", "0"])
    assert result.exit_code == 2 and "temperature" in result.output and scripted.calls == []


# -- the real CLI on the embedded model -------------------------------------------------------


def _cli(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.app", "ask", "What is 2 + 3?", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    payload: dict[str, Any] = json.loads(proc.stdout)
    assert payload["model"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf") and payload["answer"]
    return payload


#: One ``ask`` per technique (and plain ``ask``): the options of each run.
TECHNIQUE_RUNS = {
    "few-shot": ("--technique", "few-shot", "--max-tokens", "16"),
    "cot": ("--technique", "cot", "--max-tokens", "32", "--seed", "1"),
    "self-consistency": ("--technique", "self-consistency", "--samples", "2", "--max-tokens", "24"),
    "tot": ("--technique", "tot", "--depth", "1", "--breadth", "1", "--max-tokens", "24",
            "--time-limit", "600"),
    "plain": ("--max-tokens", "8"),
}  # fmt: skip


@pytest.mark.integration
def test_cli_each_technique_with_the_embedded_model() -> None:
    """The runs are separate processes that share nothing, so they run side by side."""
    with ThreadPoolExecutor(len(TECHNIQUE_RUNS)) as pool:
        running = {name: pool.submit(_cli, *args) for name, args in TECHNIQUE_RUNS.items()}
        few, cot, sc, tot, plain = (running[name].result() for name in TECHNIQUE_RUNS)
    assert few["technique"] == "few-shot" and few["style"] == "chat"
    assert cot["reasoning"] and cot["model_calls"] == 2 and "\n" not in cot["answer"]
    assert [s["seed"] for s in sc["samples"]] == [0, 1] and sum(sc["votes"].values()) <= 2
    assert tot["stop_reason"] == "depth" and 1 <= len(tot["thoughts"]) <= 2
    assert set(plain) == {"answer", "model", "usage"}  # plain keeps ask's JSON
