"""CLI: ``orchestrator index``, ``search`` (incl. TREC runs) and ``rag``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app

runner = CliRunner()


@pytest.fixture()
def beir_dir(tmp_path: Path) -> Path:
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "10", "title": "Shock waves", "text": "oblique shock on a supersonic wedge"},
        {"_id": "11", "title": "Heat", "text": "heat transfer in laminar boundary layers"},
        {"_id": "12", "title": "Shells", "text": "buckling of thin cylindrical shells"},
        {"_id": "13", "title": "Jets", "text": "noise from subsonic jets"},
    ]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in corpus))
    queries = [{"_id": "1", "text": "shell buckling"}, {"_id": "2", "text": "wedge shock"}]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\t12\t1\n2\t10\t1\n")
    return root


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_index_then_search_json_and_trec_run(beir_dir: Path, tmp_path: Path) -> None:
    index = str(tmp_path / "idx")
    summary = json.loads(
        invoke("index", str(beir_dir), "--index", index, "--modes", "bm25", "--json")
    )
    assert summary["documents"] == 4 and summary["modes"] == ["bm25"]
    found = json.loads(
        invoke("search", "thin shells", "--index", index, "--mode", "bm25", "-k", "1", "--json")
    )
    assert found["results"][0]["doc_id"] == "12"
    run = tmp_path / "run.trec"
    invoke(
        "search",
        "--queries",
        str(beir_dir / "queries.jsonl"),
        "--index",
        index,
        "--mode",
        "bm25",
        "--run-out",
        str(run),
        "--json",
    )
    lines = [line.split() for line in run.read_text().splitlines()]
    assert lines[0][:4] == ["1", "Q0", "12", "1"] and lines[0][5] == "orchestrator"
    assert {line[0] for line in lines} == {"1", "2"}
    ranks = [int(line[3]) for line in lines if line[0] == "2"]
    assert ranks == list(range(1, len(ranks) + 1))


def test_update_and_delete_documents(beir_dir: Path, tmp_path: Path) -> None:
    index = str(tmp_path / "idx")
    invoke("index", str(beir_dir), "--index", index, "--modes", "bm25", "--json")
    note = tmp_path / "rotor.txt"
    note.write_text("helicopter rotor blades shed tip vortices")
    out = json.loads(
        invoke("index", str(note), "--index", index, "--update", "--delete", "13", "--json")
    )
    assert out["documents"] == 4 and out["removed_chunks"] == 1 and out["added_chunks"] == 1
    found = json.loads(
        invoke("search", "rotor vortices", "--index", index, "--mode", "bm25", "--json")
    )
    assert found["results"][0]["doc_id"] == note.as_posix()


def test_same_file_name_in_two_folders_are_two_documents(tmp_path: Path) -> None:
    index = str(tmp_path / "idx")
    for folder, text in (("a", "rotor blades and vortices"), ("b", "wing flutter at speed")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "notes.txt").write_text(text)
    invoke("index", str(tmp_path / "a" / "notes.txt"), "--index", index, "--modes", "bm25")
    out = json.loads(
        invoke("index", str(tmp_path / "b" / "notes.txt"), "--index", index, "--update", "--json")
    )
    assert out["documents"] == 2


def test_errors_are_reported_with_a_fix(tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", "x", "--index", str(tmp_path / "none")])
    output = " ".join(result.output.split())
    assert result.exit_code == 2
    assert "not an index directory" in output and "fix:" in output
    result = runner.invoke(
        app, ["index", str(tmp_path), "--index", str(tmp_path / "i"), "--modes", "bm52"]
    )
    assert result.exit_code == 2 and "did you mean 'bm25'" in " ".join(result.output.split())


@pytest.mark.integration
def test_rag_json_answers_with_sources(beir_dir: Path, tmp_path: Path) -> None:
    index = str(tmp_path / "idx")
    invoke("index", str(beir_dir), "--index", index, "--json")
    out = json.loads(
        invoke(
            "rag",
            "Why do thin cylindrical shells buckle?",
            "--index",
            index,
            "-k",
            "2",
            "--max-tokens",
            "16",
            "--json",
        )
    )
    assert set(out) >= {"answer", "sources"}
    assert out["sources"][0]["doc_id"] == "12" and out["answer"]


def test_update_refuses_build_options_it_cannot_apply(beir_dir: Path, tmp_path: Path) -> None:
    index = str(tmp_path / "idx")
    invoke("index", str(beir_dir), "--index", index, "--modes", "bm25", "--json")
    result = runner.invoke(
        app, ["index", "--index", index, "--update", "--chunk-size", "9999", str(beir_dir)]
    )
    assert result.exit_code == 2 and "--chunk-size" in result.output


def test_an_unfinished_build_is_named_as_such(tmp_path: Path, beir_dir: Path) -> None:
    index = tmp_path / "idx"
    index.mkdir()
    (index / "chunks.1.jsonl.x1y2.tmp").write_text("{}")
    for args in (
        ["index", str(beir_dir), "--index", str(index)],
        ["index", "--index", str(index), "--update", str(beir_dir)],
    ):
        result = runner.invoke(app, args)
        output = " ".join(result.output.split())
        assert result.exit_code == 2 and "unfinished" in output and "rm -r" in output


def test_index_and_search_take_model_and_check_it(beir_dir: Path, tmp_path: Path) -> None:
    index = str(tmp_path / "idx")
    missing = str(tmp_path / "missing.gguf")
    for args in (
        ["index", str(beir_dir), "--index", index, "--modes", "bm25", "--model", missing],
        ["search", "wedge", "--index", index, "--mode", "bm25", "--model", missing],
    ):
        assert "--model" in runner.invoke(app, [args[0], "--help"]).output
        if args[0] == "search":
            invoke("index", str(beir_dir), "--index", index, "--modes", "bm25")
        result = runner.invoke(app, args)
        output = " ".join(result.output.split())
        assert result.exit_code == 2 and f"model file not found: {missing}" in output


def test_search_rerank_llm_runs_the_model_given(
    beir_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.retrieval import rerank
    from orchestrator.settings import embedded_model_path

    model = tmp_path / "judge.gguf"
    model.symlink_to(embedded_model_path())
    used: list[str | None] = []

    class Recording(rerank.LLMReranker):
        def score(self, query: str, passages: list[str]) -> list[float]:  # type: ignore[override]
            used.append(self.model_path)
            return [float("shells" in p) for p in passages]

    monkeypatch.setattr(rerank, "LLMReranker", Recording)
    index = str(tmp_path / "idx")
    invoke("index", str(beir_dir), "--index", index, "--modes", "bm25")
    args = ["search", "thin shells wedge", "--index", index, "--mode", "bm25", "--json"]
    out = json.loads(invoke(*args, "--rerank", "llm", "--model", str(model)))
    assert used == [str(model)]
    assert out["results"][0]["doc_id"] == "12" and out["results"][0]["rerank"] == 1.0


@pytest.mark.integration
def test_search_rerank_llm_with_a_real_model_path(beir_dir: Path, tmp_path: Path) -> None:
    from orchestrator.settings import embedded_model_path

    model = tmp_path / "judge.gguf"
    model.symlink_to(embedded_model_path())
    index = str(tmp_path / "idx")
    invoke("index", str(beir_dir), "--index", index, "--modes", "bm25")
    args = ["search", "thin shells on a wedge", "--index", index, "--mode", "bm25"]
    out = json.loads(invoke(*args, "--rerank", "llm", "--model", str(model), "--json"))
    assert len(out["results"]) == 2 and all("rerank" in r for r in out["results"])
