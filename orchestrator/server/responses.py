"""The OpenAI response objects: whole answers, stream chunks and server-sent events."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.server.generation import Piece, Tokens

DONE = "data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> str:
    """One server-sent event carrying ``payload`` as JSON; a typed Responses API event also
    names its type in an ``event:`` line, as OpenAI sends it."""
    kind = payload.get("type")
    head = f"event: {kind}\n" if isinstance(kind, str) else ""
    return f"{head}data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


@dataclass
class Collected:
    """A whole answer gathered from its pieces (one entry per choice index)."""

    texts: dict[int, list[str]] = field(default_factory=dict)
    finish: dict[int, str] = field(default_factory=dict)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    usage: Tokens = field(default_factory=Tokens)

    def add(self, piece: Piece) -> None:
        index = piece.index
        self.texts.setdefault(index, []).append(piece.text)
        self.tool_calls.extend(piece.tool_calls or ())
        if piece.fields:
            self.fields.update({k: v for k, v in piece.fields.items() if k != "step"})
            if "step" in piece.fields:
                self.fields.setdefault("steps", []).append(piece.fields["step"])
        if piece.finish_reason is not None:
            self.finish[index] = piece.finish_reason
        self.usage.add(piece.usage)

    def text(self, index: int = 0) -> str:
        return "".join(self.texts.get(index, []))


class Shape(Protocol):
    """How one endpoint shapes an answer: whole, or as the payloads of its events."""

    path: str
    model: str

    def opening(self) -> list[dict[str, Any]]: ...

    def chunks(self, piece: Piece) -> list[dict[str, Any]]: ...

    def usage_chunk(self, usage: Tokens) -> dict[str, Any]: ...

    def whole(self, got: Collected, n_choices: int = 1) -> dict[str, Any]: ...


class _Objects:
    """What every object of one request's answer carries: its id, time and model."""

    prefix: str

    def __init__(self, model: str) -> None:
        self.id = f"{self.prefix}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model

    def _head(self, kind: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
        }


class ChatShape(_Objects):
    """``chat.completion`` and ``chat.completion.chunk`` objects for one request."""

    path = "/v1/chat/completions"
    prefix = "chatcmpl"

    def opening(self) -> list[dict[str, Any]]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def _chunk(
        self, delta: dict[str, Any], finish: str | None = None, fields: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**self._head("chat.completion.chunk"), "choices": [choice], **(fields or {})}

    def chunks(self, piece: Piece) -> list[dict[str, Any]]:
        delta: dict[str, Any] = {}
        if piece.text:
            delta["content"] = piece.text
        if piece.tool_calls:
            delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(piece.tool_calls)]
        if not delta and not piece.fields and piece.finish_reason is None:
            return []
        return [self._chunk(delta, piece.finish_reason, piece.fields)]

    def usage_chunk(self, usage: Tokens) -> dict[str, Any]:
        return {**self._head("chat.completion.chunk"), "choices": [], "usage": usage.openai()}

    def whole(self, got: Collected, n_choices: int = 1) -> dict[str, Any]:
        text = got.text().strip()
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if got.tool_calls and not text else text,
            "refusal": None,
        }
        if got.tool_calls:
            message["tool_calls"] = got.tool_calls
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": got.finish.get(0, "stop"),
        }
        return {
            **self._head("chat.completion"),
            "choices": [choice],
            "usage": got.usage.openai(),
            **got.fields,
        }


class CompletionShape(_Objects):
    """``text_completion`` objects (whole and streamed) for one request."""

    path = "/v1/completions"
    prefix = "cmpl"

    def opening(self) -> list[dict[str, Any]]:
        return []

    def chunks(self, piece: Piece) -> list[dict[str, Any]]:
        if not piece.text and piece.finish_reason is None:
            return []
        choice = {
            "text": piece.text,
            "index": piece.index,
            "logprobs": None,
            "finish_reason": piece.finish_reason,
        }
        return [{**self._head("text_completion"), "choices": [choice]}]

    def usage_chunk(self, usage: Tokens) -> dict[str, Any]:
        return {**self._head("text_completion"), "choices": [], "usage": usage.openai()}

    def whole(self, got: Collected, n_choices: int = 1) -> dict[str, Any]:
        choices = [
            {
                "text": got.text(i),
                "index": i,
                "logprobs": None,
                "finish_reason": got.finish.get(i, "stop"),
            }
            for i in range(n_choices)
        ]
        return {**self._head("text_completion"), "choices": choices, "usage": got.usage.openai()}


def embedding_list(
    model: str, vectors: Sequence[Any], encoding: str, prompt_tokens: int
) -> dict[str, Any]:
    """The ``/v1/embeddings`` answer; ``base64`` is little-endian float32, as OpenAI sends."""
    import base64

    import numpy as np

    data = []
    for i, vector in enumerate(vectors):
        values = np.asarray(vector, dtype="<f4")
        embedding: Any = (
            base64.b64encode(values.tobytes()).decode("ascii")
            if encoding == "base64"
            else [float(v) for v in values]
        )
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
