"""One recorded model call, rebuilt and run again: the model from the recorded file and
sampling, the call from the recorded messages or prompt, grammar, schema, tools and stop
sequences. The result goes through the recorder's own functions (:func:`attributes.reply`,
:func:`attributes.usage`), so what is compared is what would have been recorded.

Used by :mod:`orchestrator.tracing.replay`; nothing here reads the store.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel, BaseLLM
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import LLMResult

from orchestrator.models.options import DEFAULT_SAMPLING
from orchestrator.tracing import attributes as attrs
from orchestrator.tracing import names

#: Attributes replay reads when a span has them (the recorder does not write them yet): the
#: llama.cpp build (:func:`current_build` at record time), the model's ``chat_format`` option
#: and the call's ``tool_choice``. Without them replay assumes, and says so.
BUILD = "orchestrator.engine.build"
CHAT_FORMAT = "orchestrator.request.chat_format"
TOOL_CHOICE = "orchestrator.request.tool_choice"
#: The seed the engine drew for a call that asked for none (``seed=-1``).
DRAWN_SEED = "orchestrator.engine.seed"
#: How the engine was loaded (GPU offload changes the kernels, so the logits).
ENGINE_OPTIONS = {
    "n_ctx": "orchestrator.engine.n_ctx",
    "n_gpu_layers": "orchestrator.engine.n_gpu_layers",
    "n_parallel": "orchestrator.engine.n_parallel",
}
#: Sampling options by what they change: every call; sampled calls (temperature > 0) only.
ALWAYS = ("repeat_penalty",)
SAMPLED = ("top_k", "top_p", "min_p")
#: What a recorded call's result is compared on (the recorder's own attributes).
COMPARED = (
    names.OUTPUT_MESSAGES,
    names.OUTPUT_TOKENS,
    names.FINISH_REASONS,
    names.INPUT_TOKENS,
)
_HASHES: dict[tuple[str, int, int], str] = {}


def current_build() -> str:
    """The llama.cpp build this process runs: llama-cpp-python's version and llama.cpp's
    system info (backends and CPU features, which decide the kernels that compute logits)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info()
    text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    return f"llama-cpp-python {llama_cpp.__version__}; {' '.join(text.split())}"


def file_sha256(path: str) -> str:
    """The SHA-256 of the file at ``path``, as the recorder hashes a GGUF (whole file;
    remembered per path, size and mtime for this process)."""
    info = os.stat(path)
    key = (path, info.st_size, info.st_mtime_ns)
    if key not in _HASHES:
        with open(path, "rb") as handle:
            _HASHES[key] = hashlib.file_digest(handle, "sha256").hexdigest()
    return _HASHES[key]


@dataclass
class CallPlan:
    """How a recorded call is run again, and what the record did not say (``missing``: each
    line names the gap and what replay assumed; ``blocker``: why it cannot be replayed)."""

    chat: bool
    options: dict[str, Any]
    call: dict[str, Any]
    prompt: Any
    missing: list[str] = field(default_factory=list)
    blocker: str | None = None


