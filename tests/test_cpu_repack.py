"""llama.cpp's CPU weight repack is off where it crashes (AMX), and the model then answers.

The crash (SIGSEGV in the first multi-token decode after the AMX repack) is reproduced in a
child process so that it cannot take the test run down with it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.llama import cpu_repack

_GENERATE = (
    "from orchestrator import ChatLlamaCpp;"
    "print(repr(ChatLlamaCpp(max_tokens=4, temperature=0).invoke('Say hi').content))"
)


def test_policy_reads_the_environment_first() -> None:
    assert cpu_repack.repack_wanted({"ORCHESTRATOR_CPU_REPACK": "0"}) is False
    assert cpu_repack.repack_wanted({"ORCHESTRATOR_CPU_REPACK": "1"}) is True
    assert cpu_repack.repack_wanted({}) is (not cpu_repack.cpu_has_amx())


def test_amx_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    amx, plain = tmp_path / "amx", tmp_path / "plain"
    amx.write_text("flags\t\t: fpu sse avx2 amx_bf16 amx_tile amx_int8\n")
    plain.write_text("flags\t\t: fpu sse avx2 avx512f\n")
    assert cpu_repack.cpu_has_amx(amx) is True
    assert cpu_repack.cpu_has_amx(plain) is False
    assert cpu_repack.cpu_has_amx(tmp_path / "missing") is False


@pytest.mark.integration
def test_the_default_policy_loads_and_generates() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _GENERATE], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()[:1] in {"'", '"'} and len(done.stdout.strip()) > 2


#: The other place a GGUF is loaded: the fluency metric's own context (every token's logits).
_PERPLEXITY = (
    "from orchestrator.evals.quality import PerplexityFluency;"
    "print(len(PerplexityFluency().logprobs('The cat sat on the mat by the door.')))"
)


@pytest.mark.integration
def test_the_perplexity_baseline_loads_under_the_same_policy() -> None:
    """It built its own ``llama_cpp.Llama`` without the policy: SIGSEGV on an AMX CPU in a
    process where no chat model had loaded first (an ``eval`` of fluency_perplexity only)."""
    done = subprocess.run(
        [sys.executable, "-c", _PERPLEXITY], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) > 1


@pytest.mark.integration
@pytest.mark.skipif(not cpu_repack.cpu_has_amx(), reason="the crash needs a CPU with AMX")
def test_with_repack_forced_on_an_amx_cpu_llama_cpp_still_crashes() -> None:
    """The reason for the policy: if this starts passing, llama.cpp fixed its AMX repack and
    the policy can be dropped (ORCHESTRATOR_CPU_REPACK=1 forces the repack on)."""
    done = subprocess.run(
        [sys.executable, "-c", _GENERATE],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "ORCHESTRATOR_CPU_REPACK": "1"},
    )
    assert done.returncode < 0, "llama.cpp's AMX repack no longer crashes: revisit cpu_repack"
