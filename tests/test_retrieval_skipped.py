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

from orchestrator.retrieval import IndexSpec, build_index, update_index
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
        store = build_index([first], IndexSpec.of(index_name, pg_dsn), modes=["bm25"])
    _check_reported(caught, store.skipped, first / "first-scan.pdf")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        updated, _, _ = update_index(IndexSpec.of(index_name, pg_dsn), [second])
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


def test_files_that_cannot_be_read_as_text_are_skipped_and_named(tmp_path: Path) -> None:
    """A broken link, binary bytes under .txt and a .jsonl that is not UTF-8 were a raw
    ``FileNotFoundError`` / garbage text in the index / a ``UnicodeDecodeError``."""
    folder = _folder(tmp_path, "docs")
    (folder / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    (folder / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (folder / "rows.jsonl").write_bytes(b'{"text": "caf\xe9"}\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = build_index([folder], tmp_path / "ix", modes=["bm25"])
    reasons = {Path(s.path).name: s.reason for s in store.skipped}
    assert reasons["gone.txt"] == "the file is not readable (No such file or directory)"
    assert reasons["photo.txt"].startswith("the file is binary, not .txt text")
    assert reasons["rows.jsonl"].startswith("the file is not UTF-8 text")
    assert len(_skipped_warnings(caught)) == len(store.skipped) == 4
    assert store.doc_ids == ["docs.txt"]


#: Builds an index of argv[1] into argv[2] and prints what was skipped (run as another user).
_BUILD = """
import json, sys, warnings
from orchestrator.retrieval import build_index
warnings.simplefilter("ignore")
store = build_index([sys.argv[1]], sys.argv[2], modes=["bm25"])
print(json.dumps({"skipped": [[s.path, s.reason] for s in store.skipped], "ids": store.doc_ids}))
"""


def test_a_file_and_a_folder_without_read_permission_are_skipped_and_named() -> None:
    """chmod 000 was a raw ``PermissionError`` for a file, and for a folder too (or, past the
    BEIR check, a folder os.walk left out without a word). Root reads anything, so the build
    runs as ``nobody`` when the tests run as root."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as top:
        root = Path(top)
        root.chmod(0o777)  # the other user writes the index here
        folder = root / "docs"
        folder.mkdir()
        (folder / "open.txt").write_text("The open notes talk about river boats.")
        (folder / "locked.txt").write_text("secret")
        (folder / "locked").mkdir()
        (folder / "locked" / "inside.txt").write_text("never read")
        for path in (folder, folder / "open.txt"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (folder / "locked.txt").chmod(0)
        (folder / "locked").chmod(0)
        as_other = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        command = [*(as_other if os.geteuid() == 0 else []), sys.executable, "-c", _BUILD]
        assert os.geteuid() != 0 or shutil.which("setpriv"), "setpriv (util-linux) is needed"
        env = {**os.environ, "HOME": top, "HF_HUB_OFFLINE": "1", "ORCHESTRATOR_THREADS": "1"}
        done = subprocess.run(
            [*command, str(folder), str(root / "ix")],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        (folder / "locked").chmod(0o755)  # so the folder can be removed
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ids"] == ["open.txt"]
    assert result["skipped"] == [
        [str(folder / "locked.txt"), "the file is not readable (Permission denied)"],
        [f"{folder / 'locked'}/", "the folder is not readable (Permission denied)"],
    ]
