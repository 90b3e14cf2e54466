"""The ``response`` object and its stream events, shaped from the pieces of a chat answer.

:class:`ResponseShape` plays the part :class:`~orchestrator.server.responses.ChatShape` plays
for chat completions, so ``routes.answer`` runs both the same way. Streamed, it sends the
events the official client folds into a response (``response.created``,
``response.in_progress``, ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta`` ..., ``response.function_call_arguments.delta`` / ``.done``,
``response.output_item.done``, then ``response.completed``, or ``response.incomplete`` when
``max_output_tokens`` cut the answer), each numbered by ``sequence_number``. Whole or
streamed, the finished response is handed to ``record`` (the response store).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from orchestrator.server.generation import Piece, Tokens
from orchestrator.server.responses import Collected

Record = Callable[[dict[str, Any], Collected], None]


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def usage(tokens: Tokens) -> dict[str, Any]:
    """Token counts as the Responses API names them (no reasoning tokens here)."""
    return {
        "input_tokens": tokens.prompt,
        "input_tokens_details": {"cached_tokens": tokens.cached, "cache_write_tokens": 0},
        "output_tokens": tokens.completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": tokens.prompt + tokens.completion,
    }


class _Trim:
    """Streams text with the whitespace around it removed, as the whole answer is stripped:
    leading whitespace is dropped, trailing whitespace held back until more text follows."""

    def __init__(self) -> None:
        self.started, self.pending = False, ""

    def __call__(self, text: str) -> str:
        if not self.started:
            text = text.lstrip()
            if not text:
                return ""
            self.started = True
        text = self.pending + text
        body = text.rstrip()
        self.pending = text[len(body) :]
        return body


def message_item(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [output_text(text)]
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content,
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(call: dict[str, Any], arguments: str, status: str) -> dict[str, Any]:
    """A chat tool call as a ``function_call`` item; its chat id is the ``call_id``."""
    return {
        "type": "function_call",
        "id": f"fc_{call['id'].removeprefix('call_')}",
        "call_id": call["id"],
        "name": call["function"]["name"],
        "arguments": arguments,
        "status": status,
    }


class ResponseShape:
    """The ``response`` object (whole or as events) of one ``/v1/responses`` request."""

    path = "/v1/responses"

    def __init__(self, model: str, echo: dict[str, Any], record: Record) -> None:
        self.id, self.model = new_id("resp"), model
        self.created = int(time.time())
        self.echo, self.record = echo, record
        self.sequence = 0
        self.got = Collected()
        self.message_id = new_id("msg")
        self.message_index: int | None = None
        self.output_count = 0
        self.trim = _Trim()
        self.streamed: list[str] = []

    def response(
        self, status: str, output: list[dict[str, Any]], got: Collected | None = None
    ) -> dict[str, Any]:
        finish = got.finish.get(0, "stop") if got is not None else None
        cut = finish == "length"
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "completed_at": int(time.time()) if got is not None else None,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
            "model": self.model,
            "output": output,
            "usage": usage(got.usage) if got is not None else None,
            **self.echo,
            **(got.fields if got is not None else {}),
        }

    def whole(self, got: Collected, n_choices: int = 1) -> dict[str, Any]:
        status = _status(got)
        text = got.text().strip()
        output = (
            [] if got.tool_calls and not text else [message_item(self.message_id, text, status)]
        )
        output += [call_item(c, c["function"]["arguments"], "completed") for c in got.tool_calls]
        body = self.response(status, output, got)
        self.record(body, got)
        return body

    # streamed

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def opening(self) -> list[dict[str, Any]]:
        started = self.response("in_progress", [])
        return [
            self._event("response.created", response=started),
            self._event("response.in_progress", response=started),
        ]

    def chunks(self, piece: Piece) -> list[dict[str, Any]]:
        self.got.add(piece)
        events: list[dict[str, Any]] = []
        text = self.trim(piece.text) if piece.text else ""
        if text:
            events += self._open_message()
            self.streamed.append(text)
            events.append(self._part_event("response.output_text.delta", delta=text, logprobs=[]))
        for call in piece.tool_calls or ():
            events += self._close_message("completed")
            events += self._call_events(call)
        if piece.finish_reason is not None:
            events += self._finish()
        return events

    def usage_chunk(self, tokens: Tokens) -> dict[str, Any]:
        """Never sent (the endpoint does not ask for a usage chunk): usage travels in the
        final ``response.completed`` event."""
        return {"usage": usage(tokens)}

    def _part_event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return self._event(
            kind,
            item_id=self.message_id,
            output_index=self.message_index,
            content_index=0,
            **fields,
        )

    def _open_message(self) -> list[dict[str, Any]]:
        if self.message_index is not None:
            return []
        self.message_index, self.output_count = self.output_count, self.output_count + 1
        item = message_item(self.message_id, None, "in_progress")
        return [
            self._event("response.output_item.added", output_index=self.message_index, item=item),
            self._part_event("response.content_part.added", part=output_text("")),
        ]

    def _close_message(self, status: str) -> list[dict[str, Any]]:
        if self.message_index is None or self.message_index < 0:
            return []
        text = "".join(self.streamed)
        done = message_item(self.message_id, text, status)
        events = [
            self._part_event("response.output_text.done", text=text, logprobs=[]),
            self._part_event("response.content_part.done", part=output_text(text)),
            self._event("response.output_item.done", output_index=self.message_index, item=done),
        ]
        self.message_index = -1  # closed: no more text goes to it
        return events

    def _call_events(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        index, self.output_count = self.output_count, self.output_count + 1
        arguments = call["function"]["arguments"]
        added = call_item(call, "", "in_progress")
        where = {"item_id": added["id"], "output_index": index}
        return [
            self._event("response.output_item.added", output_index=index, item=added),
            self._event("response.function_call_arguments.delta", **where, delta=arguments),
            self._event(
                "response.function_call_arguments.done",
                **where,
                name=added["name"],
                arguments=arguments,
            ),
            self._event(
                "response.output_item.done",
                output_index=index,
                item=call_item(call, arguments, "completed"),
            ),
        ]

    def _finish(self) -> list[dict[str, Any]]:
        """Close the message (sent empty when nothing else was), then the whole response."""
        status = _status(self.got)
        events: list[dict[str, Any]] = []
        if self.message_index is None and not self.got.tool_calls:
            events += self._open_message()
        events += self._close_message(status)
        body = self.whole(self.got)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [*events, self._event(kind, response=body)]


def _status(got: Collected) -> str:
    return "incomplete" if got.finish.get(0) == "length" else "completed"
