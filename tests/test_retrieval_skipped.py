"""Skipped files are reported by the library, not only by the CLI: ``build_index`` and
``update_index`` warn once per skipped file (``SkippedFileWarning``) and list it in the result
(``store.skipped``), the same for the local and the PostgreSQL backend; the CLI prints what the
library reports, naming each file once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

from orchestrator.retrieval import build_index, update_index
from orchestrator.retrieval.ingest import Skipped, SkippedFileWarning

CORRUPT = b"%PDF-1.4\nnot really a PDF"


def _folder(root: Path, name: str) -> Path:
    """A folder with one readable text file and one corrupt PDF."""
    folder = root / name
    folder.mkdir()
    (folder / f"{name}.txt").write_text(f"The {name} notes talk about river boats and bridges.")
    (folder / f"{name}-scan.pdf").write_bytes(CORRUPT)
    return folder


def _skipped_warnings(caught: list[warnings.WarningMessage]) -> list[SkippedFileWarning]:
    return [w.message for w in caught if isinstance(w.message, SkippedFileWarning)]


def _check_reported(
    caught: list[warnings.WarningMessage], skipped: tuple[Skipped, ...], pdf: Path
) -> None:
    """One warning naming the PDF, at the test's own line; the same file in the result."""
    found = _skipped_warnings(caught)
    assert len(found) == 1
    assert str(found[0]).startswith(f"skipped {pdf}: the file is not a readable PDF (")
    assert str(found[0]).count(pdf.name) == 1
    assert found[0].skipped == skipped[0]
    origin = next(w for w in caught if isinstance(w.message, SkippedFileWarning))
    assert origin.filename == __file__  # shown at the caller's line, not inside the library
    assert [s.path for s in skipped] == [str(pdf)]
    assert "is not a readable PDF" in skipped[0].reason


def test_local_build_and_update_warn_and_list_the_skipped_pdf(tmp_path: Path) -> None:
    first, second = _folder(tmp_path, "first"), _folder(tmp_path, "second")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = build_index([first], tmp_path / "ix", modes=["bm25"])
    _check_reported(caught, store.skipped, first / "first-scan.pdf")
    assert store.doc_ids == ["first.txt"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        updated, added, _ = update_index(tmp_path / "ix", [second])
    _check_reported(caught, updated.skipped, second / "second-scan.pdf")
    assert added > 0


def test_postgres_build_and_update_report_the_same_way(
    tmp_path: Path, pg_dsn: str, index_name: str
) -> None:
    first, second = _folder(tmp_path, "first"), _folder(tmp_path, "second")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = build_index([first], index_name, modes=["bm25"], dsn=pg_dsn)
    _check_reported(caught, store.skipped, first / "first-scan.pdf")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        updated, _, _ = update_index(index_name, [second], dsn=pg_dsn)
    _check_reported(caught, updated.skipped, second / "second-scan.pdf")


def test_a_callback_replaces_the_warning_and_the_result_still_lists_it(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "docs")
    seen: list[Skipped] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = build_index([folder], tmp_path / "ix", modes=["bm25"], on_skip=seen.append)
    assert _skipped_warnings(caught) == []
    assert list(store.skipped) == seen and seen[0].path == str(folder / "docs-scan.pdf")


def test_the_warning_can_be_filtered_like_any_other(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "docs")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", SkippedFileWarning)
        store = build_index([folder], tmp_path / "ix", modes=["bm25"])
    assert _skipped_warnings(caught) == []
    assert len(store.skipped) == 1


def test_nothing_skipped_is_an_empty_list(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("plain text")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedFileWarning)
        store = build_index([tmp_path / "a.txt"], tmp_path / "ix", modes=["bm25"])
    assert store.skipped == ()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "orchestrator.cli.app", "index", *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ORCHESTRATOR_THREADS": "1", "COLUMNS": "500"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_the_cli_names_each_skipped_file_exactly_once(tmp_path: Path) -> None:
    first, second = _folder(tmp_path, "first"), _folder(tmp_path, "second")
    built = _cli(str(first), "--index", str(tmp_path / "ix"), "--modes", "bm25")
    assert built.returncode == 0, built.stderr
    output = built.stdout + built.stderr
    assert output.count("first-scan.pdf") == 1
    assert "skipped 1 (named above)" in " ".join(built.stdout.split())
    updated = _cli(str(second), "--index", str(tmp_path / "ix"), "--update", "--json")
    assert updated.returncode == 0, updated.stderr
    assert updated.stderr.count("second-scan.pdf") == 1  # the live line; stdout is the JSON
    summary = json.loads(updated.stdout)
    assert [Path(s["path"]).name for s in summary["skipped"]] == ["second-scan.pdf"]
