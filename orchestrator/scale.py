"""Ray for the heavy batch work: the one place Orchestrator connects to Ray, and an ordered map.

``--ray auto|local|ADDRESS`` (``index``, ``eval``) all go through :func:`connect`:

- ``local`` starts a private Ray on this machine (``ray.init(address="local")``, the CPUs given);
- ``auto`` joins the cluster ``$RAY_ADDRESS`` names, else one started here with
  ``ray start --head``, else starts a local one;
- anything else is a cluster address (``HOST:PORT`` of ``ray start --head``, or
  ``ray://HOST:10001`` for Ray Client). One that is not a reachable Ray cluster is a
  :class:`RayConnectError` naming the address and the fix, never a hang: a closed port, or a
  server that does not answer gRPC's HTTP/2 handshake (a web server, Ray's dashboard port),
  within :data:`PROBE_TIMEOUT` seconds; anything else ``ray.init`` gives up on after one
  attempt, within :data:`JOIN_LIMIT` seconds.

Offline by rule: usage statistics are switched off (``RAY_USAGE_STATS_ENABLED=0``) before Ray
is imported or started, and a Ray started here has no dashboard. Connecting once per process:
a second call reuses the running session (tests, a notebook).

:func:`map_items` runs ``fn(item)`` for every item on a pool of Ray actors, each of which
builds its ``fn`` once (a GGUF loads once per worker, not once per item), and returns the
results in input order. Items are independent calls, so a result never depends on which
worker or in what order it ran: the per-item seeds of the serial path stay per item.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator.errors import OrchestratorError
from orchestrator.extras import require
from orchestrator.privacy import RAY_OPT_OUTS, opt_out_env

T = TypeVar("T")
R = TypeVar("R")

#: Environment that keeps Ray from phoning home (set before ``import ray`` and ``ray.init``).
NO_TELEMETRY = RAY_OPT_OUTS
#: Environment variables handed on to every worker, so a worker resolves models, caches and
#: thread counts as this process does (a cluster's workers do not share our shell).
FORWARDED_PREFIXES = ("ORCHESTRATOR_", "HF_", "TRANSFORMERS_", "SENTENCE_TRANSFORMERS_")
CLUSTER_FIX = (
    "start a cluster with `ray start --head` and pass the address it prints (--ray HOST:6379, "
    "or set RAY_ADDRESS), or use --ray local to run on this machine"
)
AUTH_FIX = (
    "the cluster uses Ray's token authentication: set RAY_AUTH_MODE=token and give this "
    "machine the cluster's token (RAY_AUTH_TOKEN, or the file ~/.ray/auth_token)"
)
#: Seconds a cluster address has to accept a connection and answer the HTTP/2 handshake.
PROBE_TIMEOUT = 3.0
#: Seconds after which joining an address that passed the probe but is not a Ray cluster
#: fails: one ``ray.init`` attempt (GCS connect 5 s, pubsub 5 s, cluster id 30 s in Ray 2.x,
#: about 41 s in all; the margin is for a loaded machine).
JOIN_LIMIT = 60
#: HTTP/2's connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5): every
#: gRPC server, a Ray GCS and a Ray Client server alike, answers with a SETTINGS frame.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


class RayConnectError(OrchestratorError):
    """A Ray cluster could not be reached or started."""


@dataclass(frozen=True)
class RaySession:
    """Where work runs: the address joined (``local`` for a Ray started here) and its CPUs."""

    address: str
    cpus: int

    def workers(self, wanted: int | None = None) -> int:
        """``wanted`` workers, or one per CPU of the cluster (at least one)."""
        return max(1, wanted if wanted else self.cpus)


def disable_telemetry() -> None:
    """Switch Ray's usage statistics off for this process and the workers it starts."""
    os.environ.update(NO_TELEMETRY)


def import_ray(purpose: str) -> Any:
    """``ray`` with telemetry off (the ``scale`` extra names the package when missing)."""
    disable_telemetry()
    return require("ray", extra="scale", purpose=purpose)


