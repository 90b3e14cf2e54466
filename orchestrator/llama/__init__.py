"""llama.cpp models as LangChain runnables."""

from orchestrator.llama.chat import ChatLlamaCpp
from orchestrator.llama.gbnf import gbnf_literal
from orchestrator.llama.llm import LlamaCpp

__all__ = ["ChatLlamaCpp", "LlamaCpp", "gbnf_literal"]
