"""Shared parts of the tracing tests: a store that records for one test, small runnables."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable

from orchestrator.testing import ScriptedChatModel
from orchestrator.tracing import RunSummary, SpanView, TraceStore, flush

DOCS = [
    Document("The Eiffel Tower is 330 metres tall.", id="c1", metadata={"doc_id": "tower"}),
    Document("The Golden Gate Bridge is in San Francisco.", id="c2", metadata={"doc_id": "bridge"}),
]
for _doc, _score in zip(DOCS, (0.9, 0.4), strict=True):
    _doc.metadata["score"] = _score


class ListRetriever(BaseRetriever):
    """Returns :data:`DOCS` for any query (with their scores)."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return list(DOCS)


def greeting_chain(replies: list[str]) -> Runnable[Any, str]:
    """prompt | scripted chat model | parser: three child spans under the chain's."""
    model = ScriptedChatModel(replies=list[str | AIMessage](replies))
    return ChatPromptTemplate.from_template("Say hi to {name}") | model | StrOutputParser()


def recorded(path: Path) -> list[tuple[RunSummary, list[SpanView]]]:
    """Every run in the store at ``path`` (once what was recorded is written), oldest first."""
    assert flush()
    with TraceStore(path) as store:
        return [(run, store.spans(run.run_id)) for run in reversed(store.runs())]


def wait_for(check: Callable[[], Any], what: str, limit: float = 60.0) -> Any:
    """Poll ``check`` until it returns something true (another process writes the store)."""
    deadline = time.monotonic() + limit
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def by_kind(spans: list[SpanView], kind: str) -> list[SpanView]:
    return [s for s in spans if s.kind == kind]


def assert_one_tree(spans: list[SpanView]) -> None:
    """Every span's parent is a span of the same run; exactly one has no parent."""
    ids = {s.span_id for s in spans}
    assert len({s.run_id for s in spans}) == 1
    assert [s.parent_id for s in spans].count(None) == 1
    assert all(s.parent_id is None or s.parent_id in ids for s in spans)


def store_runs(path: Path) -> Iterator[RunSummary]:
    with TraceStore(path) as store:
        yield from store.runs()
