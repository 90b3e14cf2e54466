"""Chains: LLMChain, the sequential story chain, prompting techniques, and (with retrieval) RAG
chains."""

from orchestrator.chains.llm_chain import ChainMemory, LLMChain
from orchestrator.chains.rag import RAGChain, RetrievalQA, rag_chain
from orchestrator.chains.story import story_chain
from orchestrator.chains.techniques import (
    PROMPT_TECHNIQUES,
    ChainOfThought,
    FewShotAnswer,
    PlainAnswer,
    SelfConsistency,
    prompt_technique,
)
from orchestrator.chains.techniques_tot import TreeOfThought

__all__ = [
    "PROMPT_TECHNIQUES",
    "ChainMemory",
    "ChainOfThought",
    "FewShotAnswer",
    "LLMChain",
    "PlainAnswer",
    "RAGChain",
    "RetrievalQA",
    "SelfConsistency",
    "TreeOfThought",
    "prompt_technique",
    "rag_chain",
    "story_chain",
]
