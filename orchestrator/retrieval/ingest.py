"""Ingestion: load text, Markdown, JSONL, PDF, HTML and BEIR corpora; split them into chunks.

Chunk length is counted in the default embedder's word pieces (so a chunk fits the model's
input), with overlap between consecutive chunks so a sentence cut at a boundary is still
whole in one of them. Every chunk keeps its document id, source and the document's metadata
(and its ``page`` for PDFs).

Nothing is dropped silently: a file in a folder that cannot be indexed (unsupported type,
hidden, unreadable, no text) is reported with the reason, by default as a
:class:`SkippedFileWarning` per file (``on_skip`` replaces that), and two documents with one
id are an error naming where each came from (file, and line for JSONL), never two copies
under one id.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from orchestrator.errors import DataError, OptionError
from orchestrator.retrieval.beir import is_beir_dir
from orchestrator.retrieval.readers import (
    SUPPORTED,
    Located,
    UnreadableFileError,
    beir_documents,
    empty_reason,
    read_file,
)
from orchestrator.retrieval.types import Chunk, SourceDocument, chunk_hash


@dataclass(frozen=True)
class Skipped:
    """A file (or JSONL line) that was not indexed, and why."""

    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


SkipHandler = Callable[[Skipped], None]


class SkippedFileWarning(UserWarning):
    """A file (or JSONL line) that was left out of an index; ``skipped`` holds its path and
    the reason. Silence it like any warning:
    ``warnings.simplefilter("ignore", SkippedFileWarning)``."""

    def __init__(self, skipped: Skipped) -> None:
        self.skipped = skipped
        super().__init__(f"skipped {skipped.path}: {skipped.reason}")


def warn_skip(skipped: Skipped) -> None:
    """The default report of a skipped file: a :class:`SkippedFileWarning`, shown at the
    caller's line (the first frame outside this package), not inside the library."""
    warnings.warn(SkippedFileWarning(skipped), stacklevel=_outside_stacklevel())


def _outside_stacklevel() -> int:
    """The ``stacklevel`` of ``warn_skip``'s first caller outside the ``orchestrator``
    package (Python 3.11 has no ``skip_file_prefixes``)."""
    package = os.path.join(os.path.dirname(os.path.dirname(__file__)), "")
    frame, level = sys._getframe(2), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def load_documents(
    paths: Iterable[str | Path], on_skip: SkipHandler | None = None
) -> Iterator[SourceDocument]:
    """Documents from files and directories (directories: BEIR corpus, else files inside).

    Files inside a directory that cannot be indexed are passed to ``on_skip`` (default:
    :func:`warn_skip`, a :class:`SkippedFileWarning`); a file named directly with an
    unsupported type or unreadable content is an error. The same id from two places is a
    :class:`DataError` naming both.
    """
    report = on_skip or warn_skip
    seen: dict[str, str] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise DataError(f"{path} does not exist", fix="check the path you passed")
        for where, doc in _documents_at(path, report):
            first = seen.get(doc.doc_id)
            if first == where:
                continue  # the very same file (or line) passed twice: keep one copy
            if first is not None:
                raise DataError(
                    f"document id {doc.doc_id!r} is used twice: by {first} and by {where}",
                    fix="give each document its own id (JSONL: '_id' or 'id'), or remove one",
                )
            seen[doc.doc_id] = where
            reason = empty_reason(doc)
            if reason is None:
                yield doc
            else:
                report(Skipped(where, reason))


def nothing_to_index(paths: Sequence[Any], skipped: Sequence[Skipped]) -> DataError:
    """The error for a build that found no text: names the inputs and what was skipped."""
    shown = "; ".join(f"{s.path} ({s.reason})" for s in skipped[:5])
    more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    return DataError(
        f"nothing to index in {', '.join(map(str, paths)) or '(no paths)'}"
        + (f": skipped {shown}{more}" if skipped else ": no document has any text"),
        fix=f"pass files of a supported type ({', '.join(SUPPORTED)}) or a BEIR directory",
    )


def _documents_at(path: Path, report: SkipHandler) -> Iterator[Located]:
    if is_beir_dir(path):
        yield from beir_documents(path)
    elif path.is_dir():
        yield from _folder_documents(path, report)
    else:  # a single file is named by the path as passed, so a/notes.md != b/notes.md
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED:
            raise OptionError(
                f"cannot ingest {path}: unsupported file type {suffix or '(none)'}",
                fix=f"use one of {', '.join(SUPPORTED)} or a BEIR directory",
            )
        yield from read_file(path, path.as_posix())


def _folder_documents(root: Path, report: SkipHandler) -> Iterator[Located]:
    """Every supported file under ``root`` (sorted, hidden entries skipped); a BEIR dataset
    inside contributes its corpus only; a folder that cannot be listed is reported."""
    unlisted: list[OSError] = []  # os.walk's errors, reported from here, not from inside it
    for dirpath, dirnames, filenames in os.walk(root, onerror=unlisted.append):
        _report_unlisted(unlisted, report)
        here = Path(dirpath)
        dirnames.sort()
        for name in [n for n in dirnames if n.startswith(".")]:
            report(Skipped(f"{here / name}/", "hidden folder"))
        dirnames[:] = [n for n in dirnames if not n.startswith(".")]
        for name in [n for n in dirnames if is_beir_dir(here / n)]:
            dirnames.remove(name)
            yield from beir_documents(here / name)
            for other in sorted((here / name).rglob("*")):
                if other.is_file() and other.name != "corpus.jsonl":
                    report(Skipped(str(other), "BEIR dataset file; only corpus.jsonl is indexed"))
        for name in sorted(filenames):
            yield from _folder_file(here / name, root, report)
    _report_unlisted(unlisted, report)


