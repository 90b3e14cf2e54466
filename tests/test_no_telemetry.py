"""No telemetry from any dependency (orchestrator/privacy.py), seen from outside the process.

``index``, ``search``, ``rag``, ``agent``, ``serve`` (one request) and ``eval retrieval`` run
as real subprocesses under a system-call tracer that follows children and native threads
(``strace -f``, or without strace the ptrace fallback in tests/tracer_support.py), with ``HOME``
and the XDG folders in one fresh temporary folder and with no opt-out in their environment but
what Orchestrator sets itself (the suite's own offline switches and CI markers, which ONNX
Runtime honours too, are removed). Then:

- nothing created under that HOME is a telemetry id or event store (the whole tree is listed);
- no process tried to reach beyond this machine: every ``connect``/``sendto``/``sendmsg`` to an
  IPv4/IPv6 address is loopback, and none goes to a DNS server (port 53), which would mean a
  name was being looked up to phone home (unix sockets are fine).

A control runs the same checks on a process that opts ONNX Runtime's telemetry back in, the
leak issue 18 found, to show both checks see native code.

``--ray`` is not run here: Ray's API server probes cloud metadata addresses whenever a cluster
starts, usage statistics off or not (a Ray bug, stated in the README's privacy paragraph).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from ready_support import free_port, wait_until
from tracer_support import traced

from orchestrator.privacy import OPT_OUTS
from orchestrator.settings import cache_home

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Variables removed from the commands' environment, so only Orchestrator's own settings count:
#: the opt-outs, the suite's offline switches, tracing switches, XDG folders, and the CI
#: markers that make ONNX Runtime keep quiet on its own.
REMOVED = (
    *OPT_OUTS,
    "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "DISABLE_TELEMETRY",
    "LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING", "LANGCHAIN_TRACING_V2",
    "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR",
    "ORCHESTRATOR_HOME", "ORCHESTRATOR_CACHE", "MPLCONFIGDIR", "ORT_RUNNING_UNIT_TESTS",
    "CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL",
    "CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER",
    "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)  # fmt: skip
#: What telemetry leaves on disk (a path under HOME matching one of these is a failure).
TELEMETRY_PATHS = {
    "ONNX Runtime 1DS id / event store": re.compile(r"Microsoft/DeveloperTools|\.onnxruntime"),
    "Ragas user id": re.compile(r"ragas/uuid\.json"),
    "Ray usage statistics": re.compile(r"usage_stats|\.ray/config\.json"),
    "Hugging Face hub download or token": re.compile(r"huggingface/(hub|xet|token|stored_tokens)"),
    "an identifier or analytics store": re.compile(
        r"telemetry|device_?id|machine_?id|user_?id|analytics|posthog|segment|scarf", re.I
    ),
}  # fmt: skip
#: strace's rendering of an IPv4 / IPv6 socket address (the fallback tracer writes it too).
_INET = re.compile(r'sa_family=AF_INET, sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\)')
_INET6 = re.compile(r'sa_family=AF_INET6, sin6_port=htons\((\d+)\),.*?AF_INET6, "([^"]+)"')
#: How long the server stays up after it answered: background uploaders wait before their first
#: attempt (ONNX Runtime 1.32's looked up its collector about 10 s after it started).
SERVE_HOLD_S = 20.0
CORPUS = {
    "d1": "The wing lift increases in a propeller slipstream.",
    "d2": "Boundary layer flow over a flat plate at high speed.",
    "d3": "Heat conduction in composite slabs.",
}
QUERIES = {"q1": "propeller slipstream wing lift", "q2": "heat conduction slabs"}


def remote_attempts(log: Path) -> list[str]:
    """Logged calls that address an IP endpoint off this machine, or any DNS server."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        for port, host in [*_INET.findall(line), *_INET6.findall(line)]:
            address = ipaddress.ip_address(host.split("%")[0])
            mapped = getattr(address, "ipv4_mapped", None) or address
            if int(port) == 53 or not (mapped.is_loopback or mapped.is_unspecified):
                found.append(line.strip())
    return found


def telemetry_files(home: Path) -> list[str]:
    """Paths under ``home`` (relative) that match :data:`TELEMETRY_PATHS`, with why."""
    return [
        f"{path} ({why})"
        for path in created(home)
        for why, pattern in TELEMETRY_PATHS.items()
        if pattern.search(path)
    ]


def created(home: Path) -> list[str]:
    """Every file and folder under ``home`` (symlinks listed, not followed)."""
    paths = []
    for root, dirs, files in os.walk(home):
        for name in [*dirs, *files]:
            paths.append(str((Path(root) / name).relative_to(home)))
    return sorted(paths)


def clean_env(home: Path) -> dict[str, str]:
    """This environment without :data:`REMOVED`, with HOME and the XDG folders under ``home``
    and the exported ONNX embedder reused from the suite's cache (no re-export)."""
    cache = home / ".cache"
    ours = cache / "orchestrator"
    ours.mkdir(parents=True, exist_ok=True)
    shared_onnx = cache_home() / "onnx"
    shared_onnx.mkdir(parents=True, exist_ok=True)
    if not (ours / "onnx").exists():
        (ours / "onnx").symlink_to(shared_onnx, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in REMOVED}
    return {
        **env,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(cache),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "ORCHESTRATOR_CACHE": str(ours),
        "COLUMNS": "200",
    }


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli.app", *args]


@dataclass
class Runs:
    """The commands' shared HOME and, per command, its tracer's log."""

    home: Path
    logs: dict[str, Path] = field(default_factory=dict)


