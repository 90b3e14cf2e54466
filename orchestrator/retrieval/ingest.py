"""Ingestion: load text, Markdown, JSONL and BEIR corpora; split them into token-sized chunks.

Chunk length is counted in the default embedder's word pieces (so a chunk fits the model's
input), with overlap between consecutive chunks so a sentence cut at a boundary is still
whole in one of them. Every chunk keeps its document id, source and the document's metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from orchestrator.errors import DataError, OptionError
from orchestrator.retrieval.beir import is_beir_dir, load_corpus, read_jsonl
from orchestrator.retrieval.types import Chunk, SourceDocument, chunk_hash

TEXT_SUFFIXES = (".txt", ".text")
MARKDOWN_SUFFIXES = (".md", ".markdown")
JSONL_SUFFIXES = (".jsonl",)
SUPPORTED = TEXT_SUFFIXES + MARKDOWN_SUFFIXES + JSONL_SUFFIXES
_TEXT_KEYS = ("text", "page_content", "content", "body")
_ID_KEYS = ("_id", "doc_id", "id")


def load_documents(paths: Iterable[str | Path]) -> Iterator[SourceDocument]:
    """Documents from files and directories (directories: BEIR corpus, else files inside)."""
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise DataError(f"{path} does not exist", fix="check the path you passed")
        if is_beir_dir(path):
            yield from _beir_documents(path)
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED)
            for file in files:
                yield from _file_documents(file, base=path)
        else:  # a single file is named by the path as passed, so a/notes.md != b/notes.md
            yield from _file_documents(path, base=None)


def _beir_documents(root: Path) -> Iterator[SourceDocument]:
    source = str(root / "corpus.jsonl")
    for doc_id, row in load_corpus(root / "corpus.jsonl").items():
        meta = {k: v for k, v in row.items() if k not in ("title", "text")}
        yield SourceDocument(doc_id, str(row["text"]), source, str(row["title"]), meta)


def _file_documents(path: Path, base: Path | None) -> Iterator[SourceDocument]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise OptionError(
            f"cannot ingest {path}: unsupported file type {suffix or '(none)'}",
            fix=f"use one of {', '.join(SUPPORTED)} or a BEIR directory",
        )
    if suffix in JSONL_SUFFIXES:
        yield from _jsonl_documents(path)
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    doc_id = str(path.relative_to(base)) if base is not None else path.as_posix()
    kind = "markdown" if suffix in MARKDOWN_SUFFIXES else "text"
    yield SourceDocument(doc_id, text, str(path), "", {"format": kind})


def _jsonl_documents(path: Path) -> Iterator[SourceDocument]:
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
        yield SourceDocument(doc_id, str(row[text_key]), str(path), str(row.get("title", "")), meta)


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

    def split(self, doc: SourceDocument) -> list[Chunk]:
        """Chunks of one document. A title heads every chunk (it is often the best summary of
        what the chunk is about), within the token budget."""
        header = f"{doc.title.strip()}\n" if doc.title.strip() else ""
        if not doc.text.strip() and not header:
            return []
        budget = max(8, self.config.chunk_size - self.count_tokens(header))
        if self.count_tokens(doc.text) <= budget:
            pieces = [doc.text]
        else:
            markdown = doc.metadata.get("format") == "markdown"
            pieces = self._splitter(markdown, budget).split_text(doc.text)
        meta = {**doc.metadata, **({"title": doc.title} if doc.title else {})}
        chunks: list[Chunk] = []
        seen: set[str] = set()
        for piece in (p.strip() for p in pieces):
            text = f"{header}{piece}".strip()
            cid = chunk_hash(doc.doc_id, text)
            if text and cid not in seen:
                seen.add(cid)
                chunks.append(Chunk(cid, doc.doc_id, text, doc.source, len(chunks), meta))
        return chunks


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
