"""Memories by name, for command lines and config files: ``create_memory("window", k=3)``."""

from __future__ import annotations

import difflib
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory

from orchestrator.errors import OptionError
from orchestrator.memory.base import ConversationMemory
from orchestrator.memory.buffers import (
    ConversationBufferMemory,
    ConversationBufferWindowMemory,
    ConversationTokenBufferMemory,
)
from orchestrator.memory.summary import ConversationSummaryMemory
from orchestrator.memory.summary_buffer import ConversationSummaryBufferMemory

MEMORY_KINDS: dict[str, type[ConversationMemory]] = {
    "buffer": ConversationBufferMemory,
    "window": ConversationBufferWindowMemory,
    "summary": ConversationSummaryMemory,
    "tokens": ConversationTokenBufferMemory,
    "summary-buffer": ConversationSummaryBufferMemory,
}
#: Kinds that take a token limit (``max_token_limit``), and kinds that need ``llm=``.
TOKEN_LIMITED = ("tokens", "summary-buffer")
NEEDS_LLM = ("summary", "tokens", "summary-buffer")


def create_memory(
    kind: str,
    *,
    llm: Any = None,
    k: int | None = None,
    max_token_limit: int | None = None,
    chat_memory: BaseChatMessageHistory | None = None,
    **options: Any,
) -> ConversationMemory:
    """A memory of ``kind`` (buffer, window, summary, tokens, summary-buffer) over
    ``chat_memory``.

    ``k`` is for ``window`` only, ``max_token_limit`` for ``tokens`` and ``summary-buffer``;
    ``llm`` is needed by ``summary`` (writes the summary), ``tokens`` (counts tokens) and
    ``summary-buffer`` (both). Other options go to the class (``return_messages=True``,
    ``memory_key=...``).
    """
    cls = MEMORY_KINDS.get(kind)
    if cls is None:
        close = difflib.get_close_matches(str(kind), MEMORY_KINDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise OptionError(
            f"unknown memory kind {kind!r}",
            fix=f"{hint}choose one of: {', '.join(MEMORY_KINDS)}",
        )
    if k is not None and kind != "window":
        raise OptionError(
            f"k applies to the window memory only, not {kind!r}",
            fix="drop k, or use the window memory",
        )
    if max_token_limit is not None and kind not in TOKEN_LIMITED:
        raise OptionError(
            f"a token limit applies to the tokens and summary-buffer memories only, not {kind!r}",
            fix="drop the token limit, or use the tokens or summary-buffer memory",
        )
    if k is not None:
        options["k"] = k
    if max_token_limit is not None:
        options["max_token_limit"] = max_token_limit
    if kind in NEEDS_LLM:
        if llm is None:
            raise OptionError(f"the {kind} memory needs llm=", fix="pass the model")
        options["llm"] = llm
    if chat_memory is not None:
        options["chat_memory"] = chat_memory
    return cls(**options)
