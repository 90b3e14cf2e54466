"""The process-wide cache of loaded engines: objects naming the same file and settings share
one :class:`~orchestrator.llama.engine.Engine`; whether llama.cpp can offload to a GPU; and
freeing every context at exit, while the interpreter is still whole."""

from __future__ import annotations

import atexit
import contextlib
import threading
from typing import TYPE_CHECKING

from orchestrator.errors import ModelLoadError
from orchestrator.gguf_info import read_gguf_info

if TYPE_CHECKING:
    from orchestrator.llama.engine import Engine, EngineKey

_ENGINES: dict[EngineKey, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def gpu_backend_available() -> bool:
    """Whether layers can go to a GPU: llama.cpp says yes only when it was built with a GPU
    backend and that backend found a device (a CUDA build on a machine without a GPU: no)."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def gpu_layers_offloaded(requested: int, n_layers: int, gpu: bool | None = None) -> int:
    """How many layers llama.cpp puts on the GPU for ``n_gpu_layers=requested`` on a model of
    ``n_layers`` blocks: none without a GPU backend (``gpu``: detected when None); for a
    negative request all blocks plus the output layer; else the request, capped at that."""
    if gpu is None:
        gpu = gpu_backend_available()
    if requested == 0 or not gpu:
        return 0
    return n_layers + 1 if requested < 0 else min(requested, n_layers + 1)


def get_engine(key: EngineKey) -> Engine:
    """The shared engine for ``key``, loading the model on first use."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = load_engine(key)
        return engine


def release_engines() -> None:
    """Drop every cached engine; its memory is freed once no model object refers to it."""
    with _ENGINES_LOCK:
        _ENGINES.clear()


def _close_at_exit() -> None:
    """Free llama.cpp contexts while the interpreter is still whole (at shutdown their
    ``__del__`` would run after llama_cpp's globals are gone and print ignored errors).
    An engine another thread is still using is left alone."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        with contextlib.suppress(Exception):
            engine.close()


atexit.register(_close_at_exit)


def load_engine(key: EngineKey) -> Engine:
    """Load the model ``key`` names (uncached: use :func:`get_engine`)."""
    import llama_cpp

    from orchestrator.llama import cpu_repack
    from orchestrator.llama.batch import use_sequences
    from orchestrator.llama.engine import Engine

    cpu_repack.apply()
    info = read_gguf_info(key.path)
    offloaded = gpu_layers_offloaded(key.n_gpu_layers, info.n_layers or 0)
    try:
        llama = llama_cpp.Llama(
            model_path=key.path,
            n_ctx=key.n_ctx,
            n_gpu_layers=key.n_gpu_layers if gpu_backend_available() else 0,
            n_threads=key.n_threads,
            n_threads_batch=key.n_threads,
            n_batch=min(key.n_batch, key.n_ctx),
            verbose=key.verbose,
        )
        if key.n_seq > 1:
            use_sequences(llama, key.n_ctx, key.n_seq)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelLoadError(
            f"llama.cpp could not load {key.path} (architecture {info.architecture!r}): {exc}",
            fix="check that this llama-cpp-python supports the architecture "
            "(pip install -U llama-cpp-python) and that the file is a complete GGUF",
        ) from exc
    return Engine(key=key, info=info, llama=llama, gpu_layers_offloaded=offloaded)
