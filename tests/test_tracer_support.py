"""The ptrace fallback of tests/tracer_support.py, the tracer tests/test_no_telemetry.py uses
where strace is not installed: it must see every thread and child and write strace's format.

Nothing leaves this machine: the remote address is only ``connect``-ed on a UDP socket (no
packet is sent), the rest goes to loopback ports nobody listens on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tracer_support import traced

#: A thread connects (as glibc's resolver does), a vfork'd child and a forked grandchild
#: (``os.system``: sh, then python) send, and the program exits with 3.
PROGRAM = """
import os, socket, subprocess, sys, threading
def resolver():
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).connect(("192.0.2.1", 53))
thread = threading.Thread(target=resolver); thread.start(); thread.join()
udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp6.sendmsg([b"x"], [], 0, ("::1", 9, 0, 0))
send = "import socket as s; s.socket(s.AF_INET, s.SOCK_DGRAM).sendto(b'x', ('127.0.0.2', 9))"
subprocess.run([sys.executable, "-c", send], check=True)
os.system(f'{sys.executable} -c "{send.replace("127.0.0.2", "127.0.0.3")}"')
sys.exit(3)
"""


@pytest.fixture
def fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_TEST_TRACER", "ptrace")


@pytest.mark.usefixtures("fallback")
def test_the_fallback_follows_threads_and_children_and_writes_strace_lines(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    argv = traced(log, [sys.executable, "-c", PROGRAM])
    assert argv[1].endswith("tracer_support.py")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 3, done.stderr
    lines = log.read_text().splitlines()
    expected = [
        'sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("192.0.2.1")}, 16)',
        'sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}',
        'sin_port=htons(9), sin_addr=inet_addr("127.0.0.2")}, 16)',
        'sin_port=htons(9), sin_addr=inet_addr("127.0.0.3")}, 16)',
    ]
    for text in expected:
        assert any(text in line for line in lines), (text, lines)
    assert len({line.split()[0] for line in lines}) == 4, "thread, main, child, grandchild"


@pytest.mark.usefixtures("fallback")
def test_a_signal_reaches_the_traced_command_and_its_status_comes_back(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, lambda *_: exit(7)); "
        "print('ready', flush=True); time.sleep(60)"
    )
    argv = traced(tmp_path / "calls", [sys.executable, "-c", code])
    tracer = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert tracer.stdout is not None and tracer.stdout.readline() == "ready\n"
    child = Path(f"/proc/{tracer.pid}/task/{tracer.pid}/children").read_text().split()[0]
    os.kill(int(child), signal.SIGTERM)
    assert tracer.wait(timeout=30) == 7


def test_an_unknown_tracer_choice_names_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_TEST_TRACER", "dtrace")
    with pytest.raises(ValueError, match=r"strace.*ptrace"):
        traced(Path("calls"), ["true"])
