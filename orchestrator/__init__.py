"""Orchestrator: LLM applications on your own machine (GGUF models through llama.cpp).

Heavy modules load lazily, so ``import orchestrator`` stays fast.
"""

from __future__ import annotations

# First, before anything imports a dependency: no telemetry from any of them (see privacy.py).
from orchestrator.privacy import disable_telemetry

disable_telemetry()

from typing import TYPE_CHECKING  # noqa: E402

from orchestrator.errors import (  # noqa: E402
    ContextOverflowError,
    DataError,
    ModelLoadError,
    OptionError,
    OrchestratorError,
)
from orchestrator.lazy import lazy_getattr  # noqa: E402

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
