"""Which tracer watches the commands' network system calls (tests/test_no_telemetry.py).

strace when it is installed; otherwise, or with ``ORCHESTRATOR_TEST_TRACER=ptrace``, this file
run as a script: a ptrace tracer on python-ptrace's bindings (the ``test`` extra installs it),
so ``pip install -e ".[test]"`` is all the set-up the check needs. Like ``strace -f
--seccomp-bpf`` it follows every thread, fork, vfork and exec, and a seccomp filter stops the
commands only at :data:`CALLS` (python-ptrace's own debugger stops every thread at every
system call: 5-9 times slower on llama.cpp and ONNX Runtime). It logs those calls in strace's
format, so one parser reads both logs. Fail-safe, as with strace: a task the tracer does not
follow gets ENOSYS from those calls (the filter's verdict with no tracer), so none goes unseen.

Usage as a script: ``python tracer_support.py LOG -- COMMAND [ARG...]``; it exits with the
command's status, as strace does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import shutil
import signal
import socket
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ptrace.binding import func
from ptrace.error import PtraceError
from ptrace.syscall.names import SYSCALL_NAMES

#: The calls that address a peer.
CALLS = ("connect", "sendto", "sendmsg", "sendmmsg")
#: ``ORCHESTRATOR_TEST_TRACER``: unset picks strace when installed, else ptrace.
CHOICES = ("strace", "ptrace")
#: seccomp's name for this machine's native system-call table (``AUDIT_ARCH_*``).
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
PTRACE_O_TRACESECCOMP, PTRACE_O_EXITKILL, PTRACE_EVENT_SECCOMP = 0x80, 0x100000, 7
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_TRACE = 0x7FFF0000, 0x7FF00000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
MMSGHDR_SIZE, MAX_MESSAGES = 64, 64


def traced(log: Path, argv: Sequence[str]) -> list[str]:
    """``argv`` under the chosen tracer (module doc), logging :data:`CALLS` to ``log``."""
    choice = os.environ.get("ORCHESTRATOR_TEST_TRACER", "")
    if choice and choice not in CHOICES:
        raise ValueError(f"ORCHESTRATOR_TEST_TRACER={choice!r}: use one of {CHOICES} or unset it")
    strace = shutil.which("strace")
    if choice == "strace" and strace is None:
        raise FileNotFoundError("ORCHESTRATOR_TEST_TRACER=strace, but strace is not installed")
    if strace is not None and choice != "ptrace":
        calls = ",".join(CALLS)
        return [strace, "-f", "--seccomp-bpf", "-qq", "-s", "0", "-e", f"trace={calls}",
                "-o", str(log), *argv]  # fmt: skip
    return [sys.executable, str(Path(__file__).resolve()), str(log), "--", *argv]


def seccomp_program() -> bytes:
    """BPF: stop at :data:`CALLS` (native table only) for the tracer, allow everything else."""
    machine = platform.machine()
    if machine not in AUDIT_ARCH:
        raise OSError(f"the ptrace fallback knows no {machine} seccomp table: install strace")
    numbers = [min(n for n, name in SYSCALL_NAMES.items() if name == call) for call in CALLS]
    rules = [(BPF_LD_W_ABS, 0, 0, 4), (BPF_JEQ_K, 0, len(numbers) + 1, AUDIT_ARCH[machine])]
    rules.append((BPF_LD_W_ABS, 0, 0, 0))
    for index, number in enumerate(numbers):  # a match jumps to the last rule, TRACE
        rules.append((BPF_JEQ_K, len(numbers) - index, 0, number))
    rules += [(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW), (BPF_RET_K, 0, 0, SECCOMP_RET_TRACE)]
    return b"".join(struct.pack("=HBBI", *rule) for rule in rules)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def install_filter(program: bytes) -> None:
    """Load ``program`` for this process and everything it execs or starts (seccomp)."""
    libc = ctypes.CDLL(None, use_errno=True)
    prog = SockFprog(len(program) // 8, program)
    for args in ((PR_SET_NO_NEW_PRIVS, 1, 0), (PR_SET_SECCOMP, SECCOMP_MODE_FILTER,
                                                ctypes.addressof(prog))):  # fmt: skip
        if libc.prctl(ctypes.c_int(args[0]), ctypes.c_ulong(args[1]), ctypes.c_ulong(args[2]),
                      ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:  # fmt: skip
            raise OSError(ctypes.get_errno(), "prctl: cannot install the seccomp filter")


def spawn(argv: Sequence[str]) -> int:
    """Fork ``argv`` as a tracee, stopped before its exec, with the filter loaded next."""
    program = seccomp_program()
    pid = os.fork()
    if pid == 0:
        try:
            func.ptrace_traceme()
            os.kill(os.getpid(), signal.SIGSTOP)
            install_filter(program)
            os.execvp(argv[0], list(argv))
        except BaseException as error:
            print(f"tracer_support: cannot trace {argv[0]}: {error} (install strace, or allow "
                  "ptrace: kernel.yama.ptrace_scope)", file=sys.stderr)  # fmt: skip
        os._exit(127)
    return pid


def trace(root: int, out: TextIO) -> int:
    """Follow ``root`` and its threads and children until all are gone; log their
    :data:`CALLS`; return ``root``'s exit status (128 + signal when killed)."""
    os.waitpid(root, func.THREAD_TRACE_FLAGS)
    options = func.PTRACE_O_TRACEFORK | func.PTRACE_O_TRACEVFORK | func.PTRACE_O_TRACECLONE
    options |= func.PTRACE_O_TRACEEXEC | PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL
    func.ptrace_setoptions(root, options)
    resume(root, 0)
    started, code = {root}, 1
    while True:
        try:
            tid, status = os.waitpid(-1, func.THREAD_TRACE_FLAGS)
        except ChildProcessError:
            return code
        if not os.WIFSTOPPED(status):
            started.discard(tid)
            if tid == root:
                code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
            continue
        event, signum = status >> 16, os.WSTOPSIG(status)
        if event == PTRACE_EVENT_SECCOMP:
            out.write(describe(tid))
        # A new thread or child starts with a SIGSTOP of ptrace's own; other signals are real.
        deliver = signum if event == 0 and (signum != signal.SIGSTOP or tid in started) else 0
        started.add(tid)
        resume(tid, deliver)


