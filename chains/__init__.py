"""Chains: LLMChain, the sequential story chain, and (with retrieval) RAG chains."""

from chains.llm_chain import ChainMemory, LLMChain
from chains.story import story_chain

__all__ = ["ChainMemory", "LLMChain", "story_chain"]
