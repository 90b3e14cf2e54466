"""Issue 19's acceptance: ONE RAG spec file, run through every entry point, builds the same
pipeline (``orchestrator.agents.pipelines.build``): ``orchestrator rag --spec F --json``,
``orchestrator serve --spec F`` (``model: "rag"``), ``orchestrator mcp --spec F`` (the ``rag``
tool, over stdio with the ``mcp`` client) and ``orchestrator eval rag --spec F`` (its ``--json``
samples carry their sources) answer the same question from the same sources (ids and
passages, in order) with the same answer at temperature 0; a question unrelated to the
documents gets no sources on all four (the library's 0.3 similarity floor).

Parametrised over two specs that between them vary both sides a spec can: a folder index
with the plain strategy, and a PostgreSQL index (a real pip-installed server, the session's)
with ``strategy: multi-query``. Each process starts once per parametrisation and answers both
questions, the four entry points side by side (separate processes: nothing they compare can
depend on the order); answers are kept short (``max_tokens`` in the spec)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp_support import server_env
from server_harness import running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCS = {
    "zorblat.md": "Zorblat is a small volcanic island in the northern sea, famous for purple sand.",
    "quimby.md": "Quimby is a river town known for its annual cheese fair and stone bridges.",
    "vorn.md": "The Vorn glacier feeds three lakes and moves forty metres every year.",
    "pelmo.md": "Pelmo is a mountain village where bakers make rye bread in stone ovens.",
}
ON_TOPIC = "Which island is famous for purple sand?"
OFF_TOPIC = "How do I change the oil of a car engine?"
QUESTIONS = (ON_TOPIC, OFF_TOPIC)
#: What each entry point must agree on in a source (the score is the retriever's, too).
SOURCE_KEYS = ("n", "doc_id", "chunk_id", "source", "text")
TIMEOUT = 300


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("entry-docs")
    for name, text in DOCS.items():
        (root / name).write_text(text + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def folder_index(docs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orchestrator.retrieval import build_index

    path = tmp_path_factory.mktemp("entry-index") / "index"
    build_index([docs], path)  # dense + bm25: the floor applies to the dense similarity
    return path


@pytest.fixture(params=["folder", "postgres-multi-query"])
def spec_file(request: pytest.FixtureRequest, tmp_path: Path, docs: Path) -> Path:
    """The one spec of the parametrisation, written by ``dump_spec`` (YAML)."""
    from orchestrator.agents.pipelines import dump_spec, spec_from_options

    options: dict[str, Any] = {"k": 3, "max_tokens": 24}
    if request.param == "postgres-multi-query":
        from orchestrator.retrieval import IndexSpec, build_index

        dsn, name = request.getfixturevalue("pg_dsn"), request.getfixturevalue("index_name")
        build_index([docs], IndexSpec.of(name, dsn))
        options.update(index=name, dsn=dsn)
        options.update(strategy="multi-query", strategy_options={"n_queries": 2})
    else:
        options["index"] = request.getfixturevalue("folder_index")
    path = tmp_path / "rag.yaml"
    dump_spec(spec_from_options("rag", **options), path)
    return path


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_BASE")}
    env.pop("ORCHESTRATOR_API_KEY", None)
    return {**env, "ORCHESTRATOR_HOME": str(tmp / "home")}


def _orchestrator(tmp: Path, *args: str) -> Any:
    command = [sys.executable, "-m", "orchestrator.cli.app", *args]
    done = subprocess.run(
        command, capture_output=True, text=True, env=_env(tmp), timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _shown(answer: str, sources: list[dict[str, Any]], **trace: Any) -> dict[str, Any]:
    """What is compared; ``trace``: a strategy's queries, where the entry point reports them."""
    kept = [{k: s[k] for k in SOURCE_KEYS} for s in sources]
    return {"answer": answer.strip(), "sources": kept, **trace}


def _trace(payload: dict[str, Any]) -> dict[str, Any]:
    return {"queries": payload["queries"]} if "queries" in payload else {}


def via_rag(spec: Path, tmp: Path) -> list[dict[str, Any]]:
    results = [_orchestrator(tmp, "rag", q, "--spec", str(spec), "--json") for q in QUESTIONS]
    return [_shown(r["answer"], r["sources"], **_trace(r)) for r in results]


