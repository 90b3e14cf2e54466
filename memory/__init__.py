"""Conversation memory and durable sessions.

Memories with the names LangChain users know (the book's code runs with only its imports
changed), message stores (in-process, or an SQLite file keyed by session id), a wrapper that
gives any Runnable a memory, and :class:`Conversation`, the turn loop the chat REPL runs on.
"""

from orchestrator.memory.base import ConversationMemory
from orchestrator.memory.buffers import (
    ConversationBufferMemory,
    ConversationBufferWindowMemory,
    ConversationTokenBufferMemory,
    keep_recent,
)
from orchestrator.memory.conversation import Conversation, MessageBuilder, history_messages
from orchestrator.memory.factory import MEMORY_KINDS, create_memory
from orchestrator.memory.history import (
    InProcessHistory,
    InProcessStore,
    SessionHistory,
    SummaryState,
    validate_session_id,
)
from orchestrator.memory.runnable import RunnableWithMemory
from orchestrator.memory.sqlite_store import (
    SessionInfo,
    SQLiteHistory,
    SQLiteStore,
    default_store_path,
)
from orchestrator.memory.summary import ConversationSummaryMemory, default_summary_prompt
from orchestrator.memory.summary_buffer import ConversationSummaryBufferMemory

#: LangChain's name for the base class of chat memories.
BaseChatMemory = ConversationMemory

__all__ = [
    "MEMORY_KINDS",
    "BaseChatMemory",
    "Conversation",
    "ConversationBufferMemory",
    "ConversationBufferWindowMemory",
    "ConversationMemory",
    "ConversationSummaryBufferMemory",
    "ConversationSummaryMemory",
    "ConversationTokenBufferMemory",
    "InProcessHistory",
    "InProcessStore",
    "MessageBuilder",
    "RunnableWithMemory",
    "SQLiteHistory",
    "SQLiteStore",
    "SessionHistory",
    "SessionInfo",
    "SummaryState",
    "create_memory",
    "default_store_path",
    "default_summary_prompt",
    "history_messages",
    "keep_recent",
    "validate_session_id",
]
