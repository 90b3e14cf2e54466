"""The suite runs with a guard that fails any connection beyond loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import NetworkAccessError

from orchestrator.privacy import OPT_OUTS
from orchestrator.scale import worker_env


def test_network_guard_blocks_remote_addresses() -> None:
    with socket.socket() as sock, pytest.raises(NetworkAccessError, match="tried to connect"):
        sock.connect(("203.0.113.7", 80))


def test_network_guard_allows_loopback() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket() as client:
            client.connect(server.getsockname())


# The telemetry opt-outs (orchestrator/privacy.py), each in a fresh interpreter whose
# environment holds none of them, so what ``import orchestrator`` does is what is seen.


def _fresh(code: str, tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in OPT_OUTS}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "HOME": str(tmp), "XDG_DATA_HOME": str(tmp / "data"), **env},
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip


def _printed(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_orchestrator_sets_every_opt_out(tmp_path: Path) -> None:
    code = (
        "import json, os, orchestrator\n"
        f"print(json.dumps({{k: os.environ.get(k) for k in {list(OPT_OUTS)!r}}}))"
    )
    assert _printed(_fresh(code, tmp_path)) == OPT_OUTS


def test_a_value_you_set_yourself_wins(tmp_path: Path) -> None:
    code = "import json, os, orchestrator; print(json.dumps(os.environ['ORT_DISABLE_TELEMETRY']))"
    assert _printed(_fresh(code, tmp_path, ORT_DISABLE_TELEMETRY="0")) == "0"


def test_a_library_imported_before_orchestrator_is_named(tmp_path: Path) -> None:
    done = _fresh("import huggingface_hub, orchestrator", tmp_path)
    assert "huggingface_hub was imported before orchestrator" in done.stderr
    assert "HF_HUB_DISABLE_TELEMETRY" in done.stderr  # what to set instead
    assert "imported before" not in _fresh("import orchestrator, huggingface_hub", tmp_path).stderr


def test_ray_workers_get_every_opt_out() -> None:
    env = worker_env()
    assert {k: env[k] for k in OPT_OUTS} == {k: os.environ[k] for k in OPT_OUTS}
    assert env["ORT_DISABLE_TELEMETRY"] == "1" and env["RAY_USAGE_STATS_ENABLED"] == "0"


@pytest.mark.slow
def test_ragas_stores_no_user_id(tmp_path: Path) -> None:
    """Ragas 0.4 writes ``ragas/uuid.json`` for every usage event it builds, sent or not."""
    code = (
        "import json\n"
        "from orchestrator.evals.judge import import_ragas\n"
        "import_ragas()\n"
        "from ragas._analytics import EvaluationEvent\n"
        "event = EvaluationEvent(metrics=['m'], num_rows=1, evaluation_type='SINGLE_TURN',"
        " language='english')\n"
        "print(json.dumps(event.user_id))\n"
    )
    plain, opted_in = tmp_path / "plain", tmp_path / "opted-in"
    plain.mkdir()  # an existing HOME, as tmp_path is
    with ThreadPoolExecutor(2) as pool:  # two interpreters that share nothing: side by side
        default = pool.submit(_fresh, code, plain)
        opting_in = pool.submit(
            _fresh, code, opted_in, RAGAS_DO_NOT_TRACK="false", XDG_DATA_HOME=str(opted_in)
        )
        assert _printed(default.result()).startswith("anonymous-")
        opting_in.result()
    assert not list(plain.rglob("uuid.json"))
    assert (opted_in / "ragas" / "uuid.json").is_file()  # the check above can see the file
