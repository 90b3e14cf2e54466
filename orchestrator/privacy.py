"""No telemetry, from any dependency: every opt-out in one place, set before any of them loads.

Why: several dependencies count, identify or phone home by default, and some do it from native
code that no Python-level socket guard sees. ``import orchestrator`` (any ``orchestrator.*``)
calls :func:`disable_telemetry` first, so the opt-outs are in ``os.environ`` before those
libraries are imported or initialised; child processes (``orchestrator serve`` workers, MCP
servers, a local Ray's processes) inherit them, and Ray workers on other nodes get them through
:func:`opt_out_env`. Each is a ``setdefault``: a variable you set yourself wins, so you can opt
back in (``ORT_DISABLE_TELEMETRY=0``) on purpose.

What each stops (checked against the installed versions; the test is
``tests/test_no_telemetry.py``):

- ONNX Runtime (the embedder's runtime) >= 1.29 on Linux/macOS: Microsoft 1DS telemetry, a
  persistent device id and an event store under ``~/.cache/Microsoft/DeveloperTools/.onnxruntime``
  and uploads to ``mobile.events.data.microsoft.com``, all from native code at the first
  ``import onnxruntime``. 1.29-1.32 read ``ORT_DISABLE_TELEMETRY`` (microsoft/onnxruntime#27379),
  later releases ``ORT_TELEMETRY_DISABLED`` (#29843); the choice is latched when ONNX Runtime
  initialises, so it must be in the environment before that.
- Ray: usage statistics to ``usage-stats.ray.io`` (``RAY_USAGE_STATS_ENABLED``, exactly ``0``).
- Ragas: usage events to ``t.explodinggradients.com`` (``RAGAS_DO_NOT_TRACK``), and a persistent
  user id (``~/.local/share/ragas/uuid.json``) that Ragas 0.4 writes for every event it builds,
  sent or not: :func:`quiet_ragas` stops that one.
- Hugging Face hub (transformers, sentence-transformers, datasets): telemetry pings and
  user-agent details (``HF_HUB_DISABLE_TELEMETRY``; ``DO_NOT_TRACK`` is the shared convention
  that huggingface_hub and hf_xet also read).
- OpenAI Agents SDK (tests and your own code): traces to ``api.openai.com`` whenever an
  ``OPENAI_API_KEY`` is around (``OPENAI_AGENTS_DISABLE_TRACING``).

Nothing to switch off: LangSmith traces only when you set ``LANGSMITH_TRACING`` (setting a
default here would override that choice under its other spellings); FastAPI's OpenTelemetry
exports only to an endpoint you configure; llama.cpp, FAISS, PostgreSQL (pgserver), torch,
matplotlib and ddgs (only when the web tool is asked for) send nothing. Model files are never
downloaded (``local_files_only`` everywhere), so ``HF_HUB_OFFLINE`` is not forced on your process.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

#: ONNX Runtime's opt-out under both names it has had.
ONNXRUNTIME_OPT_OUTS = {"ORT_DISABLE_TELEMETRY": "1", "ORT_TELEMETRY_DISABLED": "1"}
#: Ray's usage statistics (and the prompt asking about them).
RAY_OPT_OUTS = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_USAGE_STATS_PROMPT_ENABLED": "0"}
#: Every variable set by :func:`disable_telemetry` and its value (module doc).
OPT_OUTS: dict[str, str] = {
    **ONNXRUNTIME_OPT_OUTS,
    **RAY_OPT_OUTS,
    "RAGAS_DO_NOT_TRACK": "true",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "OPENAI_AGENTS_DISABLE_TRACING": "1",
}
_warned: list[bool] = []


#: Libraries that read their opt-out once, when imported or initialised: imported before us,
#: they never see it.
LATCHED = {
    "onnxruntime": tuple(ONNXRUNTIME_OPT_OUTS),
    "huggingface_hub": ("HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK"),
}


def disable_telemetry() -> None:
    """Set every opt-out this process has not set itself (module doc); warn, once, about a
    library that was imported before we could set its opt-out."""
    missing = {name for name in OPT_OUTS if name not in os.environ}
    for name, value in OPT_OUTS.items():
        os.environ.setdefault(name, value)
    late = [lib for lib, names in LATCHED.items() if lib in sys.modules and missing >= set(names)]
    if late and not _warned:
        _warned.append(True)
        warnings.warn(
            f"{', '.join(late)} was imported before orchestrator, so its telemetry opt-out "
            f"came too late for this process: import orchestrator first, or set "
            f"{', '.join(n for lib in late for n in LATCHED[lib])} in the environment",
            RuntimeWarning,
            stacklevel=2,
        )


def opt_out_env() -> dict[str, str]:
    """The opt-outs as this process has them, for processes that do not inherit our
    environment (Ray workers on other nodes)."""
    disable_telemetry()
    return {name: os.environ[name] for name in OPT_OUTS}


def _ragas_tracks() -> bool:
    return os.environ.get("RAGAS_DO_NOT_TRACK", "").strip().lower() != "true"


def _no_user_id_dir(*_args: object, **_kwargs: object) -> str:
    raise OSError("telemetry is off: no Ragas user id is stored (orchestrator.privacy)")


def quiet_ragas(analytics: Any) -> None:
    """Ragas 0.4 (``ragas._analytics``) writes a persistent user id for every usage event it
    builds, even with ``RAGAS_DO_NOT_TRACK=true``; unless you opted in, its id falls back to a
    per-process random one and nothing is written. Also drops Ragas' cached reading of the
    variable, in case Ragas looked before it was set."""
    analytics.do_not_track.cache_clear()
    if _ragas_tracks() or not hasattr(analytics, "user_data_dir"):
        return
    analytics.user_data_dir = _no_user_id_dir
    analytics.get_userid.cache_clear()
