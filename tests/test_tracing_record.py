"""Recording (issue 21, point 1) with scripted models: span trees, open runs, errors and
their fix, threads and tasks kept apart, privacy, sampling, the configure hook."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.callbacks import CallbackManager
from langchain_core.runnables import RunnableLambda
from tracing_support import ListRetriever, assert_one_tree, by_kind, greeting_chain, recorded

from orchestrator import tracing
from orchestrator.errors import OptionError
from orchestrator.tracing import names
from orchestrator.tracing.handler import TraceHandler


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    with tracing.tracing(tmp_path / "traces.sqlite") as path:
        yield path
    assert not tracing.is_enabled()


def test_a_chain_is_one_run_whose_spans_form_its_tree(store: Path) -> None:
    assert greeting_chain(["Hello Bob"]).invoke({"name": "Bob"}) == "Hello Bob"
    [(run, spans)] = recorded(store)
    assert_one_tree(spans)
    (root,) = [s for s in spans if s.parent_id is None]
    assert (run.name, run.command, run.status, run.root_span) == (
        "RunnableSequence", "python", "ok", root.span_id)  # fmt: skip
    assert (run.input, run.output) == ('{"name": "Bob"}', "Hello Bob")
    assert [s.kind for s in spans] == ["chain", "prompt", "llm", "parser"]
    assert all(s.parent_id == root.span_id for s in spans[1:])
    (llm,) = by_kind(spans, "llm")
    assert llm.attributes[names.OPERATION] == "chat"
    assert llm.attributes[names.INPUT_MESSAGES] == [
        {"role": "user", "parts": [{"type": "text", "content": "Say hi to Bob"}]}
    ]
    assert llm.attributes[names.OUTPUT_MESSAGES][0]["parts"][0]["content"] == "Hello Bob"
    assert llm.attributes[names.TIME_TO_FIRST_TOKEN] >= 0
    assert root.attributes[names.INPUT] == {"name": "Bob"}


def test_an_open_run_holds_every_call_and_keeps_an_errors_fix(store: Path) -> None:
    def broken(_: object) -> str:
        raise OptionError("top_k=-1 is out of range", fix="pass top_k >= 0")

    with pytest.raises(OptionError), tracing.run("job", pipeline="nightly", session="s-1") as job:
        greeting_chain(["one"]).invoke({"name": "A"})
        ListRetriever().invoke("how tall?")
        RunnableLambda(broken).invoke("x")
    [(run, spans)] = recorded(store)
    assert run.run_id == job.run_id
    assert (run.name, run.command, run.pipeline, run.session) == ("job", "job", "nightly", "s-1")
    assert (run.status, run.error, run.fix) == (
        "error",
        "top_k=-1 is out of range",
        "pass top_k >= 0",
    )
    assert_one_tree(spans)
    (failed,) = [s for s in spans if s.name == "broken"]
    assert (failed.status, failed.error, failed.fix) == ("error", run.error, run.fix)
    assert failed.attributes[names.ERROR_TYPE] == "OptionError"
    (found,) = by_kind(spans, "retriever")
    assert found.attributes[names.QUERY] == "how tall?"
    assert found.attributes[names.DOC_IDS] == ["tower", "bridge"]
    assert found.attributes[names.SCORES] == [0.9, 0.4]
    assert found.attributes[names.DOCUMENTS][0]["text"].startswith("The Eiffel")


def _nap(value: dict[str, str]) -> dict[str, str]:
    time.sleep(0.05)
    return value


def _tagged_run(tag: str) -> None:
    slow = RunnableLambda(_nap)
    with tracing.run(tag):
        (slow | greeting_chain([f"hi {tag}"])).invoke({"name": tag})


async def _tagged_task(tag: str) -> None:
    async def nap(value: dict[str, str]) -> dict[str, str]:
        await asyncio.sleep(0.05)
        return value

    with tracing.run(tag):
        await (RunnableLambda(nap) | greeting_chain([f"hi {tag}"])).ainvoke({"name": tag})


def test_two_threads_and_two_tasks_tracing_at_once_do_not_mix(store: Path) -> None:
    threads = [threading.Thread(target=_tagged_run, args=(f"thread{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()

    async def both() -> None:
        await asyncio.gather(_tagged_task("task0"), _tagged_task("task1"))

    asyncio.run(both())
    for thread in threads:
        thread.join()
    runs = recorded(store)
    assert sorted(r.name for r, _ in runs) == ["task0", "task1", "thread0", "thread1"]
    for run, spans in runs:
        assert_one_tree(spans)
        assert len(spans) == 6  # run, sequence (flattened), lambda, prompt, llm, parser
        texts = [json.dumps(s.attributes) for s in spans if s.kind in ("chain", "llm")]
        assert texts and all(run.name in t for t in texts), run.name
        assert run.output == f"hi {run.name}"


def test_parentless_runs_in_two_threads_are_two_runs(store: Path) -> None:
    chains = [greeting_chain([f"hi {n}"]) for n in range(2)]
    threads = [
        threading.Thread(target=c.invoke, args=({"name": str(n)},)) for n, c in enumerate(chains)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = recorded(store)
    assert sorted(r.output or "" for r, _ in runs) == ["hi 0", "hi 1"]
    for _, spans in runs:
        assert_one_tree(spans)


@pytest.mark.parametrize("hidden", ["inputs", "outputs"])
def test_hidden_inputs_or_outputs_are_not_recorded_nor_searchable(
    tmp_path: Path, hidden: str
) -> None:
    path = tmp_path / "traces.sqlite"
    with tracing.tracing(path, **{f"hide_{hidden}": True}):
        greeting_chain(["Secret reply"]).invoke({"name": "Secret person"})
        ListRetriever().invoke("secret query")
    everything = json.dumps(
        [[r.to_dict(), [s.to_dict() for s in spans]] for r, spans in recorded(path)]
    )
    secret = "Secret person" if hidden == "inputs" else "Secret reply"
    shown = "Secret reply" if hidden == "inputs" else "Secret person"
    assert secret not in everything and shown in everything
    assert ("secret query" in everything) is (hidden == "outputs")
    assert ("Eiffel" in everything) is (hidden == "inputs")
    assert '"tower"' in everything  # document ids and scores stay
    with tracing.TraceStore(path) as traces:
        assert traces.search(secret) == []
        assert traces.search(shown)
        assert all(r.run_id for r in traces.runs())


def test_sample_rate_keeps_whole_runs_or_none(tmp_path: Path) -> None:
    with tracing.tracing(tmp_path / "none.sqlite", sample_rate=0.0) as path:
        for _ in range(3):
            greeting_chain(["x"]).invoke({"name": "n"})
    assert recorded(path) == []
    with tracing.tracing(tmp_path / "all.sqlite", sample_rate=1.0) as path:
        for _ in range(3):
            greeting_chain(["x"]).invoke({"name": "n"})
    assert len(recorded(path)) == 3
    with pytest.raises(OptionError):
        tracing.enable(tmp_path / "x.sqlite", sample_rate=1.5)


def test_the_handler_is_registered_only_while_tracing_is_on(tmp_path: Path) -> None:
    def ours() -> list[object]:
        return [h for h in CallbackManager.configure().handlers if isinstance(h, TraceHandler)]

    assert not tracing.is_enabled() and ours() == []
    with tracing.tracing(tmp_path / "t.sqlite"):
        assert len(ours()) == 1
    assert ours() == []


def test_tracing_restores_the_settings_in_force_before(tmp_path: Path) -> None:
    outer = tracing.enable(tmp_path / "outer.sqlite", hide_inputs=True)
    try:
        with tracing.tracing(tmp_path / "inner.sqlite"):
            assert tracing.settings()["path"] == tmp_path / "inner.sqlite"  # type: ignore[index]
        after = tracing.settings()
        assert after is not None and (after["path"], after["hide_inputs"]) == (outer, True)
    finally:
        tracing.disable()
    assert tracing.settings() is None


def test_usage_cache_reads_and_engine_counters_are_read_when_present() -> None:
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, Generation, LLMResult

    from orchestrator.tracing.attributes import usage

    said = AIMessage(
        "hi",
        usage_metadata={"input_tokens": 7, "output_tokens": 2, "total_tokens": 9,
                        "input_token_details": {"cache_read": 5}},
        response_metadata={"finish_reason": "stop", "queue_wait_s": 0.25, "slot": 2},
    )  # fmt: skip
    found = usage(LLMResult(generations=[[ChatGeneration(message=said)]]))
    assert found[names.INPUT_TOKENS] == 7 and found[names.OUTPUT_TOKENS] == 2
    assert (found[names.CACHE_READ], found[names.QUEUE_WAIT], found[names.SLOT]) == (5, 0.25, 2)
    assert found[names.FINISH_REASONS] == ["stop"]
    info = {"usage": {"prompt_tokens": 4, "completion_tokens": 3, "cached_tokens": 1}}
    plain = usage(LLMResult(generations=[[Generation(text="x", generation_info=info)]]))
    assert (plain[names.INPUT_TOKENS], plain[names.OUTPUT_TOKENS], plain[names.CACHE_READ]) == (
        4,
        3,
        1,
    )
    assert names.QUEUE_WAIT not in plain  # the engine did not report one: nothing is made up