def connect(spec: str | None = "auto", *, num_cpus: int | None = None) -> RaySession:
    """Join or start Ray as ``spec`` says (module doc); ``num_cpus`` sizes a local start."""
    ray = import_ray("--ray (distributed indexing and evaluation)")
    spec = (spec or "auto").strip()
    if ray.is_initialized():
        return _session(ray, "running")
    address = os.environ.get("RAY_ADDRESS", "").strip() if spec == "auto" else spec
    if spec == "auto" and not address:
        address = _cluster_here() or ""
    if spec == "local" or not address:
        cpus = num_cpus or os.cpu_count() or 1
        _init(ray, address="local", num_cpus=cpus, include_dashboard=False)
        return _session(ray, "local")
    _check_reachable(address)
    with _one_join_attempt():
        _init(ray, address=address)
    return _session(ray, address)


def _init(ray: Any, **kwargs: Any) -> None:
    try:
        ray.init(logging_level=logging.WARNING, log_to_driver=False, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        address = kwargs.get("address")
        within = "" if address == "local" else f" (one attempt, at most {JOIN_LIMIT} s)"
        raise RayConnectError(
            f"could not connect to Ray at {address!r}{within}: {exc}",
            fix=AUTH_FIX if _token_refused(exc) else CLUSTER_FIX,
        ) from exc
    _quiet_ray_data()


def _token_refused(exc: BaseException | None) -> bool:
    """Whether the cluster refused us for its token (Ray nests the cause as text)."""
    while exc is not None:
        if "InvalidAuthToken" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def _one_join_attempt() -> Iterator[None]:
    """``ray.init`` tries a cluster's GCS 20 times (minutes) by default: once is enough for
    an address that was just probed (``RAY_gcs_server_port_wait_time_s``, read per call;
    a value the user set is kept)."""
    key = "RAY_gcs_server_port_wait_time_s"
    if key in os.environ:
        yield
        return
    os.environ[key] = "1"
    try:
        yield
    finally:
        os.environ.pop(key, None)


def _quiet_ray_data() -> None:
    """Ray Data's own bars and per-operator logs off: the caller draws one progress bar."""
    try:
        from ray.data import DataContext
    except ImportError:
        return
    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.enable_operator_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def _session(ray: Any, address: str) -> RaySession:
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return RaySession(address=address, cpus=cpus)


def _cluster_here() -> str | None:
    """The address ``ray start --head`` left on this machine, if that cluster still answers."""
    try:
        from ray._private.services import find_bootstrap_address

        address = find_bootstrap_address(None)
    except Exception:  # a private API that moved: start locally instead
        return None
    if not address:
        return None
    try:
        _check_reachable(str(address), timeout=1.0)
    except RayConnectError:
        return None
    return str(address)


def _check_reachable(address: str, timeout: float = PROBE_TIMEOUT) -> None:
    """A ``HOST:PORT`` that accepts no TCP connection, or answers but not as a gRPC server
    (HTTP/2), is an error now: ``ray.init`` would otherwise retry for minutes."""
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise RayConnectError(
            f"--ray {address!r} is not auto, local or a cluster address HOST:PORT",
            fix=CLUSTER_FIX,
        )
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
            answer = _http2_answer(sock, deadline)
    except OSError as exc:
        raise RayConnectError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc})", fix=CLUSTER_FIX
        ) from exc
    if answer is not None:
        raise RayConnectError(
            f"no Ray cluster answers at {address}: something else listens there ({answer}; "
            f"a Ray cluster answers gRPC's HTTP/2 handshake within {timeout:g} s)",
            fix=f"check the address: {CLUSTER_FIX} (Ray's dashboard, port 8265, is not it)",
        )


