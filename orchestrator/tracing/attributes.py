"""Span attributes from what LangChain's callbacks receive: inputs, messages, invocation
parameters, model results, documents, tool results, errors (with their ``fix``).

OpenTelemetry attributes are primitives or lists of them, so structures (messages, documents,
chain inputs) are JSON text here; the store turns them back into JSON values.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from langchain_core.prompt_values import PromptValue
from pydantic import BaseModel

from orchestrator.tracing import names

#: Characters kept of one string inside a chain's recorded input or output (prompts, answers,
#: documents and tool results are kept whole).
CHAIN_TEXT_LIMIT = 4000
ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
#: Invocation parameters recorded under the GenAI names, and under ours.
SAMPLING = {
    "temperature": names.TEMPERATURE,
    "top_p": names.TOP_P,
    "top_k": names.TOP_K,
    "max_tokens": names.MAX_TOKENS,
    "seed": names.SEED,
    "min_p": "orchestrator.request.min_p",
    "repeat_penalty": "orchestrator.request.repeat_penalty",
}
#: Run metadata naming a conversation (ours, LangGraph's, OpenAI's).
SESSION_KEYS = ("session_id", "thread_id", "conversation_id")
#: Run or document metadata worth keeping on a retriever span.
RETRIEVAL_KEYS = ("strategy", "backend", "mode", "index")


@dataclass(frozen=True)
class Privacy:
    """What is left out of recorded spans."""

    hide_inputs: bool = False
    hide_outputs: bool = False

    def hidden(self) -> dict[str, str]:
        sides = [
            s for s, on in (("inputs", self.hide_inputs), ("outputs", self.hide_outputs)) if on
        ]
        return {names.HIDDEN: ",".join(sides)} if sides else {}


def jsonable(value: Any, limit: int | None = None) -> Any:
    """``value`` as JSON-ready data (messages, documents, prompt values, pydantic models
    included); strings longer than ``limit`` are cut with a note of their length."""
    if isinstance(value, str):
        return (
            value
            if limit is None or len(value) <= limit
            else f"{value[:limit]}… [{len(value)} chars]"
        )
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, BaseMessage):
        return message(value)
    if isinstance(value, Document):
        return {
            "id": value.id,
            "text": jsonable(value.page_content, limit),
            "metadata": jsonable(value.metadata, limit),
        }
    if isinstance(value, PromptValue):
        return [message(m) for m in value.to_messages()]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, limit) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [jsonable(v, limit) for v in value]
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump(mode="json"), limit)
    return jsonable(str(value), limit)


def dumps(value: Any, limit: int | None = None) -> str:
    return json.dumps(jsonable(value, limit), ensure_ascii=False, default=str)


def message(value: BaseMessage) -> dict[str, Any]:
    """A LangChain message as a GenAI-convention message: ``{"role", "parts"}``."""
    content = value.content if isinstance(value.content, str) else json.dumps(value.content)
    parts: list[dict[str, Any]] = [{"type": "text", "content": content}] if content else []
    for call in getattr(value, "tool_calls", None) or []:
        parts.append({"type": "tool_call", "id": call.get("id"), "name": call.get("name"),
                      "arguments": call.get("args")})  # fmt: skip
    return {"role": ROLES.get(value.type, value.type), "parts": parts}


def session_of(metadata: Mapping[str, Any] | None) -> dict[str, str]:
    for key in SESSION_KEYS:
        if metadata and metadata.get(key):
            return {names.CONVERSATION: str(metadata[key])}
    return {}


def model_request(
    params: Mapping[str, Any] | None, metadata: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What a model was asked with: its label, provider, file, sampling, grammar, schema."""
    params, metadata = params or {}, metadata or {}
    found: dict[str, Any] = {}
    label = metadata.get("ls_model_name") or params.get("model_name") or params.get("model")
    if label:  # a GGUF by its file name, not its whole path
        label = str(label)
        found[names.REQUEST_MODEL] = os.path.basename(label) if label.endswith(".gguf") else label
    if metadata.get("ls_provider"):
        found[names.PROVIDER] = str(metadata["ls_provider"])
    if isinstance(params.get("model_path"), str):
        found[names.MODEL_PATH] = params["model_path"]
    fallback = {
        "temperature": metadata.get("ls_temperature"),
        "max_tokens": metadata.get("ls_max_tokens"),
    }
    for key, name in SAMPLING.items():
        value = params.get(key, fallback.get(key))
        if isinstance(value, int | float) and not isinstance(value, bool):
            found[name] = value
    stop = params.get("stop")
    if isinstance(stop, list | tuple) and stop:
        found[names.STOP] = [str(s) for s in stop]
    if isinstance(params.get("grammar"), str):
        found[names.GRAMMAR] = params["grammar"]
    schema = params.get("response_format") or params.get("json_schema") or params.get("schema")
    if schema is not None:
        found[names.SCHEMA] = dumps(schema)
    if params.get("tools"):
        found[names.TOOLS] = dumps(params["tools"])
    return found


