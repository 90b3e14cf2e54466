"""Prompt templates and chat formats. Imports nothing else of Orchestrator's."""

from orchestrator.prompts.chat_formats import (
    BUILTIN_FORMATS,
    ChatFormat,
    ChatTemplateError,
    format_from_template,
    infer_chat_format,
    model_chat_format,
    render_chat,
)
from orchestrator.prompts.library import PROMPTS, get_prompt
from orchestrator.prompts.templates import (
    PromptTemplate,
    defuse_values,
    instruction_prompt,
    model_in,
    safe_values,
    special_pattern_of,
)

__all__ = [
    "BUILTIN_FORMATS",
    "PROMPTS",
    "ChatFormat",
    "ChatTemplateError",
    "PromptTemplate",
    "defuse_values",
    "format_from_template",
    "get_prompt",
    "infer_chat_format",
    "instruction_prompt",
    "model_chat_format",
    "model_in",
    "render_chat",
    "safe_values",
    "special_pattern_of",
]
