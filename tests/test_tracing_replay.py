"""Replay (issue 21, point 5): recorded runs of the real embedded model re-run identical;
a changed record, model file or build is named; what the record lacks is said."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import typer
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from tracing_support import ListRetriever
from typer.testing import CliRunner

import orchestrator.tracing as tracing
from orchestrator import ChatLlamaCpp, LlamaCpp
from orchestrator.cli.replay import register
from orchestrator.errors import DataError
from orchestrator.tracing import names
from orchestrator.tracing.replay import ReplayReport, replay_run, replay_span
from orchestrator.tracing.replay_call import BUILD, DRAWN_SEED, current_build

pytestmark = pytest.mark.integration

GREEDY = ["What is 2+2?", "Name a colour.", "Say hello.", "What is the capital of France?"]
SEEDS = [1, 2, 3]
SCHEMA = {"title": "Pick", "type": "object", "required": ["colour"],
          "properties": {"colour": {"enum": ["red", "green", "blue"]}}}  # fmt: skip


@tool
def secret_code(query: str) -> str:
    """Returns the secret code. Input: what you want to know."""
    return "The secret code is 4417."


def _agent(chat: ChatLlamaCpp) -> None:
    """A retrieval, a model call with a tool, the tool, and a model call reading its result."""
    docs = ListRetriever().invoke("secret code")
    question = HumanMessage(f"Context: {docs[0].page_content}\nWhat is the secret code?")
    first = chat.bind_tools([secret_code]).invoke([question])
    asked = first.tool_calls[0] if first.tool_calls else None
    call = {"name": "secret_code", "args": asked["args"] if asked else {"query": "code"},
            "id": (asked["id"] if asked else None) or "call_0", "type": "tool_call"}  # fmt: skip
    result = secret_code.invoke(call)
    chat.invoke([question, first, result])


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Ten runs of the embedded model in one store: four greedy chat calls, three seeded
    sampled ones, a greedy completion, a schema-constrained call and a tool-using run."""
    path = tmp_path_factory.mktemp("replay") / "traces.sqlite"
    greedy = ChatLlamaCpp(temperature=0.0, max_tokens=12)
    sampled = ChatLlamaCpp(temperature=0.8, max_tokens=12)
    calls: dict[str, Callable[[], Any]] = {
        **{f"greedy {n}": partial(greedy.invoke, q) for n, q in enumerate(GREEDY)},
        **{f"seed {s}": partial(sampled.invoke, "Name an animal.", seed=s) for s in SEEDS},
        "completion": lambda: LlamaCpp(temperature=0.0, max_tokens=8).invoke("Paris is"),
        "schema": lambda: greedy.with_structured_output(SCHEMA).invoke("Pick a colour."),
        "agent": lambda: _agent(ChatLlamaCpp(temperature=0.0, max_tokens=24)),
    }
    labels = {}
    with tracing.tracing(path):
        for label, call in calls.items():
            with tracing.run(label) as handle:
                call()
            assert handle.run_id is not None
            labels[label] = handle.run_id
        assert tracing.flush()
    return path, labels


def _copy(path: Path, target: Path, change: Callable[[sqlite3.Connection], None]) -> Path:
    """A copy of the store at ``path`` with ``change`` applied to it."""
    with sqlite3.connect(path) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
        change(copy)
    return target


def _set(copy: sqlite3.Connection, run_id: str, values: dict[str, Any]) -> None:
    """Set attributes on the run's first model span (the record, as if recorded so)."""
    span_id, text = copy.execute(
        "SELECT span_id, attributes FROM spans WHERE run_id = ? AND kind = 'llm' "
        "ORDER BY started LIMIT 1",
        (run_id,),
    ).fetchone()
    copy.execute(
        "UPDATE spans SET attributes = ? WHERE span_id = ?",
        (json.dumps({**json.loads(text), **values}), span_id),
    )


def _edited(path: Path, folder: Path, run_id: str, values: dict[str, Any]) -> Path:
    """A copy of the store whose run ``run_id`` recorded ``values`` on its first model call."""
    return _copy(path, folder / "edited.sqlite", lambda c: _set(c, run_id, values))


def _replay(path: Path, run_id: str, **options: Any) -> ReplayReport:
    with tracing.TraceStore(path) as store:
        return replay_run(store, run_id, **options)


def test_ten_recorded_runs_replay_identical(recorded: tuple[Path, dict[str, str]]) -> None:
    path, labels = recorded
    assert len(labels) == 10
    for label, run_id in labels.items():
        report = _replay(path, run_id)
        assert report.identical, (label, report.to_dict())
        assert report.verdict == "identical" and report.first_difference is None
        assert not report.model_changes and report.build_change is None
        assert any("llama.cpp build" in m for m in report.missing)  # not recorded (yet)
    agent = _replay(path, labels["agent"])
    kinds = [(s.kind, s.verdict) for s in agent.steps]
    assert kinds == [("retriever", "fed back"), ("llm", "identical"), ("tool", "fed back"),
                     ("llm", "identical")]  # fmt: skip
    assert any("tool_choice" in m for m in agent.missing)


