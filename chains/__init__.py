"""Chains: LLMChain, the sequential story chain, and (with retrieval) RAG chains."""

from orchestrator.chains.llm_chain import ChainMemory, LLMChain
from orchestrator.chains.rag import RAGChain, RetrievalQA, rag_chain
from orchestrator.chains.story import story_chain

__all__ = ["ChainMemory", "LLMChain", "RAGChain", "RetrievalQA", "rag_chain", "story_chain"]
