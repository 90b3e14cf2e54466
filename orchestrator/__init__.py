"""Orchestrator: LLM applications on your own machine (GGUF models through llama.cpp).

Heavy modules load lazily, so ``import orchestrator`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.errors import (
    ContextOverflowError,
    DataError,
    ModelLoadError,
    OptionError,
    OrchestratorError,
)
from orchestrator.lazy import lazy_getattr

__version__ = "0.1.0"

_LAZY = {
    "LlamaCpp": "orchestrator.llama.llm",
    "ChatLlamaCpp": "orchestrator.llama.chat",
}

if TYPE_CHECKING:
    from orchestrator.llama.chat import ChatLlamaCpp
    from orchestrator.llama.llm import LlamaCpp


__getattr__ = lazy_getattr("orchestrator", _LAZY)


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