def test_one_model_call_replays_by_its_span(recorded: tuple[Path, dict[str, str]]) -> None:
    path, labels = recorded
    with tracing.TraceStore(path) as store:
        spans = [s for s in store.spans(labels["agent"]) if s.kind == "llm"]
        report = replay_span(store, spans[1].span_id[:10], run_id=labels["agent"])
        assert report.span_id == spans[1].span_id and report.identical
        assert [s.step for s in report.steps] == [1]
        tool_span = next(s for s in store.spans(labels["agent"]) if s.kind == "tool")
        with pytest.raises(DataError, match="replay reruns model calls"):
            replay_span(store, tool_span.span_id, run_id=labels["agent"])


def test_a_changed_record_names_the_first_differing_token(
    recorded: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, labels = recorded
    run_id = labels["greedy 2"]
    copy = _edited(path, tmp_path, run_id, {names.MAX_TOKENS: 3})
    report = _replay(copy, run_id)
    found = report.first_difference
    assert not report.identical and report.verdict == "different" and found is not None
    assert (found.step, found.what, found.got_token) == (1, "output", "<end>")
    assert found.token_index is not None and 1 <= found.token_index <= 3
    assert found.expected.startswith(found.got) and found.expected_token


def test_a_changed_model_file_and_build_are_named(
    recorded: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, labels = recorded
    run_id = labels["seed 1"]

    def change(copy: sqlite3.Connection) -> None:
        copy.execute("UPDATE model_files SET sha256 = ?", ("0" * 64,))
        _set(copy, run_id, {BUILD: "llama-cpp-python 0.0.1; CPU : AVX2 = 1 |"})

    report = _replay(_copy(path, tmp_path / "other.sqlite", change), run_id)
    assert report.identical  # the same file really: the outputs agree, the record is named
    assert len(report.model_changes) == 1 and "0000000000000000" in report.model_changes[0]
    assert report.build_change is not None and "0.0.1" in report.build_change
    assert current_build() in report.build_change


def test_a_drawn_seed_in_the_record_replays_a_sampled_call(
    recorded: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """A call that asked for no seed replays from the seed the engine drew, once recorded."""
    path, labels = recorded
    run_id = labels["seed 2"]
    copy = _edited(path, tmp_path, run_id, {names.SEED: -1, DRAWN_SEED: 2})
    assert _replay(copy, run_id).identical


def test_a_moved_model_file_replays_on_the_file_given(
    recorded: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, labels = recorded
    run_id = labels["completion"]
    with tracing.TraceStore(path) as store:
        model = next(s for s in store.spans(run_id) if s.kind == "llm")
    real, gone_path = model.attributes[names.MODEL_PATH], str(tmp_path / "gone.gguf")
    copy = _edited(path, tmp_path, run_id, {names.MODEL_PATH: gone_path})
    gone = _replay(copy, run_id)
    assert gone.verdict == "incomplete" and "is gone" in (gone.steps[0].note or "")
    again = _replay(copy, run_id, model_path=real)
    assert again.identical and not again.model_changes


def test_what_the_record_lacks_is_said(tmp_path: Path) -> None:
    """A model-level seed is not recorded: the sampled call is not replayed, and says why; a
    run recorded with hide_inputs has no input to replay."""
    path = tmp_path / "traces.sqlite"
    with tracing.tracing(path):
        ChatLlamaCpp(temperature=0.8, seed=5, max_tokens=4).invoke("Hi")
    with tracing.tracing(path, hide_inputs=True):
        ChatLlamaCpp(temperature=0.0, max_tokens=4).invoke("Hi")
    with tracing.TraceStore(path) as store:
        hidden, unseeded = (replay_run(store, r.run_id) for r in store.runs())
    assert unseeded.verdict == "incomplete" and "seed" in (unseeded.steps[0].note or "")
    assert {"top_k", "top_p", "min_p"} <= {m.split()[0] for m in unseeded.missing}
    assert hidden.verdict == "incomplete" and "hide_inputs" in (hidden.steps[0].note or "")


def test_the_command_prints_the_verdict_and_exits_by_it(
    recorded: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, labels = recorded
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    runner = CliRunner()
    same = runner.invoke(app, ["replay", labels["greedy 0"][:8], "--store", str(path), "--json"])
    assert same.exit_code == 0, same.output
    payload = json.loads(same.output)
    assert payload["identical"] is True and payload["steps"][0]["verdict"] == "identical"
    with tracing.TraceStore(path) as store:
        span = next(s for s in store.spans(labels["greedy 0"]) if s.kind == "llm")
    one = runner.invoke(app, ["replay", labels["greedy 0"], "--span", span.span_id[:6],
                              "--store", str(path)])  # fmt: skip
    assert one.exit_code == 0 and "identical" in one.output and span.span_id in one.output
    run_id = labels["greedy 1"]
    copy = _edited(path, tmp_path, run_id, {names.MAX_TOKENS: 2})
    changed = runner.invoke(app, ["replay", run_id, "--store", str(copy)])
    assert changed.exit_code == 1, changed.output
    assert "different" in changed.output and "differs at token" in changed.output
    missing = runner.invoke(app, ["replay", "ffffffff", "--store", str(path)])
    assert missing.exit_code == 2 and "no run has the id" in missing.output
