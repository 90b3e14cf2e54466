"""Chains: LLMChain, the sequential story chain, prompting techniques, and (with retrieval) RAG
chains and RAG strategies (rewrite, multi-query, HyDE, multi-hop, routing)."""

from orchestrator.chains.llm_chain import ChainMemory, LLMChain
from orchestrator.chains.rag import RAGChain, RetrievalQA, rag_chain
from orchestrator.chains.story import story_chain
from orchestrator.chains.strategies import (
    RAG_STRATEGIES,
    HydeRAG,
    MultiQueryRAG,
    RewriteRAG,
    rag_strategy,
)
from orchestrator.chains.strategies_base import StrategyChain
from orchestrator.chains.strategies_hops import MultiHopRAG, RouteRAG
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
    "RAG_STRATEGIES",
    "ChainMemory",
    "ChainOfThought",
    "FewShotAnswer",
    "HydeRAG",
    "LLMChain",
    "MultiHopRAG",
    "MultiQueryRAG",
    "PlainAnswer",
    "RAGChain",
    "RetrievalQA",
    "RewriteRAG",
    "RouteRAG",
    "SelfConsistency",
    "StrategyChain",
    "TreeOfThought",
    "prompt_technique",
    "rag_chain",
    "rag_strategy",
    "story_chain",
]