def usage(result: LLMResult) -> dict[str, Any]:
    """Tokens in and out (``usage_metadata``, else the completion model's usage dict),
    ``cache_read``, finish reason, response model, and the engine's queue wait and slot."""
    generation = result.generations[0][0] if result.generations and result.generations[0] else None
    reply = getattr(generation, "message", None)
    info: dict[str, Any] = {**(getattr(generation, "generation_info", None) or {})}
    if isinstance(reply, BaseMessage):
        info.update(reply.response_metadata or {})
    counts = dict(getattr(reply, "usage_metadata", None) or {})
    if not counts:
        raw = info.get("usage") or (result.llm_output or {}).get("token_usage") or {}
        counts = {
            "input_tokens": raw.get("prompt_tokens"),
            "output_tokens": raw.get("completion_tokens"),
            "input_token_details": {"cache_read": raw.get("cached_tokens")},
        }
    found: dict[str, Any] = {
        names.INPUT_TOKENS: counts.get("input_tokens"),
        names.OUTPUT_TOKENS: counts.get("output_tokens"),
        names.CACHE_READ: (counts.get("input_token_details") or {}).get("cache_read"),
        names.RESPONSE_MODEL: info.get("model_name"),
        names.QUEUE_WAIT: info.get("queue_wait_s"),
        names.SLOT: info.get("slot"),
    }
    if info.get("finish_reason"):
        found[names.FINISH_REASONS] = [str(info["finish_reason"])]
    return {k: v for k, v in found.items() if v is not None}


def reply(result: LLMResult) -> str:
    """The model's reply as GenAI-convention output messages (JSON text)."""
    out = []
    for generation in result.generations[0] if result.generations else []:
        said = getattr(generation, "message", None)
        text = [{"type": "text", "content": generation.text}]
        entry: dict[str, Any] = message(said) if isinstance(said, BaseMessage) else {"parts": text}
        entry["role"] = "assistant"
        finish = (generation.generation_info or {}).get("finish_reason")
        if finish:
            entry["finish_reason"] = finish
        out.append(entry)
    return json.dumps(out, ensure_ascii=False, default=str)


def documents(docs: Sequence[Document], hide_outputs: bool) -> dict[str, Any]:
    """A retriever's result: ids and scores always; texts unless outputs are hidden."""
    ids = [str(d.metadata.get("doc_id") or d.metadata.get("chunk_id") or d.id or "") for d in docs]
    scores = [d.metadata.get("score") for d in docs]
    found: dict[str, Any] = {names.DOC_IDS: ids}
    if all(isinstance(s, int | float) for s in scores):
        found[names.SCORES] = [float(s) for s in scores]  # type: ignore[arg-type]
    for key in RETRIEVAL_KEYS:
        values = {str(d.metadata[key]) for d in docs if key in d.metadata}
        if len(values) == 1:
            found[f"orchestrator.retrieval.{key}"] = values.pop()
    if not hide_outputs:
        found[names.DOCUMENTS] = dumps([
            {"id": d.id, "text": d.page_content, "metadata": d.metadata} for d in docs
        ])  # fmt: skip
    return found


def error(exc: BaseException) -> dict[str, str]:
    """An error's type, message and, for Orchestrator's errors, its ``fix``."""
    found = {names.ERROR_TYPE: type(exc).__name__,
             names.ERROR_MESSAGE: str(getattr(exc, "message", None) or exc)}  # fmt: skip
    fix = getattr(exc, "fix", None)
    if isinstance(fix, str) and fix:
        found[names.ERROR_FIX] = fix
    return found