def _sampling(a: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The recorded sampling options, and lines for those that matter but were not recorded."""
    options = {k: a[n] for k, n in attrs.SAMPLING.items() if n in a}
    if options.get("seed", -1) < 0 and isinstance(a.get(DRAWN_SEED), int):
        options["seed"] = a[DRAWN_SEED]
    missing: list[str] = []
    sampled = options.get("temperature", DEFAULT_SAMPLING.temperature) > 0
    for key in ALWAYS + (SAMPLED if sampled else ()):
        if key not in options:
            missing.append(f"{key} (replayed with the default, {getattr(DEFAULT_SAMPLING, key)})")
    if "temperature" not in options:
        missing.append(f"temperature (replayed with the default, {DEFAULT_SAMPLING.temperature})")
    return options, missing


def _message(entry: dict[str, Any]) -> BaseMessage:
    """A recorded GenAI-convention message (``{"role", "parts"}``) as a LangChain message."""
    parts = entry.get("parts") or []
    text = "".join(str(p.get("content", "")) for p in parts if p.get("type") == "text")
    role = str(entry.get("role", "user"))
    if role == "assistant":
        calls = [
            {"name": p.get("name"), "args": p.get("arguments") or {}, "id": p.get("id")}
            for p in parts
            if p.get("type") == "tool_call"
        ]
        return AIMessage(content=text, tool_calls=calls)
    if role == "tool":
        return ToolMessage(content=text, tool_call_id="replay")
    kinds = {"user": HumanMessage, "system": SystemMessage}
    return kinds[role](content=text) if role in kinds else ChatMessage(role=role, content=text)


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _extras(a: dict[str, Any], chat: bool) -> tuple[dict[str, Any], list[str]]:
    """The call's grammar, schema, tools and stop sequences, as the call passed them."""
    call: dict[str, Any] = {}
    missing: list[str] = []
    if names.STOP in a:
        call["stop"] = list(a[names.STOP])
    if names.GRAMMAR in a:
        call["grammar"] = a[names.GRAMMAR]
    if chat and names.SCHEMA in a:
        call["response_format"] = _json_value(a[names.SCHEMA])
    if chat and names.TOOLS in a:
        call["tools"] = _json_value(a[names.TOOLS])
        if TOOL_CHOICE in a:
            call["tool_choice"] = _json_value(a[TOOL_CHOICE])
        else:
            missing.append("tool_choice (replayed as 'auto'; a forced tool call would differ)")
    return call, missing


def plan(span_attributes: dict[str, Any], model_path: str) -> CallPlan:
    """How to run the recorded call again on the GGUF at ``model_path``."""
    a = span_attributes
    chat = a.get(names.OPERATION) == names.CHAT
    options, missing = _sampling(a)
    call, more = _extras(a, chat)
    engine = {k: a[n] for k, n in ENGINE_OPTIONS.items() if isinstance(a.get(n), int)}
    options = {"model_path": model_path, **options, **engine}
    if chat:
        if CHAT_FORMAT in a:
            options["chat_format"] = a[CHAT_FORMAT]
        else:
            missing.append("chat_format (replayed with the GGUF's own chat template)")
    turns = a.get(names.INPUT_MESSAGES)
    result = CallPlan(chat, options, call, None, missing + more)
    if not isinstance(turns, list):
        result.blocker = "the record holds no input (recorded with hide_inputs)"
    elif chat:
        result.prompt = [_message(t) for t in turns if isinstance(t, dict)]
    else:
        first = turns[0] if turns and isinstance(turns[0], dict) else {}
        result.prompt = "".join(
            str(p.get("content", "")) for p in first.get("parts") or [] if p.get("type") == "text"
        )
    seed = options.get("seed")
    if options.get("temperature", DEFAULT_SAMPLING.temperature) > 0 and (seed is None or seed < 0):
        result.blocker = (
            f"a sampled call (temperature {options.get('temperature')}) with no fixed seed in "
            "the record: a replay would draw another random seed, so it cannot be exact "
            "(record with a seed the recorder keeps, e.g. invoke(..., seed=7))"
        )
    return result


def build_model(call: CallPlan) -> BaseChatModel | BaseLLM:
    """A fresh ``ChatLlamaCpp`` / ``LlamaCpp`` with the recorded options (the loaded engine
    is shared with any model on the same file; LangChain's cache is bypassed)."""
    from orchestrator.llama.chat import ChatLlamaCpp
    from orchestrator.llama.llm import LlamaCpp

    kind = ChatLlamaCpp if call.chat else LlamaCpp
    return kind(**call.options, cache=False)


def run_call(model: BaseChatModel | BaseLLM, call: CallPlan) -> dict[str, Any]:
    """Run the planned call; what the recorder would have recorded of its result (or of its
    error: type and message)."""
    kwargs = dict(call.call)
    stop = kwargs.pop("stop", None)
    try:
        result: LLMResult = model.generate([call.prompt], stop=stop, **kwargs)
    except Exception as exc:  # the recorded call may have failed too: compared as an error
        return attrs.error(exc)
    found = attrs.usage(result)
    found[names.OUTPUT_MESSAGES] = json.loads(attrs.reply(result))
    return found


def normalized(messages: Any) -> Any:
    """Recorded output messages without what differs on every run (tool call ids)."""
    if not isinstance(messages, list):
        return messages
    out = []
    for entry in messages:
        if isinstance(entry, dict):
            parts = [
                {k: v for k, v in p.items() if k != "id"} if isinstance(p, dict) else p
                for p in entry.get("parts") or []
            ]
            entry = {**entry, "parts": parts}
        out.append(entry)
    return out


def output_text(messages: Any) -> str:
    """The text of recorded output messages (tool calls as the JSON the model wrote)."""
    pieces = []
    for entry in messages if isinstance(messages, list) else []:
        for part in entry.get("parts") or [] if isinstance(entry, dict) else []:
            if part.get("type") == "text":
                pieces.append(str(part.get("content", "")))
            elif part.get("type") == "tool_call":
                call = {"name": part.get("name"), "arguments": part.get("arguments")}
                pieces.append(json.dumps(call, ensure_ascii=False))
    return "\n".join(pieces)


def first_token_difference(
    model: BaseChatModel | BaseLLM, expected: str, got: str
) -> tuple[int, str, str] | None:
    """Where ``got`` first differs from ``expected``, tokenized by the model's own tokenizer:
    (token index, expected token, got token); ``<end>`` where one text ran out first."""
    engine = getattr(model, "engine")  # noqa: B009  (ChatLlamaCpp and LlamaCpp both have it)
    ours, theirs = (engine.tokenize(t, special=False) for t in (expected, got))
    for index, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a != b:
            return index, _piece(engine, a), _piece(engine, b)
    if len(ours) == len(theirs):
        return None
    index = min(len(ours), len(theirs))
    return (
        index,
        _piece(engine, ours[index]) if index < len(ours) else "<end>",
        _piece(engine, theirs[index]) if index < len(theirs) else "<end>",
    )


def _piece(engine: Any, token: int) -> str:
    return bytes(engine.piece(token)).decode("utf-8", "replace")
