"""The trace viewer's library half: what its pages show, as JSON-ready dicts (runs, a run's
span tree laid out on a timeline, per-pipeline summaries), and its static page (HTML, JS and
CSS, self-contained: nothing is fetched from the network).

The HTTP app that serves them is in the shell (``orchestrator.server.trace_viewer``, started
by ``orchestrator traces``); nothing here imports a web framework.
"""

from __future__ import annotations

from importlib import resources

from orchestrator.tracing.viewer.data import list_runs, run_detail, run_filter, span_sections
from orchestrator.tracing.viewer.summary import pipeline_summary, summarize

#: The page's files and their media types (nothing else is served as a file).
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "viewer.js": "text/javascript; charset=utf-8",
    "viewer.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


def asset(name: str) -> bytes:
    """One of :data:`ASSETS`, read from the package; ``KeyError`` for any other name."""
    if name not in ASSETS:
        raise KeyError(name)
    return resources.files(__name__).joinpath("static", name).read_bytes()


__all__ = [
    "ASSETS",
    "asset",
    "list_runs",
    "pipeline_summary",
    "run_detail",
    "run_filter",
    "span_sections",
    "summarize",
]
