"""The stress program that runs INSIDE a target container: burn CPU or hold memory.

This file is not imported by chaosrunner: ``stress.py`` reads its source and
runs it with the container's own interpreter (``python3 -c SOURCE MARKER MODE
...`` through ``docker exec``), so the load lands in the container's cgroup -
its CPU quota, its memory limit, its ``docker stats`` - exactly as the
application's own load would. It therefore uses the standard library only and
runs on Python 3.7 or newer.

Usage (arguments after the source)::

    MARKER cpu SECONDS WORKERS LOAD_PERCENT   fork WORKERS busy loops
    MARKER memory SECONDS MEGABYTES           allocate and touch MEGABYTES MiB, keep them
    MARKER find                               JSON list of this MARKER's stress processes
    MARKER stop                               end them (SIGTERM, then SIGKILL)

The MARKER (``chaosrunner-stress:<run>:<fault>``) sits in every stress
process's command line: that is how ``find`` and ``stop`` (run later, from any
chaosrunner process) recognise exactly this fault's processes.

Dead-man's switch: every stress process arms ``alarm(SECONDS)``, whose default
action terminates it, and also checks its deadline as it loops; workers die
with their parent (PR_SET_PDEATHSIG). Nothing needs chaosrunner alive to end.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time

STRESS_MODES = ("cpu", "memory")
SLICE_SECONDS = 0.1
PAGE = 4096
MEBIBYTE = 1 << 20
PR_SET_PDEATHSIG = 1


def arm_fuse(seconds: float) -> None:
    """SIGALRM's default action ends the process: the fuse works even if the loop hangs."""
    signal.alarm(max(1, math.ceil(seconds)))


def die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:  # not Linux, or no libc: the fuse still ends the worker
        return


def burn(deadline: float, load: int) -> None:
    """Busy for ``load`` percent of every 100 ms slice until ``deadline``."""
    busy = SLICE_SECONDS * load / 100.0
    while True:
        start = time.monotonic()
        if start >= deadline:
            return
        while time.monotonic() - start < busy:
            pass
        if busy < SLICE_SECONDS:
            time.sleep(SLICE_SECONDS - busy)


def stress_cpu(seconds: float, workers: int, load: int) -> None:
    deadline = time.monotonic() + seconds
    children = []

    def end(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, end)
    try:
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                try:
                    die_with_parent()
                    arm_fuse(seconds)
                    burn(deadline, load)
                finally:
                    os._exit(0)
            children.append(pid)
        for pid in children:
            os.waitpid(pid, 0)
    finally:
        # Reap our workers ourselves: the container's pid 1 may never reap orphans.
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def stress_memory(seconds: float, megabytes: int) -> None:
    deadline = time.monotonic() + seconds
    blocks = []
    for _ in range(megabytes):
        block = bytearray(MEBIBYTE)
        block[::PAGE] = b"\x01" * (MEBIBYTE // PAGE)  # write every page so it is resident
        blocks.append(block)
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def find(marker: str) -> list[dict[str, object]]:
    """This marker's live stress processes, with parent, role and resident memory."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            args = [arg.decode("utf-8", "replace") for arg in _read(f"/proc/{name}/cmdline").split(b"\0")]
            stat = _read(f"/proc/{name}/stat").decode("ascii", "replace")
            status = _read(f"/proc/{name}/status").decode("ascii", "replace")
        except OSError:
            continue
        if marker not in args:
            continue
        index = args.index(marker)
        if index + 1 >= len(args) or args[index + 1] not in STRESS_MODES:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X"):
            continue
        rss_kb = 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
        found.append({"pid": int(name), "ppid": int(fields[1]), "mode": args[index + 1], "rss_kb": rss_kb})
    pids = {entry["pid"] for entry in found}
    for entry in found:
        entry["role"] = "worker" if entry["ppid"] in pids else "main"
    return found


def stop(marker: str, patience: float = 3.0) -> dict[str, int]:
    found = find(marker)
    for entry in found:
        if entry["role"] == "main":
            _signal(int(str(entry["pid"])), signal.SIGTERM)
    deadline = time.monotonic() + patience
    while find(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    leftovers = find(marker)
    for entry in leftovers:
        _signal(int(str(entry["pid"])), signal.SIGKILL)
    return {"stopped": len(found), "killed": len(leftovers)}


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def main(argv: list[str]) -> int:
    marker, mode = argv[0], argv[1]
    if mode == "find":
        sys.stdout.write(json.dumps(find(marker)) + "\n")
        return 0
    if mode == "stop":
        sys.stdout.write(json.dumps(stop(marker)) + "\n")
        return 0
    seconds = float(argv[2])
    # The loops stop at the deadline; the alarm, a second later, is the backstop.
    arm_fuse(seconds + 1)
    if mode == "cpu":
        stress_cpu(seconds, int(argv[3]), int(argv[4]))
    elif mode == "memory":
        stress_memory(seconds, int(argv[3]))
    else:
        sys.stderr.write(f"unknown mode {mode!r}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
