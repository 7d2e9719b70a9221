"""What this machine's processes are, read from /proc, and how to signal exactly one of them.

A pid alone is not an identity: pids are recycled, and a fault that signals
"pid 4242" a minute after planning may hit an unrelated process that got the
number since. So a process is always (pid, start time in clock ticks since
boot, field 22 of /proc/<pid>/stat), and ``send_signal`` signals only when both
still match. It opens a pidfd first and compares the start time *after*
opening it: the pidfd pins the process, so the check and the signal are about
the same process, with no window for a recycle in between.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from chaosrunner.faults.holder import process_start_ticks

PF_KTHREAD = 0x00200000
"""Flag bit of kernel threads in /proc/<pid>/stat field 9."""

HOLDER_MODULE = "chaosrunner.faults.holder"


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    start_ticks: int
    state: str
    comm: str
    uid: int
    flags: int
    argv: tuple[str, ...]

    @property
    def kernel_thread(self) -> bool:
        return bool(self.flags & PF_KTHREAD)

    @property
    def command_line(self) -> str:
        return " ".join(self.argv)

    @property
    def exited(self) -> bool:
        return self.state in ("Z", "X")


def read_process(pid: int) -> ProcessInfo | None:
    """Facts about ``pid``, or None if it is gone (or vanished while being read)."""
    base = Path(f"/proc/{pid}")
    try:
        raw = (base / "stat").read_text()
        status = (base / "status").read_text()
        argv_raw = (base / "cmdline").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    uid = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:")), -1)
    argv = tuple(part.decode(errors="replace") for part in argv_raw.split(b"\0") if part)
    return ProcessInfo(
        pid=pid,
        ppid=int(fields[1]),
        start_ticks=int(fields[19]),
        state=fields[0],
        comm=comm,
        uid=uid,
        flags=int(fields[6]),
        argv=argv,
    )


def all_processes() -> list[ProcessInfo]:
    """Every process visible in /proc, in pid order."""
    pids = sorted(int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [info for pid in pids if (info := read_process(pid)) is not None]


def ancestry(pid: int) -> list[int]:
    """``pid`` and every parent up to (and including) pid 1."""
    chain: list[int] = []
    current: int | None = pid
    while current and current not in chain:
        chain.append(current)
        info = read_process(current)
        current = info.ppid if info else None
    return chain


def is_alive(pid: int, start_ticks: int) -> bool:
    """True while the process (pid *and* start time) exists and has not exited."""
    info = read_process(pid)
    return info is not None and info.start_ticks == start_ticks and not info.exited


def state_of(pid: int, start_ticks: int) -> str | None:
    """The process state letter (R, S, T, ...) or None if it is gone or the pid was recycled."""
    info = read_process(pid)
    return info.state if info is not None and info.start_ticks == start_ticks else None


def send_signal(pid: int, start_ticks: int, signum: int) -> bool:
    """Signal the process only if it is still the one identified; False if it is gone."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except OSError:
        return _send_without_pidfd(pid, start_ticks, signum)
    try:
        if process_start_ticks(pid) != start_ticks:
            return False
        signal.pidfd_send_signal(pidfd, signum)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)


def _send_without_pidfd(pid: int, start_ticks: int, signum: int) -> bool:
    # Kernels before 5.3 have no pidfd: check then signal, a window of microseconds.
    if process_start_ticks(pid) != start_ticks:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
        return True
    return False


def is_holder(info: ProcessInfo) -> bool:
    """A chaosrunner holder process (``python -m chaosrunner.faults.holder``)."""
    return HOLDER_MODULE in info.argv and _after(info.argv, "-m") == HOLDER_MODULE


def is_chaosrunner(info: ProcessInfo) -> bool:
    """The chaosrunner CLI (its script or ``python -m chaosrunner``), or one of its holders."""
    if is_holder(info):
        return True
    if info.argv and os.path.basename(info.argv[0]) == "chaosrunner":
        return True
    if len(info.argv) > 1 and os.path.basename(info.argv[1]) == "chaosrunner":
        return True  # "python /usr/bin/chaosrunner ..." as a script run by an interpreter
    module = _after(info.argv, "-m")
    return module is not None and (module == "chaosrunner" or module.startswith("chaosrunner."))


def _after(argv: tuple[str, ...], flag: str) -> str | None:
    with contextlib.suppress(ValueError, IndexError):
        return argv[argv.index(flag) + 1]
    return None
