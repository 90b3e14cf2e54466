"""llama.cpp models as LangChain runnables."""

from orchestrator.llama.chat import ChatLlamaCpp
from orchestrator.llama.llm import LlamaCpp

__all__ = ["ChatLlamaCpp", "LlamaCpp"]
