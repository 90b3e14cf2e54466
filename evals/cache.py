"""A cache of the answers and verdicts of an evaluation, in SQLite under ``$ORCHESTRATOR_HOME``.

Evaluations call models in two places: the pipeline answering (``evals.qa.answer_samples``,
and a strategy's query writing) and the judge (``evals.judge.LlamaJudge``). Each of those
models is wrapped in :class:`CachedChatModel`, which keys every call on what determines its
reply:

- the model: its GGUF file's SHA-256 (a served model: ``NAME at URL``) and its options
  (sampling, seed, ``max_tokens``, context, chat format) from its ``ModelSpec``;
- the rendered prompt (every message's role and text: the retrieved passages are in it);
- the call's options: ``stop``, ``max_tokens``, the grammar or JSON schema constraining it;
- the scope: for answers, the version of each index searched (a digest of its manifest).

A re-run with nothing changed is answered from the cache; any changed part misses. A call with
a random seed (``seed=-1``) or a reply carrying tool calls is never cached. The file is
``$ORCHESTRATOR_HOME/eval-cache.sqlite3``; its schema is append-only migrations
(:mod:`orchestrator.migrations`). ``--no-cache`` turns the cache off for a run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

from orchestrator.errors import DataError
from orchestrator.migrations import Migration, check_order, pending
from orchestrator.models import ModelSpec, capabilities

CACHE_FILE = "eval-cache.sqlite3"
_TABLE = "orchestrator_migrations"
MIGRATIONS: tuple[Migration, ...] = (
    (
        "0001_replies_file_digests",
        "CREATE TABLE replies (key TEXT PRIMARY KEY, kind TEXT NOT NULL, reply TEXT NOT NULL, "
        "created REAL NOT NULL);"
        "CREATE TABLE file_digests (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
        "mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL)",
    ),
)
check_order(MIGRATIONS)


def default_path() -> Path:
    from orchestrator.settings import data_home

    return data_home() / CACHE_FILE


class EvalCache:
    """The cache file, shared by the threads of a run; ``counts`` are its hits and misses by
    kind (``answers``, ``verdicts``)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.counts: dict[str, dict[str, int]] = {}

    def _db(self) -> sqlite3.Connection:
        """The connection, opened (and the file migrated) on first use, under the lock: a run
        that calls no model never creates the file."""
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            try:
                _migrate(conn, self.path)
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise DataError(
                    f"{self.path} is not a usable evaluation cache ({exc})",
                    fix=f"move it aside (mv {self.path} {self.path}.bak), or run with --no-cache",
                ) from None
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def get(self, key: str, kind: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db().execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
            tally = self.counts.setdefault(kind, {"hits": 0, "misses": 0})
            tally["hits" if row else "misses"] += 1
        return json.loads(row[0]) if row else None

    def put(self, key: str, kind: str, reply: Mapping[str, Any]) -> None:
        text = json.dumps(reply, ensure_ascii=False, default=str)
        with self._lock:
            self._db().execute(
                "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)", (key, kind, text, time.time())
            )
            self._db().commit()

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {k: dict(v) for k, v in self.counts.items()}

    def file_sha256(self, path: str | Path) -> str:
        """The file's SHA-256, remembered by path, size and modification time."""
        file = Path(path).expanduser().resolve()
        stat = file.stat()
        with self._lock:
            row = (
                self._db()
                .execute(
                    "SELECT sha256 FROM file_digests WHERE path = ? AND size = ? AND mtime_ns = ?",
                    (str(file), stat.st_size, stat.st_mtime_ns),
                )
                .fetchone()
            )
        if row:
            return str(row[0])
        digest = sha256_of(file)
        with self._lock:
            self._db().execute(
                "INSERT OR REPLACE INTO file_digests VALUES (?, ?, ?, ?)",
                (str(file), stat.st_size, stat.st_mtime_ns, digest),
            )
            self._db().commit()
        return digest

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the migrations the file lacks, in one transaction (refusing a newer file's)."""
    from orchestrator.memory.sqlite_schema import statements

    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {_TABLE} (name TEXT PRIMARY KEY, applied REAL)")
        done = [r[0] for r in conn.execute(f"SELECT name FROM {_TABLE}")]
        fix = "upgrade Orchestrator, or set $ORCHESTRATOR_HOME elsewhere, or use --no-cache"
        for name, sql in pending(MIGRATIONS, done, store=f"the eval cache {path}", fix=fix):
            for statement in statements(sql):
                conn.execute(statement)
            conn.execute(f"INSERT INTO {_TABLE} VALUES (?, ?)", (name, time.time()))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def counts_since(before: Mapping[str, Mapping[str, int]], cache: EvalCache) -> dict[str, Any]:
    """The hits and misses by kind since ``before`` (a :meth:`EvalCache.snapshot`)."""
    now = cache.snapshot()
    return {
        kind: {k: v - before.get(kind, {}).get(k, 0) for k, v in tally.items()}
        for kind, tally in now.items()
    }


def model_digest(spec: ModelSpec, cache: EvalCache | None = None) -> str:
    """The identity of ``spec``'s model file: its SHA-256 (a served model: ``served:NAME at
    URL``, which cannot be hashed)."""
    from orchestrator.models import is_served

    if is_served(spec):
        from orchestrator.models.factory import endpoint_of

        endpoint = endpoint_of(spec)
        return f"served:{spec.model or ''} at {getattr(endpoint, 'base_url', spec.base_url)}"
    from orchestrator.settings import resolve_model_path

    path = resolve_model_path(spec.model)
    return cache.file_sha256(path) if cache is not None else sha256_of(path.resolve())


def model_identity(spec: ModelSpec, cache: EvalCache) -> dict[str, Any]:
    """What of ``spec`` decides a reply: the file digest and every option but the path."""
    options = spec.to_dict()
    options.pop("model", None)
    return {"sha256": model_digest(spec, cache), **options}


def index_versions(spec: Any) -> list[str]:
    """A digest of each index a RAG spec searches (its stored manifest: files, generation)."""
    from orchestrator.retrieval.stores import backend_of

    out = []
    for index in spec.indexes:
        try:
            manifest = backend_of(index).manifest(index)
        except Exception:  # an index that cannot be read yet: keyed by its spec
            manifest = {"spec": str(index)}
        text = json.dumps(manifest, sort_keys=True, default=str)
        out.append(hashlib.sha256(text.encode()).hexdigest())
    return out


def call_key(
    identity: Mapping[str, Any],
    messages: Sequence[BaseMessage],
    stop: Sequence[str] | None,
    options: Mapping[str, Any],
    scope: Mapping[str, Any],
) -> str:
    """The cache key of one call (see the module docstring)."""
    payload = {
        "model": identity,
        "messages": [[m.type, m.content] for m in messages],
        "stop": list(stop or []),
        "options": dict(options),
        "scope": dict(scope),
    }
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class CachedChatModel(BaseChatModel):
    """``inner`` with its replies kept in ``store`` (an :class:`EvalCache`) under ``kind``
    (see the module docstring). Capabilities, labels and token counts are the inner model's.
    Not LangChain's own ``cache=``: its key names the model by path, not by file digest, it
    keeps no hit counts, and a streamed call (the judge streams) bypasses it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: Any
    store: Any
    kind: str
    identity: dict[str, Any]
    scope: dict[str, Any] = Field(default_factory=dict)

    @property
    def _llm_type(self) -> str:
        return "eval-cache"

    @property
    def info(self) -> Any:
        return getattr(self.inner, "info", None)

    @property
    def label(self) -> Any:
        return getattr(self.inner, "label", None)

    def model_capabilities(self) -> Any:
        return dataclasses.replace(capabilities(self.inner), model=self)

    def get_num_tokens(self, text: str) -> int:
        return capabilities(self.inner).count_tokens(text)

    def _key(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: Any) -> str | None:
        if self.identity.get("seed") == -1 or kwargs.get("tools"):
            return None
        return call_key(self.identity, messages, stop, kwargs, self.scope)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        key = self._key(messages, stop, kwargs)
        found = self.store.get(key, self.kind) if key else None
        if found is not None:
            message = AIMessage(found["content"], response_metadata=found.get("metadata", {}))
        else:
            message = self.inner.invoke(messages, stop=stop, **kwargs)
            self._store(key, message)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        key = self._key(messages, stop, kwargs)
        found = self.store.get(key, self.kind) if key else None
        if found is not None:
            metadata = found.get("metadata", {})
            yield ChatGenerationChunk(
                message=AIMessageChunk(content=found["content"], response_metadata=metadata)
            )
            return
        whole: AIMessageChunk | None = None
        for chunk in self.inner.stream(messages, stop=stop, **kwargs):
            whole = chunk if whole is None else whole + chunk
            yield ChatGenerationChunk(message=chunk)
        self._store(key, whole)

    def _store(self, key: str | None, message: BaseMessage | None) -> None:
        if key is None or message is None or getattr(message, "tool_calls", None):
            return
        metadata = {k: v for k, v in message.response_metadata.items() if k in ("finish_reason",)}
        self.store.put(key, self.kind, {"content": message.content, "metadata": metadata})


def cached(
    llm: Any,
    cache: EvalCache | None,
    kind: str,
    spec: ModelSpec,
    scope: Mapping[str, Any] | None = None,
) -> Any:
    """``llm`` wrapped in :class:`CachedChatModel` (``llm`` itself without a cache)."""
    if cache is None:
        return llm
    identity = model_identity(spec, cache)
    return CachedChatModel(
        inner=llm, store=cache, kind=kind, identity=identity, scope=dict(scope or {})
    )
