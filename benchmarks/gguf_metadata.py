"""What model construction and GGUF metadata cost, next to loading the weights.

Not a test: prints figures for docs/benchmarks.md. Each round times, in a rotating order so
that no measure always runs first:

- ``GGUFReader``: ``gguf.GGUFReader(path)`` as the library ships it;
- ``read_gguf_info``: our metadata read (GGUFReader with the fast array walk), cache cleared;
- ``check_gguf_header``: the stat + 24-byte read a constructor runs;
- ``ChatLlamaCpp()``: construction, cache cleared (the full read is lazy);
- ``ChatLlamaCpp().info``: construction and first metadata use, cache cleared (what every
  construction cost while the constructor parsed the whole file);
- ``Llama load``: ``llama_cpp.Llama(path, n_ctx=512, verbose=False)``, then closed.

Medians over the rounds; ratios against the weight load, and plain vs fast reader.

Run: ``python benchmarks/gguf_metadata.py --rounds 7`` (``--model`` for another GGUF).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import gguf
import llama_cpp

from orchestrator import ChatLlamaCpp
from orchestrator.gguf_info import check_gguf_header, clear_metadata_cache, read_gguf_info
from orchestrator.settings import embedded_model_path


def _measures(path: Path) -> dict[str, Callable[[], object]]:
    def cold_info() -> object:
        clear_metadata_cache()
        return read_gguf_info(path)

    def construct() -> object:
        clear_metadata_cache()
        return ChatLlamaCpp(model_path=str(path))

    def construct_and_info() -> object:
        clear_metadata_cache()
        return ChatLlamaCpp(model_path=str(path)).info

    def load() -> object:
        llama = llama_cpp.Llama(str(path), n_ctx=512, verbose=False)
        llama.close()
        return llama

    return {
        "GGUFReader": lambda: gguf.GGUFReader(path),
        "read_gguf_info": cold_info,
        "check_gguf_header": lambda: check_gguf_header(path),
        "ChatLlamaCpp()": construct,
        "ChatLlamaCpp().info": construct_and_info,
        "Llama load": load,
    }


def run(path: Path, rounds: int) -> dict[str, object]:
    measures = _measures(path)
    names = list(measures)
    for name in names:  # warm-up: imports, page cache
        measures[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    load_start = os.getloadavg()
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            measures[name]()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in times.items()}
    load = median["Llama load"]
    return {
        "model": str(path),
        "size_mb": round(path.stat().st_size / 2**20, 1),
        "rounds": rounds,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}, gguf {version('gguf')}, llama-cpp-python "
        f"{llama_cpp.__version__}",
        "load_average_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
        "median_ms": {name: round(value * 1000, 2) for name, value in median.items()},
        "ratio_to_llama_load": {name: round(value / load, 4) for name, value in median.items()},
        "plain_reader_over_read_gguf_info": round(
            median["GGUFReader"] / median["read_gguf_info"], 1
        ),
        "construction_with_info_over_construction": round(
            median["ChatLlamaCpp().info"] / median["ChatLlamaCpp()"], 1
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: embedded)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    result = run(args.model or embedded_model_path(), args.rounds)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
