"""Message histories: where a conversation's messages (and its running summary) are kept.

Every history is a LangChain ``BaseChatMessageHistory`` (so it also plugs into LangChain's own
``RunnableWithMessageHistory``) and adds two things memories need:

- :meth:`add_exchange`: a user message and its answer are stored together, atomically, so a
  crash never leaves a question without its answer;
- :meth:`load_summary` / :meth:`save_summary`: a summary memory's running summary and how many
  messages it covers, so a restart does not re-summarize the whole history.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Sequence
from typing import NamedTuple

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from orchestrator.errors import OptionError

#: Session names are keys, but people also use them as file names (``/save``): keep them tame.
_SESSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class SummaryState(NamedTuple):
    """A running summary and the number of stored messages it already covers."""

    text: str
    covered: int


def validate_session_id(session_id: str) -> str:
    """Return ``session_id`` if it is a safe name; raise :class:`OptionError` otherwise."""
    name = str(session_id)
    if isinstance(session_id, str) and _SESSION_RE.fullmatch(name) and ".." not in name:
        return session_id
    if not name:
        problem = "is empty"
    elif any(c in name for c in "/\\:\0") or ".." in name:
        problem = "contains path characters"
    elif len(name) > 64:
        problem = f"is {len(name)} characters long (at most 64)"
    else:
        problem = "contains characters that are not allowed"
    raise OptionError(
        f"session name {name!r} {problem}",
        fix="use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit "
        "(e.g. work-notes)",
    )


class SessionHistory(BaseChatMessageHistory):
    """A history that can store exchanges atomically and keep a running summary."""

    session_id: str

    def add_exchange(self, human: BaseMessage, ai: BaseMessage) -> None:
        """Store a question and its answer in one step (both or neither)."""
        self.add_messages([human, ai])

    @abstractmethod
    def load_summary(self) -> SummaryState | None:
        """The stored running summary, if any."""

    @abstractmethod
    def save_summary(self, text: str, covered: int) -> None:
        """Store the running summary covering the first ``covered`` messages."""


class InProcessHistory(SessionHistory):
    """Messages in a Python list: the default store, gone when the process ends."""

    def __init__(self, session_id: str = "default", messages: Sequence[BaseMessage] = ()) -> None:
        self.session_id = validate_session_id(session_id)
        self._messages: list[BaseMessage] = list(messages)
        self._summary: SummaryState | None = None

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        return list(self._messages)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        self._messages.extend(messages)

    def clear(self) -> None:
        self._messages.clear()
        self._summary = None

    def load_summary(self) -> SummaryState | None:
        return self._summary

    def save_summary(self, text: str, covered: int) -> None:
        self._summary = SummaryState(text, covered)


class InProcessStore:
    """Sessions kept in this process, keyed by session id (``store.history("work")``).

    Callable, so it can be passed where LangChain expects ``get_session_history``.
    """

    def __init__(self) -> None:
        self._sessions: dict[str, InProcessHistory] = {}

    def history(self, session_id: str) -> InProcessHistory:
        validate_session_id(session_id)
        if session_id not in self._sessions:
            self._sessions[session_id] = InProcessHistory(session_id)
        return self._sessions[session_id]

    __call__ = history

    def sessions(self) -> list[str]:
        return sorted(s for s, h in self._sessions.items() if h.messages)

    def close(self) -> None:
        """Nothing to release (kept for symmetry with :class:`memory.SQLiteStore`)."""
