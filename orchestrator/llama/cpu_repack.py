"""Load GGUF models with llama.cpp's CPU weight repacking off where it crashes.

llama.cpp can repack weights at load time into "extra buffer types" laid out for the CPU's
matrix units. On CPUs with AMX (``amx_int8``/``amx_tile`` in ``/proc/cpuinfo``) the AMX repack
of the ggml that llama-cpp-python 0.3.36 builds segfaults in the first decode of more than one
token (measured here: ``ChatLlamaCpp().invoke("Say hi")`` and a bare ``llama_cpp.Llama.eval``
of a 3-token prompt both die with SIGSEGV; public reports: ggml-org/llama.cpp#20824,
stanfordnlp/dspy#10079). llama.cpp's own switch is the model parameter ``use_extra_bufts``
(``llama-server --no-repack``), but ``llama_cpp.Llama`` exposes no argument for it, so
:func:`apply` wraps the default-parameters factory that ``Llama`` reads its model parameters
from, turning the extra buffer types off for every later load in this process.

Policy (one place): off on CPUs that report AMX, on elsewhere (there the repack is safe and
speeds up Q4_0 kernels); ``ORCHESTRATOR_CPU_REPACK=0`` or ``=1`` decides explicitly.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any

REPACK_ENV = "ORCHESTRATOR_CPU_REPACK"
_LOCK = threading.Lock()


@functools.cache
def cpu_has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU reports AMX tiles (Linux ``/proc/cpuinfo`` flags; False elsewhere)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    return any(flag in text.split() for flag in ("amx_int8", "amx_tile", "amx_bf16"))


def repack_wanted(env: dict[str, str] | None = None) -> bool:
    """``$ORCHESTRATOR_CPU_REPACK`` (0/1) if set, else True unless the CPU has AMX."""
    value = (os.environ if env is None else env).get(REPACK_ENV, "").strip().lower()
    if value in {"0", "false", "no", "off"}:
        return False
    if value in {"1", "true", "yes", "on"}:
        return True
    return not cpu_has_amx()


def apply() -> bool:
    """Make later ``llama_cpp.Llama`` loads in this process follow :func:`repack_wanted`.

    Idempotent and thread-safe; returns whether repacking stays on. Called by the engine before
    every load, and usable before starting ``llama_cpp.server`` in-process.
    """
    wanted = repack_wanted()
    if wanted:
        return True
    import llama_cpp.llama as llama_module

    with _LOCK:
        current = llama_module.llama_cpp.llama_model_default_params
        if getattr(current, "_orchestrator_no_repack", False):
            return False
        original = current

        def no_repack_params() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        no_repack_params._orchestrator_no_repack = True  # type: ignore[attr-defined]
        llama_module.llama_cpp.llama_model_default_params = no_repack_params
    return False


def main(argv: list[str] | None = None) -> None:
    """``python -m orchestrator.llama.cpu_repack MODULE ARGS...``: run ``MODULE`` as ``-m``
    would, with this policy applied first (e.g. ``llama_cpp.server``, which loads through
    ``llama_cpp.Llama`` and would crash on an AMX CPU otherwise)."""
    import runpy
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        raise SystemExit("usage: python -m orchestrator.llama.cpu_repack MODULE [ARGS...]")
    apply()
    sys.argv = [args[0], *args[1:]]
    runpy.run_module(args[0], run_name="__main__", alter_sys=True)


__all__ = ["REPACK_ENV", "apply", "cpu_has_amx", "main", "repack_wanted"]

if __name__ == "__main__":
    main()