def resume(tid: int, signum: int) -> None:
    """Let ``tid`` run on; one killed meanwhile (SIGKILL) reports its exit next."""
    with contextlib.suppress(PtraceError):
        func.ptrace_cont(tid, signum)


def describe(tid: int) -> str:
    """The stopped call of ``tid`` as strace writes it (peer addresses only); nothing for a
    task killed meanwhile (SIGKILL): it makes no call."""
    try:
        fields = Path(f"/proc/{tid}/syscall").read_text().split()
    except OSError:
        return ""
    number, args = int(fields[0]), [int(field, 16) for field in fields[1:7]]
    name = SYSCALL_NAMES.get(number, str(number))
    if name == "connect":
        return f"{tid} connect({args[0]}, {sockaddr(tid, args[1], args[2])}, {args[2]})\n"
    if name == "sendto":
        peer = sockaddr(tid, args[4], args[5])
        return f"{tid} sendto({args[0]}, ..., {args[2]}, {args[3]}, {peer}, {args[5]})\n"
    if name == "sendmsg":
        return f"{tid} sendmsg({args[0]}, {message(tid, args[1])}, {args[2]})\n"
    vector = [message(tid, args[1] + i * MMSGHDR_SIZE) for i in range(min(args[2], MAX_MESSAGES))]
    return f"{tid} sendmmsg({args[0]}, [{', '.join(vector)}], {args[2]}, {args[3]})\n"


def message(tid: int, address: int) -> str:
    """A ``struct msghdr``'s peer (``msg_name``, ``msg_namelen``: its first two fields)."""
    name, length = struct.unpack("=QI", read(tid, address, 12) or bytes(12))
    return f"{{msg_name={sockaddr(tid, name, length)}, msg_namelen={length}}}"


def sockaddr(tid: int, address: int, length: int) -> str:
    """A socket address in the tracee's memory, in strace's words."""
    raw = read(tid, address, min(length, 128)) if address and length >= 2 else b""
    if not raw:
        return "NULL" if not address else f"{address:#x}"
    family = struct.unpack("=H", raw[:2])[0]
    if family == socket.AF_INET and len(raw) >= 8:
        port, host = int.from_bytes(raw[2:4]), socket.inet_ntop(socket.AF_INET, raw[4:8])
        return f'{{sa_family=AF_INET, sin_port=htons({port}), sin_addr=inet_addr("{host}")}}'
    if family == socket.AF_INET6 and len(raw) >= 28:
        (port, flow), (scope,) = struct.unpack("!HI", raw[2:8]), struct.unpack("=I", raw[24:28])
        host = socket.inet_ntop(socket.AF_INET6, raw[8:24])
        return (f"{{sa_family=AF_INET6, sin6_port=htons({port}), sin6_flowinfo=htonl({flow}), "
                f'inet_pton(AF_INET6, "{host}", &sin6_addr), sin6_scope_id={scope}}}')  # fmt: skip
    if family == socket.AF_UNIX:
        path = raw[2:].split(b"\0")[0].decode(errors="replace")
        return f'{{sa_family=AF_UNIX, sun_path="{path}"}}'
    return f"{{sa_family={family}}}"


def read(tid: int, address: int, size: int) -> bytes:
    """``size`` bytes of the tracee's memory (empty when unreadable: the call then fails)."""
    try:
        with open(f"/proc/{tid}/mem", "rb", buffering=0) as memory:
            return os.pread(memory.fileno(), size, address)
    except OSError:
        return b""


def main(args: Sequence[str]) -> int:
    if len(args) < 3 or args[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0], "w", buffering=1) as out:
        return trace(spawn(args[2:]), out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
