"""``build(spec)``: the one builder every entry point runs a pipeline spec through."""

from __future__ import annotations

from typing import Any

from orchestrator.agents.pipelines.specs import AgentSpec, RagSpec, StorySpec


def build_story(spec: StorySpec, *, llm: Any = None) -> Any:
    """The story chain (``invoke({"summary": ...})``); ``llm``: an already-made model."""
    from orchestrator.chains.story import story_chain

    if llm is None:
        from orchestrator.models import chat_model

        llm = chat_model(spec.model)
    return story_chain(llm)


def build(spec: RagSpec | AgentSpec | StorySpec, **parts: Any) -> Any:
    """The runnable ``spec`` names:

    - ``rag``: input ``{"question": ...}``; streamed parts with ``sources``, ``answer`` and
      the strategy's trace (:func:`~orchestrator.agents.pipelines.rag.build_rag`);
    - ``agent``: an ``AgentExecutor`` (``{"input": ...}``;
      :func:`~orchestrator.agents.pipelines.agent.build_agent`);
    - ``story``: the story chain (``{"summary": ...}``).

    ``parts``: already-made parts or presentation options the kind's builder takes (``llm``,
    ``retrievers``; an agent's ``verbose``, ``console``, ``on_close``).
    """
    if isinstance(spec, RagSpec):
        from orchestrator.agents.pipelines.rag import build_rag

        return build_rag(spec, **parts)
    if isinstance(spec, AgentSpec):
        from orchestrator.agents.pipelines.agent import build_agent

        return build_agent(spec, **parts)
    return build_story(spec, **parts)
