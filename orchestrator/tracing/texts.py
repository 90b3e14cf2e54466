"""Plain text out of recorded values: a run's question and answer, a model call's prompt and
reply (what ``logs -q`` searches and ``logs export`` writes)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, TypeGuard

from orchestrator.tracing import names

#: Keys that hold the question of an input mapping, and the answer of an output mapping,
#: most telling first (our pipelines, LangChain's conventions, Ragas' names).
INPUT_KEYS = ("question", "input", "query", "user_input", "prompt", "messages")
OUTPUT_KEYS = ("answer", "output", "response", "text", "content", "result")


def parts_text(message: Mapping[str, Any]) -> str:
    """The text parts of one GenAI-convention message (``{"role", "parts": [...]}``)."""
    parts = message.get("parts") or []
    return "".join(str(p.get("content", "")) for p in parts if isinstance(p, Mapping))


def is_messages(value: Any) -> TypeGuard[list[Any]]:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, Mapping) and "role" in m for m in value)
    )


def messages_text(messages: list[Any], *, last_user: bool = False) -> str:
    """All messages as ``role: text`` paragraphs, or only the last user message's text."""
    if last_user:
        users = [m for m in messages if m.get("role") in ("user", "human")]
        chosen = users[-1:] or messages[-1:]
        return "\n\n".join(_message_text(m) for m in chosen)
    return "\n\n".join(f"{m.get('role', '')}: {_message_text(m)}" for m in messages)


def _message_text(message: Mapping[str, Any]) -> str:
    return parts_text(message) if "parts" in message else str(message.get("content", ""))


def text_of(value: Any, side: str = "input") -> str | None:
    """The question (``side="input"``) or answer (``"output"``) in a recorded value: a
    string as it is, a mapping's most telling key, messages' last user turn; else the JSON."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if is_messages(value):
        return messages_text(value, last_user=side == "input")
    if isinstance(value, Mapping):
        for key in INPUT_KEYS if side == "input" else OUTPUT_KEYS:
            if value.get(key) not in (None, ""):
                return text_of(value[key], side)
    return json.dumps(value, ensure_ascii=False, default=str)


def child_io(attributes: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """A span's question and answer: its recorded input/output, else its messages."""
    question = text_of(attributes.get(names.INPUT), "input")
    if question is None and isinstance(attributes.get(names.QUERY), str):
        question = attributes[names.QUERY]
    if question is None and is_messages(attributes.get(names.INPUT_MESSAGES)):
        question = messages_text(attributes[names.INPUT_MESSAGES], last_user=True)
    answer = text_of(attributes.get(names.OUTPUT), "output")
    if answer is None and is_messages(attributes.get(names.OUTPUT_MESSAGES)):
        answer = "\n\n".join(_message_text(m) for m in attributes[names.OUTPUT_MESSAGES])
    return question, answer


def span_texts(kind: str, attributes: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """The texts of a span that full-text search indexes: a model call's prompt and reply."""
    if kind != "llm":
        return
    prompt, reply = attributes.get(names.INPUT_MESSAGES), attributes.get(names.OUTPUT_MESSAGES)
    if is_messages(prompt):
        yield "prompt", messages_text(prompt)
    if is_messages(reply):
        yield "answer", "\n\n".join(_message_text(m) for m in reply)
