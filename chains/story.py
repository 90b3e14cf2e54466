"""The book's sequential story chain: summary -> title -> character -> story."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import Runnable

from orchestrator.chains.llm_chain import LLMChain
from orchestrator.prompts.library import CHARACTER, STORY, TITLE
from orchestrator.prompts.templates import instruction_prompt


def story_chain(llm: Any) -> Runnable[Any, dict[str, Any]]:
    """A chain taking a summary (or ``{"summary": ...}``) and returning
    ``summary``, ``title``, ``character`` and ``story``.

    Each step's prompt is wrapped as a user turn for completion models
    (:func:`~orchestrator.prompts.templates.instruction_prompt`); the summary and the generated
    title and character are filled in defused, so none of them can open a turn.
    """
    title = LLMChain(llm=llm, prompt=instruction_prompt(llm, TITLE), output_key="title")
    character = LLMChain(llm=llm, prompt=instruction_prompt(llm, CHARACTER), output_key="character")
    story = LLMChain(llm=llm, prompt=instruction_prompt(llm, STORY), output_key="story")
    return title | character | story
