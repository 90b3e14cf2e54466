"""Files people have: PDF (per-page text, page numbers) and HTML (main text, title) are
indexed; every file left out is named with the reason; finding nothing to index is an error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.retrieval import IndexStore, load_documents
from orchestrator.retrieval.ingest import Skipped

PAGES = [
    "The oven runs at 220 degrees for rye bread.",
    "Delivery vans leave the depot at six in the morning.",
]
HTML = """<!doctype html><html><head><meta charset="utf-8"><title>Opening hours</title></head>
<body><nav><a href="/">Home</a> | <a href="/menu">Menu</a> | <a href="/jobs">Jobs</a></nav>
<main><h1>Opening hours</h1>
<p>The bakery opens at seven every weekday and sells sourdough rye baked that morning.</p>
<p>On Sundays the shop stays closed so the bakers can rest.</p></main>
<footer>Copyright 2024 Example Bakery. All rights reserved.</footer></body></html>"""


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF, one Helvetica text line per page, with a correct xref table."""
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * i} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "manual.pdf").write_bytes(make_pdf(PAGES))
    (docs / "page.html").write_text(HTML, encoding="utf-8")
    return docs


def test_pdf_is_read_page_by_page_with_page_numbers(folder: Path) -> None:
    from pypdf import PdfReader

    assert len(PdfReader(folder / "manual.pdf").pages) == 2  # a real PDF, read by pypdf
    (doc,) = load_documents([folder / "manual.pdf"])
    assert doc.pages == ((1, PAGES[0]), (2, PAGES[1]))
    assert doc.metadata == {"format": "pdf", "page_count": 2}


def test_html_keeps_main_text_and_title_and_drops_boilerplate(folder: Path) -> None:
    (doc,) = load_documents([folder / "page.html"])
    assert doc.title == "Opening hours"
    assert "opens at seven every weekday" in doc.text and "Sundays" in doc.text
    assert "Copyright" not in doc.text and "Jobs" not in doc.text


def test_cli_indexes_pdf_and_html_and_cites_the_page(folder: Path, tmp_path: Path) -> None:
    (folder / "notes.md").write_text("# Notes\n\nFlour is delivered on Mondays.")
    index = tmp_path / "idx"
    result = CliRunner().invoke(
        app, ["index", str(folder), "--index", str(index), "--modes", "bm25", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["documents"] == 3 and summary["skipped"] == []
    store = IndexStore.open(index)
    pages = {c.metadata.get("page") for c in store.chunks if c.doc_id == "manual.pdf"}
    assert pages == {1, 2}
    found = CliRunner().invoke(
        app, ["search", "delivery vans depot", "--index", str(index), "--mode", "bm25", "--json"]
    )
    top = json.loads(found.stdout)["results"][0]
    assert (top["doc_id"], top["page"], top["format"]) == ("manual.pdf", 2, "pdf")
    found = CliRunner().invoke(
        app, ["search", "sourdough weekday", "--index", str(index), "--mode", "bm25", "--json"]
    )
    top = json.loads(found.stdout)["results"][0]
    assert (top["doc_id"], top["title"]) == ("page.html", "Opening hours")


def test_every_skipped_file_is_named_with_its_reason(folder: Path, tmp_path: Path) -> None:
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    (folder / "empty.txt").write_text("   \n")
    (folder / ".secret.md").write_text("hidden")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main")
    result = CliRunner().invoke(
        app, ["index", str(folder), "--index", str(tmp_path / "i"), "--modes", "bm25", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["documents"] == 2
    reasons = {Path(s["path"]).name: s["reason"] for s in summary["skipped"]}
    assert set(reasons) == {"photo.png", "broken.pdf", "empty.txt", ".secret.md", ".git"}
    assert reasons["photo.png"].startswith("unsupported file type .png")
    assert "is not a readable PDF" in reasons["broken.pdf"]
    assert reasons["empty.txt"] == "no text"
    assert reasons[".secret.md"] == "hidden file" and reasons[".git"] == "hidden folder"
    stderr = " ".join(result.stderr.split())
    for name in reasons:
        assert re.search(rf"skipped \S*{re.escape(name)}/?: ", stderr), name


def test_a_build_that_finds_nothing_is_an_error(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (docs / "scan.pdf").write_bytes(make_pdf([""]))
    index = tmp_path / "idx"
    result = CliRunner().invoke(app, ["index", str(docs), "--index", str(index)])
    output = " ".join(result.output.split())
    assert result.exit_code == 2, output
    assert "nothing to index" in output and "photo.jpg" in output
    assert "scan.pdf (no text layer" in output and "fix:" in output
    assert not index.exists()


def test_update_with_files_that_give_nothing_is_an_error(folder: Path, tmp_path: Path) -> None:
    index = tmp_path / "idx"
    invoke = CliRunner().invoke
    built = invoke(app, ["index", str(folder), "--index", str(index), "--modes", "bm25"])
    assert built.exit_code == 0
    empty = tmp_path / "empty.md"
    empty.write_text("")
    result = invoke(app, ["index", str(empty), "--index", str(index), "--update"])
    assert result.exit_code == 2 and "nothing to index" in result.output


def test_skips_reach_a_library_caller(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("text")
    (tmp_path / "b.docx").write_bytes(b"PK")
    skipped: list[Skipped] = []
    docs = list(load_documents([tmp_path], on_skip=skipped.append))
    assert [d.doc_id for d in docs] == ["a.txt"]
    assert [Path(s.path).name for s in skipped] == ["b.docx"]