def run_traced(runs: Runs, name: str, env: dict[str, str], *args: str) -> str:
    log = runs.home.parent / f"{name}.calls"
    runs.logs[name] = log
    done = subprocess.run(
        traced(log, cli(*args)), env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{name}: {done.stdout}\n{done.stderr}"
    return done.stdout


def serve_once(runs: Runs, env: dict[str, str], index: Path) -> None:
    """``serve --index``: start it traced, send one ``rag`` request, stop it."""
    port = free_port()
    log = runs.home.parent / "serve.calls"
    runs.logs["serve"] = log
    out = (runs.home.parent / "serve.log").open("wb")
    argv = cli("serve", "--port", str(port), "--index", str(index))
    tracer = subprocess.Popen(traced(log, argv), env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(tracer, url)
        ready = time.monotonic()
        body = {"model": "rag", "max_tokens": 8, "messages": [{"role": "user", "content": "lift?"}]}
        reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=300)
        assert reply.status_code == 200, reply.text
        time.sleep(max(0.0, ready + SERVE_HOLD_S - time.monotonic()))
    finally:
        stop(tracer)
        out.close()


def wait_ready(tracer: subprocess.Popen[bytes], url: str) -> None:
    wait_until(lambda: httpx.get(f"{url}/health", timeout=5).status_code == 200,
               f"traced serve to answer {url}/health", limit=300, interval=0.5,
               process=tracer, ignore=(httpx.HTTPError,))


def stop(tracer: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the traced server (the tracer's child), as a user's Ctrl-C; the tracer then
    exits."""
    children = Path(f"/proc/{tracer.pid}/task/{tracer.pid}/children")
    for pid in children.read_text().split() if children.exists() else []:
        os.kill(int(pid), signal.SIGTERM)
    try:
        tracer.wait(timeout=60)
    except subprocess.TimeoutExpired:
        tracer.kill()
        tracer.wait(timeout=30)


def beir(root: Path) -> Path:
    """A three-document BEIR folder: indexed by ``index`` and evaluated by ``eval``."""
    (root / "qrels").mkdir(parents=True)
    rows = [{"_id": d, "title": "", "text": t} for d, t in CORPUS.items()]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    queries = [{"_id": q, "text": t} for q, t in QUERIES.items()]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Every command once, sharing one HOME: ``index`` first, then the served one (up for
    SERVE_HOLD_S after it answered) beside the others, which run one after another."""
    base = tmp_path_factory.mktemp("no-telemetry")
    runs = Runs(home=base / "home")
    env = clean_env(runs.home)
    data, index = beir(base / "beir"), base / "index"
    run_traced(runs, "index", env, "index", str(data), "--index", str(index))
    with ThreadPoolExecutor(1) as pool:
        served = pool.submit(serve_once, runs, env, index)
        run_traced(runs, "search", env, "search", "wing lift", "--index", str(index), "--json")
        run_traced(
            runs, "rag", env, "rag", "What increases wing lift?", "--index", str(index),
            "--max-tokens", "16", "--json",
        )  # fmt: skip
        run_traced(
            runs, "agent", env, "agent", "What increases wing lift?", "--tools",
            "knowledge_base", "--index", str(index), "--max-steps", "1", "--json",
        )  # fmt: skip
        run_traced(
            runs, "eval", env, "eval", "retrieval", "--dataset", str(data), "--mode", "hybrid",
            "--metrics", "P_1", "--json",
        )  # fmt: skip
        served.result()
    yield runs


def test_no_telemetry_id_or_event_store_is_written(runs: Runs) -> None:
    listing = "\n".join(created(runs.home))
    assert telemetry_files(runs.home) == [], f"created under HOME:\n{listing}"
    assert ".cache/orchestrator/eval-indexes" in listing, "eval did not use this HOME's cache"


@pytest.mark.parametrize("command", ["index", "search", "rag", "agent", "serve", "eval"])
def test_no_connection_beyond_loopback(runs: Runs, command: str) -> None:
    log = runs.logs[command]
    assert log.is_file(), f"the tracer wrote no log for {command}"
    assert remote_attempts(log) == []


@dataclass
class Control:
    """The control's traced process, its HOME and its tracer's log."""

    home: Path
    log: Path
    tracer: subprocess.Popen[bytes]
    started: float


@pytest.fixture(scope="module", autouse=True)
def ort_opted_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Control]:
    """The control's process (its own HOME), started before ``runs`` (autouse, same scope):
    the seconds its uploader waits pass while the commands run."""
    root = tmp_path_factory.mktemp("ort-opted-in")
    home, log = root / "home", root / "ort.calls"
    env = {**clean_env(home), "ORT_DISABLE_TELEMETRY": "0", "ORT_TELEMETRY_DISABLED": "0"}
    code = "import orchestrator, onnxruntime, time; time.sleep(90)"
    tracer = subprocess.Popen(traced(log, [sys.executable, "-c", code]), env=env)
    try:
        yield Control(home, log, tracer, time.monotonic())
    finally:
        stop(tracer)


def test_the_checks_see_onnxruntime_when_its_telemetry_is_opted_back_in(
    ort_opted_in: Control,
) -> None:
    """Control: a user's explicit ``ORT_DISABLE_TELEMETRY=0`` wins over our default, and then
    the native 1DS client writes its device id and event store at import and, seconds later,
    looks up its collector: the same checks catch both."""
    home, log, tracer = ort_opted_in.home, ort_opted_in.log, ort_opted_in.tracer
    try:
        deadline = ort_opted_in.started + 90
        while time.monotonic() < deadline and not (log.exists() and remote_attempts(log)):
            time.sleep(1)
    finally:
        stop(tracer)
    assert any("ONNX Runtime" in path for path in telemetry_files(home)), created(home)
    assert remote_attempts(log), "the uploader's lookup was not seen"
