"""Chains: LLMChain, the sequential story chain, prompting techniques, and (with retrieval) RAG
chains and RAG strategies (rewrite, multi-query, HyDE, multi-hop, routing)."""

from orchestrator.chains.llm_chain import ChainMemory, LLMChain
from orchestrator.chains.rag import RAGChain, RetrievalQA, rag_chain
from orchestrator.chains.sources import Sources
from orchestrator.chains.story import story_chain
from orchestrator.chains.strategies import (
    RAG_STRATEGIES,
    HydeSources,
    MultiHopSources,
    MultiQuerySources,
    RewriteSources,
    RouteSources,
    rag_strategy,
)
from orchestrator.chains.techniques import (
    PROMPT_TECHNIQUES,
    ChainOfThought,
    FewShotAnswer,
    PlainAnswer,
    SelfConsistency,
    TreeOfThought,
    prompt_technique,
)

__all__ = [
    "PROMPT_TECHNIQUES",
    "RAG_STRATEGIES",
    "ChainMemory",
    "ChainOfThought",
    "FewShotAnswer",
    "HydeSources",
    "LLMChain",
    "MultiHopSources",
    "MultiQuerySources",
    "PlainAnswer",
    "RAGChain",
    "RetrievalQA",
    "RewriteSources",
    "RouteSources",
    "SelfConsistency",
    "Sources",
    "TreeOfThought",
    "prompt_technique",
    "rag_chain",
    "rag_strategy",
    "story_chain",
]