def _http2_answer(sock: socket.socket, deadline: float) -> str | None:
    """``None`` when the peer answers the HTTP/2 preface with a SETTINGS frame (as every gRPC
    server does), else what it did instead, in words. Skipped with ``RAY_USE_TLS`` (a TLS
    server waits for a TLS handshake)."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return None
    head = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError, BrokenPipeError):
        sock.sendall(_H2_PREFACE)
        while len(head) < 9 and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            part = sock.recv(256)
            if not part:
                break
            head += part
    if len(head) >= 9 and head[3] == 0x04 and head[5:9] == bytes(4):  # SETTINGS, stream 0
        return None
    if not head:
        closed = time.monotonic() < deadline
        return "it closed the connection without an answer" if closed else "it sent nothing"
    first = head.strip().splitlines()[0][:60].decode("ascii", "replace")
    return f"it answered {first!r}"


def worker_env() -> dict[str, str]:
    """The variables a worker gets from this process (see :data:`FORWARDED_PREFIXES`). Each
    worker holds one CPU, so it runs one thread unless ``$ORCHESTRATOR_THREADS`` says
    otherwise: workers sharing a machine would otherwise each size themselves for all of it."""
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_PREFIXES)}
    env.setdefault("ORCHESTRATOR_THREADS", "1")
    return {**env, **opt_out_env(), **NO_TELEMETRY}  # every opt-out (orchestrator.privacy)


class _Worker:
    """A Ray actor holding one built ``fn`` (a model, an open index) for many items."""

    def __init__(self, make: Callable[[], Callable[[Any], Any]]) -> None:
        # A failed build (a missing model) is raised by ``run``: from a constructor Ray
        # reports only that the actor died, not the error and its fix.
        self.fn: Callable[[Any], Any] | None = None
        self.error: BaseException | None = None
        try:
            self.fn = make()
        except Exception as exc:
            self.error = exc

    def run(self, position: int, item: Any) -> tuple[int, Any]:
        if self.fn is None:
            raise self.error or RuntimeError("the worker has nothing to run")
        return position, self.fn(item)


def map_items(
    make: Callable[[], Callable[[T], R]],
    items: Sequence[T],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    weight: Callable[[T], int] = lambda item: 1,
) -> list[R]:
    """``[make()(item) for item in items]`` on Ray actors, in input order.

    ``make`` (pickled to each worker) builds the per-worker function once; ``progress(n)`` is
    called as items finish, with ``weight(item)`` (e.g. the queries in a batch). Ray must be
    connected (:func:`connect`); an item's exception is raised here with its own message.
    """
    ray = import_ray("--ray")
    if not ray.is_initialized():
        connect("auto")
    if not items:
        return []
    cpus = int(ray.cluster_resources().get("CPU", 1))
    pool_size = min(len(items), RaySession("running", cpus).workers(workers))
    actor = ray.remote(num_cpus=1, runtime_env={"env_vars": worker_env()})(_Worker)
    actors = [actor.remote(make) for _ in range(pool_size)]
    try:
        return _drain(ray, actors, items, progress, weight)
    finally:
        for handle in actors:
            ray.kill(handle)


def _drain(
    ray: Any,
    actors: list[Any],
    items: Sequence[Any],
    progress: Callable[[int], None] | None,
    weight: Callable[[Any], int],
) -> list[Any]:
    """Keep every actor busy with one item at a time; collect results by position."""
    results: list[Any] = [None] * len(items)
    queue = list(enumerate(items))[::-1]
    pending: dict[Any, Any] = {}
    for handle in actors:
        if queue:
            position, item = queue.pop()
            pending[handle.run.remote(position, item)] = handle
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        handle = pending.pop(done[0])
        position, value = _unwrap(ray, done[0])
        results[position] = value
        if progress:
            progress(weight(items[position]))
        if queue:
            nxt, item = queue.pop()
            pending[handle.run.remote(nxt, item)] = handle
    return results


def _unwrap(ray: Any, ref: Any) -> Any:
    """The actor's result; its exception (an OrchestratorError with its fix) is re-raised as
    itself, not wrapped in Ray's ``RayTaskError``."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.as_instanceof_cause()
        original = getattr(exc, "cause", None)
        raise (original if isinstance(original, BaseException) else cause) from None