def _report_unlisted(errors: list[OSError], report: SkipHandler) -> None:
    for exc in errors:
        report(Skipped(f"{exc.filename}/", f"the folder is not readable ({exc.strerror})"))
    errors.clear()


def _folder_file(file: Path, root: Path, report: SkipHandler) -> Iterator[Located]:
    suffix = file.suffix.lower()
    if file.name.startswith("."):
        report(Skipped(str(file), "hidden file"))
    elif suffix not in SUPPORTED:
        kind = f"file type {suffix}" if suffix else "file without an extension"
        report(Skipped(str(file), f"unsupported {kind} (indexed: {', '.join(SUPPORTED)})"))
    else:
        try:
            found = read_file(file, file.relative_to(root).as_posix())
        except UnreadableFileError as exc:
            report(Skipped(str(file), exc.reason))
            return
        yield from found


@dataclass(frozen=True)
class ChunkerConfig:
    """Chunk size and overlap in word-piece tokens of the default embedder."""

    chunk_size: int = 256
    chunk_overlap: int = 32

    def __post_init__(self) -> None:
        if self.chunk_size < 8 or not 0 <= self.chunk_overlap < self.chunk_size:
            raise OptionError(
                f"need chunk_size >= 8 and 0 <= chunk_overlap < chunk_size, got "
                f"{self.chunk_size}/{self.chunk_overlap}",
                fix="e.g. chunk_size=256, chunk_overlap=32",
            )


class Chunker:
    """Splits documents on paragraph, line, sentence, then word boundaries, by token count."""

    def __init__(self, config: ChunkerConfig | None = None) -> None:
        self.config = config or ChunkerConfig()

    @cached_property
    def count_tokens(self) -> Callable[[str], int]:
        from tokenizers import Tokenizer

        from orchestrator.retrieval.dense import default_model_dir

        tokenizer = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)

    def _splitter(self, markdown: bool, size: int) -> Any:
        from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

        seps = RecursiveCharacterTextSplitter.get_separators_for_language(Language.MARKDOWN)
        return RecursiveCharacterTextSplitter(
            separators=seps if markdown else ["\n\n", "\n", ". ", " ", ""],
            chunk_size=size,
            chunk_overlap=min(self.config.chunk_overlap, size // 2),
            length_function=self.count_tokens,
            keep_separator="end",
        )

    def split_new(
        self, docs: Sequence[SourceDocument], known: set[str], progress: bool = False
    ) -> list[Chunk]:
        """The chunks of ``docs`` whose ``chunk_id`` is not in ``known`` (which grows), in
        order: the one rule for "a stored chunk is never added again" of every backend."""
        from orchestrator.retrieval.progress import progress_task

        new: list[Chunk] = []
        with progress_task("chunking", len(docs), progress and len(docs) > 50) as advance:
            for doc in docs:
                for chunk in self.split(doc):
                    if chunk.chunk_id not in known:
                        known.add(chunk.chunk_id)
                        new.append(chunk)
                advance(1)
        return new

    def split(self, doc: SourceDocument) -> list[Chunk]:
        """Chunks of one document. A title heads every chunk (it is often the best summary of
        what the chunk is about), within the token budget. A paged document is split page by
        page, so each chunk has one ``page`` to cite."""
        header = f"{doc.title.strip()}\n" if doc.title.strip() else ""
        if not doc.text.strip() and not header:
            return []
        budget = max(8, self.config.chunk_size - self.count_tokens(header))
        markdown = doc.metadata.get("format") == "markdown"
        meta = {**doc.metadata, **({"title": doc.title} if doc.title else {})}
        sections: Sequence[tuple[int | None, str]] = doc.pages or ((None, doc.text),)
        chunks: list[Chunk] = []
        seen: set[str] = set()
        for page, section in sections:
            if page is not None and not section.strip():
                continue
            where = meta if page is None else {**meta, "page": page}
            for piece in self._pieces(section, markdown, budget):
                text = f"{header}{piece}".strip()
                cid = chunk_hash(doc.doc_id, text)
                if text and cid not in seen:
                    seen.add(cid)
                    chunks.append(Chunk(cid, doc.doc_id, text, doc.source, len(chunks), where))
        return chunks

    def _pieces(self, text: str, markdown: bool, budget: int) -> list[str]:
        if self.count_tokens(text) <= budget:
            return [text.strip()]
        return [p.strip() for p in self._splitter(markdown, budget).split_text(text)]


def to_source_documents(items: Sequence[Any]) -> list[SourceDocument]:
    """Accept ``SourceDocument``s, LangChain ``Document``s or ``{"doc_id", "text"}`` dicts."""
    out = []
    for i, item in enumerate(items):
        if isinstance(item, SourceDocument):
            out.append(item)
        elif hasattr(item, "page_content"):
            meta = dict(item.metadata or {})
            doc_id = str(meta.pop("doc_id", None) or getattr(item, "id", None) or f"doc-{i}")
            out.append(
                SourceDocument(
                    doc_id,
                    item.page_content,
                    str(meta.pop("source", "")),
                    str(meta.pop("title", "")),
                    meta,
                )
            )
        elif isinstance(item, dict) and "text" in item:
            own = ("doc_id", "text", "source", "title")
            meta = {k: v for k, v in item.items() if k not in own}
            doc_id, title = str(item.get("doc_id", f"doc-{i}")), str(item.get("title", ""))
            out.append(
                SourceDocument(doc_id, str(item["text"]), str(item.get("source", "")), title, meta)
            )
        else:
            raise OptionError(
                f"cannot index item {i} of type {type(item).__name__}",
                fix="pass paths, langchain Documents, or dicts with 'doc_id' and 'text'",
            )
    return out
