"""Orchestrator: LLM applications on your own machine (GGUF models through llama.cpp).

Heavy modules load lazily, so ``import orchestrator`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.errors import (
    ContextOverflowError,
    DataError,
    ModelLoadError,
    OptionError,
    OrchestratorError,
)

__version__ = "0.1.0"

_LAZY = {
    "LlamaCpp": "orchestrator.llama.llm",
    "ChatLlamaCpp": "orchestrator.llama.chat",
}

if TYPE_CHECKING:
    from orchestrator.llama.chat import ChatLlamaCpp
    from orchestrator.llama.llm import LlamaCpp


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "ChatLlamaCpp",
    "ContextOverflowError",
    "DataError",
    "LlamaCpp",
    "ModelLoadError",
    "OptionError",
    "OrchestratorError",
    "__version__",
]
