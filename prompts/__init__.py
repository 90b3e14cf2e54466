"""Prompt templates and chat formats. Imports nothing else of Orchestrator's."""

from prompts.chat_formats import (
    BUILTIN_FORMATS,
    ChatFormat,
    ChatTemplateError,
    format_from_template,
    render_chat,
)
from prompts.library import PROMPTS, get_prompt

__all__ = [
    "BUILTIN_FORMATS",
    "PROMPTS",
    "ChatFormat",
    "ChatTemplateError",
    "format_from_template",
    "get_prompt",
    "render_chat",
]
