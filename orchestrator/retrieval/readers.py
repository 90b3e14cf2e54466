"""File readers for ingestion: text, Markdown, JSONL, PDF and HTML files into documents.

PDF text comes from ``pypdf`` (pure Python, no system libraries; text per page, so every
chunk can cite its page). HTML main text and title come from ``trafilatura``, which drops
navigation, footers and boilerplate that would otherwise fill chunks with menu words. Both
are imported only when such a file is read, through :func:`orchestrator.extras.require`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestrator.errors import DataError
from orchestrator.extras import require
from orchestrator.retrieval.beir import read_jsonl
from orchestrator.retrieval.types import SourceDocument

TEXT_SUFFIXES = (".txt", ".text")
MARKDOWN_SUFFIXES = (".md", ".markdown")
JSONL_SUFFIXES = (".jsonl",)
PDF_SUFFIXES = (".pdf",)
HTML_SUFFIXES = (".html", ".htm")
SUPPORTED = TEXT_SUFFIXES + MARKDOWN_SUFFIXES + JSONL_SUFFIXES + PDF_SUFFIXES + HTML_SUFFIXES
_TEXT_KEYS = ("text", "page_content", "content", "body")
_ID_KEYS = ("_id", "doc_id", "id")

#: A located document: where it came from ("path" or "path:line") and the document.
Located = tuple[str, SourceDocument]


class UnreadableFileError(DataError):
    """A file that cannot be read (no permission, a broken link, binary content under a text
    suffix) or parsed (a corrupt or encrypted PDF, not really HTML). Inside a folder such a
    file is skipped and named; named on its own it is an error.
    ``reason`` is the message without the path (a skip report names the file once)."""

    def __init__(self, path: Path, what: str, *, fix: str) -> None:
        self.reason = f"the file is {what}"
        super().__init__(f"{path} is {what}", fix=fix)


def read_file(path: Path, doc_id: str) -> list[Located]:
    """The documents in one supported file (a JSONL file holds one per line). A file the OS
    will not read (permissions, a broken link) is an :class:`UnreadableFileError`."""
    suffix = path.suffix.lower()
    try:
        if suffix in JSONL_SUFFIXES:
            return list(jsonl_documents(path))
        if suffix in PDF_SUFFIXES:
            return [(str(path), pdf_document(path, doc_id))]
        if suffix in HTML_SUFFIXES:
            return [(str(path), html_document(path, doc_id))]
        text = _text(path)
    except OSError as exc:
        raise UnreadableFileError(
            path,
            f"not readable ({exc.strerror or exc})",
            fix="make it readable to this user (chmod u+r), or fix the link that points nowhere",
        ) from exc
    except UnicodeDecodeError as exc:  # a .jsonl file is read as strict UTF-8
        raise UnreadableFileError(
            path, f"not UTF-8 text ({exc.reason} at byte {exc.start})", fix="save it as UTF-8"
        ) from exc
    kind = "markdown" if suffix in MARKDOWN_SUFFIXES else "text"
    return [(str(path), SourceDocument(doc_id, text, str(path), "", {"format": kind}))]


def _text(path: Path) -> str:
    """A text or Markdown file's text (invalid UTF-8 replaced); NUL bytes, as binary files
    and UTF-16 text have and no UTF-8 text does, are an :class:`UnreadableFileError`."""
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise UnreadableFileError(
            path,
            f"binary, not {path.suffix} text (it holds NUL bytes)",
            fix="give it the extension of its real type, or save it as UTF-8 text",
        )
    return raw.decode("utf-8", errors="replace")


def jsonl_documents(path: Path) -> Iterator[Located]:
    """One document per line; the id is ``_id``/``doc_id``/``id``, else ``FILE:LINE``."""
    for number, row in read_jsonl(path):
        text_key = next((k for k in _TEXT_KEYS if k in row), None)
        if text_key is None:
            raise DataError(
                f"{path}:{number} has no text field",
                fix=f"give each line one of the keys {', '.join(_TEXT_KEYS)}",
            )
        id_key = next((k for k in _ID_KEYS if k in row), None)
        doc_id = str(row[id_key]) if id_key else f"{path.name}:{number}"
        given = row.get("metadata")
        meta: dict[str, Any] = given if isinstance(given, dict) else {}
        extra = {k: v for k, v in row.items() if k not in (text_key, id_key, "title", "metadata")}
        meta = {**extra, **meta, "format": "jsonl"}
        doc = SourceDocument(doc_id, str(row[text_key]), str(path), str(row.get("title", "")), meta)
        yield f"{path}:{number}", doc


def beir_documents(root: Path) -> Iterator[Located]:
    """The documents of a BEIR ``corpus.jsonl`` (every line needs an ``_id``)."""
    corpus = root / "corpus.jsonl"
    for number, row in read_jsonl(corpus):
        if "_id" not in row:
            raise DataError(
                f"{corpus}:{number} has no '_id'", fix="give every corpus line an '_id'"
            )
        meta = {k: v for k, v in row.items() if k not in ("_id", "title", "text")}
        doc = SourceDocument(
            str(row["_id"]),
            str(row.get("text", "")),
            str(corpus),
            str(row.get("title", "")),
            meta,
        )
        yield f"{corpus}:{number}", doc


def pdf_document(path: Path, doc_id: str) -> SourceDocument:
    """A PDF's text layer, page by page (``pages`` keeps each page's number and text)."""
    pypdf = require("pypdf", extra="rag", purpose="reading PDF files")
    with _quiet("pypdf"):  # its repair warnings would repeat what the error/skip says
        try:
            reader = pypdf.PdfReader(str(path))
            if reader.is_encrypted and not reader.decrypt(""):
                raise UnreadableFileError(
                    path, "an encrypted PDF", fix="save a decrypted copy (e.g. qpdf --decrypt)"
                )
            pages = tuple((n, p.extract_text() or "") for n, p in enumerate(reader.pages, 1))
        except (UnreadableFileError, OSError):
            raise
        except Exception as exc:  # pypdf raises many types on damaged files: all "unreadable"
            raise UnreadableFileError(
                path,
                f"not a readable PDF ({type(exc).__name__}: {exc})",
                fix="check the file opens in a PDF viewer, or export it again",
            ) from exc
    text = "\n\n".join(t for _, t in pages)
    meta = {"format": "pdf", "page_count": len(pages)}
    return SourceDocument(doc_id, text, str(path), "", meta, pages=pages)


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a parser's own log lines while it reads one file (restored after): the skip
    or error we report already says what went wrong, once."""
    log = logging.getLogger(logger_name)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def html_document(path: Path, doc_id: str) -> SourceDocument:
    """An HTML page's main text and title (boilerplate such as menus and footers dropped)."""
    trafilatura = require("trafilatura", extra="rag", purpose="reading HTML files")
    raw = path.read_bytes()
    with _quiet("trafilatura"):
        try:
            text = trafilatura.extract(raw, include_comments=False, include_tables=True)
            meta = trafilatura.extract_metadata(raw)
        except Exception as exc:  # lxml/trafilatura errors on broken markup: "unreadable"
            raise UnreadableFileError(
                path,
                f"not readable HTML ({type(exc).__name__}: {exc})",
                fix="check the file is an HTML page, or save it again from the browser",
            ) from exc
    title = str(getattr(meta, "title", None) or "") if meta is not None else ""
    return SourceDocument(doc_id, text or "", str(path), title, {"format": "html"})


def empty_reason(doc: SourceDocument) -> str | None:
    """Why a document would give no chunks (``None`` when it has text)."""
    fmt = doc.metadata.get("format")
    if doc.text.strip() or (doc.title.strip() and fmt not in ("pdf", "html")):
        return None  # a page's title alone is not worth a chunk
    if fmt == "pdf":
        return "no text layer (scanned pages need OCR first, e.g. ocrmypdf)"
    if fmt == "html":
        return "no main text found in the page"
    return "no text"
