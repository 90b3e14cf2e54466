"""``web_search``: DuckDuckGo through the ddgs package, with a hard timeout.

When there is no network, the search hangs or DuckDuckGo rate-limits, the tool returns a plain
observation saying so (the agent carries on with its other tools); it never raises. The backend
is a plain callable, so tests use :class:`agents.testing.FakeSearchBackend` instead.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import CallbackManagerForToolRun
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field

from orchestrator.extras import MissingDependencyError, require

#: ``backend(query, max_results)`` -> results as dicts with ``title``, ``href``, ``body``.
SearchBackend = Callable[[str, int], list[dict[str, Any]]]

WEB_SEARCH_DESCRIPTION = (
    "Searches the web with DuckDuckGo for current information. "
    "Input: a short search query. Returns titles, snippets and links."
)


def require_ddgs() -> Any:
    """The ``ddgs`` module, or :class:`~orchestrator.extras.MissingDependencyError` whose fix
    is ``pip install "orchestrator[web]"`` (the CLI checks this before loading a model)."""
    return require("ddgs", extra="web", purpose="the web_search tool")


def ddgs_backend(timeout: float) -> SearchBackend:
    """The real DuckDuckGo text search (ddgs is imported on first use)."""

    def search(query: str, max_results: int) -> list[dict[str, Any]]:
        ddgs = require_ddgs()
        client = ddgs.DDGS(timeout=max(1, math.ceil(timeout)))
        return list(client.text(query, max_results=max_results))

    return search


def classify_failure(exc: BaseException) -> str:
    """A short, plain reason for a failed search (what the agent and the user read)."""
    if isinstance(exc, MissingDependencyError):  # not a search failure: say what to install
        return f"{exc.message}; install it with: {exc.fix}"
    name = type(exc).__name__.lower()
    text = f"{name} {exc}".lower()
    if "ratelimit" in name or "429" in text or "rate limit" in text or "ratelimit" in text:
        return "DuckDuckGo is rate-limiting requests"
    if "timeout" in name or "timed out" in text:
        return "the search timed out"
    network = ("dns", "resolve", "connect", "network", "unreachable", "name or service")
    if isinstance(exc, OSError) or any(word in text for word in network):
        return "there is no network connection"
    return f"the search failed ({type(exc).__name__})"


def call_with_timeout(
    fn: Callable[[], list[dict[str, Any]]], timeout: float
) -> list[dict[str, Any]]:
    """``fn()`` in a daemon thread; :class:`TimeoutError` when it does not return in time.

    A daemon thread, so a search stuck in a socket never keeps the process alive at exit.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="web-search", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout:g}s (timed out)")
    if "error" in box:
        raise box["error"]
    return list(box.get("value") or [])


def format_results(results: list[dict[str, Any]], snippet_chars: int) -> str:
    """One line per result, like LangChain's ``DuckDuckGoSearchResults``."""
    lines = []
    for item in results:
        body = str(item.get("body") or item.get("snippet") or "").strip()
        if len(body) > snippet_chars:
            body = body[:snippet_chars].rstrip() + "..."
        title = str(item.get("title") or "").strip()
        link = str(item.get("href") or item.get("link") or item.get("url") or "").strip()
        lines.append(f"snippet: {body}, title: {title}, link: {link}")
    return "\n".join(lines)


class DuckDuckGoSearchResults(BaseTool):
    """Web search results as text (name ``web_search``); failures become plain observations."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "web_search"
    description: str = WEB_SEARCH_DESCRIPTION
    max_results: int = Field(default=4, ge=1, le=20)
    timeout: float = Field(default=8.0, gt=0)
    snippet_chars: int = Field(default=300, ge=20)
    backend: SearchBackend | None = None
    """Where results come from; ``None``: DuckDuckGo through ddgs."""

    def _run(self, query: str, run_manager: CallbackManagerForToolRun | None = None) -> str:
        query = query.strip().strip("\"'")
        if not query:
            return "Web search needs a query: pass a few keywords."
        backend = self.backend or ddgs_backend(self.timeout)
        try:
            results = call_with_timeout(lambda: backend(query, self.max_results), self.timeout)
        except Exception as exc:
            reason = classify_failure(exc)
            return (
                f"Web search is unavailable: {reason}. "
                "Answer from what you already know or use another tool."
            )
        if not results:
            return f"No web results for {query!r}."
        return format_results(results[: self.max_results], self.snippet_chars)