def via_eval(spec: Path, tmp: Path) -> list[dict[str, Any]]:
    dataset = tmp / "questions.jsonl"
    rows = [{"id": f"q{n}", "user_input": q, "reference": "-"} for n, q in enumerate(QUESTIONS)]
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = _orchestrator(
        tmp, "eval", "rag", "--dataset", str(dataset), "--spec", str(spec),
        "--metrics", "string_similarity", "--json",
    )  # fmt: skip
    samples = {s["user_input"]: s for s in result["samples"]}
    return [_shown(samples[q]["response"], samples[q].get("sources", [])) for q in QUESTIONS]


def via_serve(spec: Path, tmp: Path) -> list[dict[str, Any]]:
    shown = []
    with running_server(tmp, "--spec", str(spec)) as server:
        for question in QUESTIONS:
            body = {"model": "rag", "messages": [{"role": "user", "content": question}]}
            reply = httpx.post(f"{server.v1}/chat/completions", json=body, timeout=TIMEOUT)
            assert reply.status_code == 200, reply.text
            data = reply.json()
            shown.append(_shown(data["choices"][0]["message"]["content"], data["sources"]))
    return shown


def via_mcp(spec: Path, tmp: Path) -> list[dict[str, Any]]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "orchestrator.cli.app", "mcp", "--spec", str(spec)],
        env={**server_env(), "ORCHESTRATOR_HOME": str(tmp / "home")},
    )

    async def ask() -> list[dict[str, Any]]:
        shown = []
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            for question in QUESTIONS:
                result = await session.call_tool("rag", {"question": question})
                assert not result.isError, result.content
                data = result.structuredContent or {}
                shown.append(_shown(data["answer"], data["sources"], **_trace(data)))
        return shown

    return asyncio.run(asyncio.wait_for(ask(), TIMEOUT))


def _without_trace(shown: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in s.items() if k != "queries"} for s in shown]


ENTRY_POINTS = {"rag": via_rag, "serve": via_serve, "mcp": via_mcp, "eval rag": via_eval}


def _run_all(spec: Path, tmp: Path) -> dict[str, list[dict[str, Any]]]:
    """Every entry point at once, each in its own folder: they are separate processes that
    share nothing, so the suite's second core starts one while another answers."""
    folders = {name: tmp / name.replace(" ", "-") for name in ENTRY_POINTS}
    for folder in folders.values():
        folder.mkdir()
    with ThreadPoolExecutor(len(ENTRY_POINTS)) as pool:
        running = {n: pool.submit(run, spec, folders[n]) for n, run in ENTRY_POINTS.items()}
        return {name: future.result() for name, future in running.items()}


def test_every_entry_point_answers_the_same(spec_file: Path, tmp_path: Path) -> None:
    runs = _run_all(spec_file, tmp_path)
    on_topic, off_topic = runs["rag"]
    assert on_topic["sources"] and on_topic["sources"][0]["doc_id"] == "zorblat.md"
    assert on_topic["answer"]
    assert off_topic["sources"] == []  # below the floor: nothing to answer from
    from orchestrator.agents.pipelines import load_spec

    if load_spec(spec_file).strategy == "multi_query":  # type: ignore[union-attr]  # it ran
        assert on_topic["queries"][0] == ON_TOPIC and len(on_topic["queries"]) == 1 + 2
    assert runs["mcp"] == runs["rag"], "mcp differs from `orchestrator rag` (or its queries)"
    for entry in ("serve", "eval rag"):  # these report no strategy trace
        assert runs[entry] == _without_trace(runs["rag"]), f"{entry} differs from `rag`"


@pytest.mark.parametrize(
    "command", [["rag", "Q"], ["serve"], ["mcp"], ["eval", "rag", "--dataset", "q.jsonl"]]
)
def test_a_pipeline_option_beside_the_spec_is_refused(command: list[str], tmp_path: Path) -> None:
    """The file is the whole pipeline on every entry point: ``--model`` cannot change it."""
    from typer.testing import CliRunner

    from orchestrator.agents.pipelines import dump_spec, spec_from_options
    from orchestrator.cli.app import app

    spec = tmp_path / "rag.json"
    dump_spec(spec_from_options("rag", index=tmp_path / "index"), spec)
    result = CliRunner().invoke(app, [*command, "--spec", str(spec), "--model", "other.gguf"])
    assert result.exit_code == 2, result.output
    assert "--model cannot change it" in " ".join(result.output.split())
