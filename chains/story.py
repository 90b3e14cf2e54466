"""The book's sequential story chain: summary -> title -> character -> story."""

from __future__ import annotations

from typing import Any

from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import Runnable

from chains.llm_chain import LLMChain
from prompts.library import CHARACTER, STORY, TITLE


def instruction_prompt(llm: Any, text: str) -> PromptTemplate:
    """A prompt for ``llm``: completion models that know a chat format get ``text`` wrapped as a
    user turn (the book writes Phi-3's tags by hand); chat models wrap it themselves."""
    wrap = getattr(llm, "wrap_user_prompt", None)
    return PromptTemplate.from_template(wrap(text) if callable(wrap) else text)


def story_chain(llm: Any) -> Runnable[Any, dict[str, Any]]:
    """A chain taking a summary (or ``{"summary": ...}``) and returning
    ``summary``, ``title``, ``character`` and ``story``."""
    title = LLMChain(llm=llm, prompt=instruction_prompt(llm, TITLE), output_key="title")
    character = LLMChain(llm=llm, prompt=instruction_prompt(llm, CHARACTER), output_key="character")
    story = LLMChain(llm=llm, prompt=instruction_prompt(llm, STORY), output_key="story")
    return title | character | story
