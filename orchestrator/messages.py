"""Message content as plain text: the one definition the chat runtime and memory share.

LangChain message ``content`` is either a string or a list of content blocks (strings, or
dicts such as ``{"type": "text", "text": ...}``). A local model and a text transcript only
take text, so text blocks are joined and non-text blocks (images, tool-use blocks) count as
empty text. Kept in a small core module so ``memory`` can use it without loading the runtime.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage


def content_text(content: BaseMessage | str | list[Any]) -> str:
    """A message's content (or a content value) as plain text, text blocks joined."""
    if isinstance(content, BaseMessage):
        content = content.content
    if isinstance(content, str):
        return content
    return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content)


def as_text(value: Any) -> str:
    """A chain input or output as text: a message's content, else the value itself."""
    if isinstance(value, BaseMessage):
        return content_text(value)
    return value if isinstance(value, str) else str(value)
