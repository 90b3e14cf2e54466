"""Summary-buffer memory: a running summary of old turns plus the recent turns verbatim.

LangChain's ``ConversationSummaryBufferMemory(llm=..., max_token_limit=...)``: the newest
messages are shown as they were said while they fit ``max_token_limit`` tokens of the model's
own tokenizer; once they do not, the oldest are folded into the summary (``prune``).

It is built from the two memories it combines, so each rule exists once: the summarizer
(prompt, defusing, :meth:`predict_new_summary`, the stored :class:`SummaryState`) comes from
:class:`~orchestrator.memory.summary.ConversationSummaryMemory`, and the token budget (per
message counts with ``llm.get_num_tokens``, :func:`~orchestrator.memory.buffers.keep_recent`)
from :class:`~orchestrator.memory.buffers.ConversationTokenBufferMemory`.

Stored messages are never deleted (as for the other memories): the summary is stored with the
number of messages it covers, so the buffer is simply the messages after those. A session in
an SQLite store therefore resumes with both its summary and its buffer, without an LLM call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, NamedTuple

from langchain_core.messages import BaseMessage, SystemMessage
from pydantic import model_validator

from orchestrator.memory.base import ConversationMemory
from orchestrator.memory.buffers import ConversationTokenBufferMemory, keep_recent
from orchestrator.memory.history import SummaryState
from orchestrator.memory.summary import ConversationSummaryMemory


class _Plan(NamedTuple):
    """What the stored conversation looks like, and which messages must be summarized."""

    state: SummaryState
    buffer: list[BaseMessage]
    """Messages shown verbatim (after ``pruned`` is folded in)."""
    pruned: list[BaseMessage]
    """The oldest unsummarized messages that no longer fit the token limit."""


class ConversationSummaryBufferMemory(ConversationSummaryMemory, ConversationTokenBufferMemory):
    """A running summary of old exchanges plus the recent ones within ``max_token_limit``.

    Options are LangChain's: ``llm`` (writes the summary and counts tokens),
    ``max_token_limit`` (2000), ``moving_summary_buffer`` (a starting summary), ``prompt``
    (takes ``{summary}`` and ``{new_lines}``), ``summary_message_cls`` (``SystemMessage``),
    ``memory_key``, ``return_messages``, ``human_prefix``, ``ai_prefix``, ``input_key``,
    ``output_key``, ``chat_memory``. Rendered as LangChain renders it: the summary as a first
    system message, then the buffer (``System: ...\\nHuman: ...\\nAI: ...`` as a string).
    """

    extra_option_names = ("moving_summary_buffer",)

    summary_message_cls: type[BaseMessage] = SystemMessage

    @model_validator(mode="before")
    @classmethod
    def _accept_buffer(cls, data: Any) -> Any:
        """LangChain's seed is ``moving_summary_buffer`` here (``buffer`` is not an option)."""
        if isinstance(data, dict) and "moving_summary_buffer" in data:
            data = {**data, "buffer_seed": data.pop("moving_summary_buffer")}
        return data

    # -- the one core: plan what to fold, then commit the new summary ----------------------

    def _plan(self) -> _Plan:
        """Read the stored summary and messages; split off what exceeds the token limit.

        The buffer is the longest run of newest messages within ``max_token_limit`` (never
        starting with an answer whose question was folded in); everything older that the
        summary does not cover yet is ``pruned``. No LLM call here."""
        state = self._load_state()
        messages = self.chat_memory.messages
        if state.covered > len(messages):  # the history was cleared behind our back
            state = SummaryState(self.buffer_seed, 0)
        unsummarized = messages[state.covered :]
        kept = keep_recent(unsummarized, self.max_token_limit, self.count)
        pruned = unsummarized[: len(unsummarized) - len(kept)]
        return _Plan(state, kept, pruned)

    def _commit(self, plan: _Plan, text: str | None) -> _Plan:
        """Store ``text`` as the summary now covering the pruned messages too."""
        state = plan.state
        if plan.pruned and text is not None:
            state = SummaryState(text, state.covered + len(plan.pruned))
            self._store_state(state)
        self._state = state
        return _Plan(state, plan.buffer, [])

    def _view(self) -> _Plan:
        plan = self._plan()
        text = self.predict_new_summary(plan.pruned, plan.state.text) if plan.pruned else None
        return self._commit(plan, text)

    async def _aview(self) -> _Plan:
        """:meth:`_view` for async callers: storage in a worker thread, the LLM awaited."""
        plan = await asyncio.to_thread(self._plan)
        text = (
            await self.apredict_new_summary(plan.pruned, plan.state.text) if plan.pruned else None
        )
        return await asyncio.to_thread(self._commit, plan, text)

    def _catch_up(self) -> SummaryState:
        return self._view().state

    def _messages_of(self, plan: _Plan) -> list[BaseMessage]:
        head = [self.summary_message_cls(content=plan.state.text)] if plan.state.text else []
        return [*head, *plan.buffer]

    # -- LangChain's API ---------------------------------------------------------------------

    @property
    def moving_summary_buffer(self) -> str:
        """The running summary of the messages no longer in the buffer."""
        return self.summary

    @moving_summary_buffer.setter
    def moving_summary_buffer(self, text: str) -> None:
        """Replace the summary (LangChain code sets it); it still covers the same messages."""
        state = SummaryState(text, self._view().state.covered)
        self._store_state(state)
        self._state = state

    @property
    def buffer(self) -> str | list[BaseMessage]:
        return self.render(self.context_messages())

    def context_messages(self) -> list[BaseMessage]:
        """The summary (as ``summary_message_cls``) and the recent messages verbatim."""
        return self._messages_of(self._view())

    def load_memory_variables(self, inputs: Any = None) -> dict[str, Any]:
        return ConversationMemory.load_memory_variables(self, inputs)

    def prune(self) -> None:
        """Fold the oldest messages into the summary while the buffer exceeds the limit."""
        self._view()

    def clear(self) -> None:
        """Forget the conversation and the summary (a seed too, as LangChain does)."""
        super().clear()
        self.buffer_seed = ""

    async def abuffer(self) -> str | list[BaseMessage]:
        return self.render(self._messages_of(await self._aview()))

    async def aload_memory_variables(self, inputs: Any = None) -> dict[str, Any]:
        return {self.memory_key: await self.abuffer()}

    async def asave_context(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        await asyncio.to_thread(ConversationMemory.save_context, self, inputs, outputs)
        await self.aprune()

    async def aprune(self) -> None:
        await self._aview()

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)
