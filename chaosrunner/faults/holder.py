"""Holder processes: the dead-man's switch for faults that need a live process.

Some faults only exist while a process keeps them: open PostgreSQL
connections, a proxy adding latency, a watchdog that will SIGCONT a paused
process. Running that inside chaosrunner would tie the fault's life to ours -
if we die, it leaks (Litmus' and Pumba's failure mode) or vanishes mid-run.
So such a fault runs in a *holder*: a detached process (own session, so a
Ctrl-C in the terminal does not reach it) that

- keeps the fault in place until its own deadline (duration plus grace) and
  then ends it by itself, whatever happened to chaosrunner;
- ends it early, cleanly, on SIGTERM (that is what ``revert`` sends);
- says ``ready`` on a pipe once the fault is really in place, so ``inject``
  returns only when the side effect exists.

A holder is identified by pid *and* its start time, so a recycled pid is
never mistaken for it. The record is plain JSON and works from any process,
which is what ``chaosrunner recover`` needs after a ``kill -9``.

A backend provides ``hold(spec, session)`` in a module and calls
``spawn(module, spec, ...)``; ``python -m chaosrunner.faults.holder`` is the
process entry point. Secrets never travel in ``spec`` (it is on the command
line): a holder reads them from the environment it inherits.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chaosrunner.errors import FaultError
from chaosrunner.private_files import open_private, private_dir
from chaosrunner.signals import set_event_handler
from chaosrunner.statedir import state_dir

READY = b"ready\n"


@dataclass(frozen=True)
class HolderRecord:
    pid: int
    start_ticks: int
    deadline: float
    label: str
    log: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HolderRecord:
        return cls(**{key: data[key] for key in ("pid", "start_ticks", "deadline", "label", "log")})


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if it is gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def is_alive(record: HolderRecord) -> bool:
    fields = _stat_fields(record.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return int(fields[19]) == record.start_ticks


def holder_log_dir() -> Path:
    """0700, like every state folder: a holder's log names its targets and errors."""
    return private_dir(state_dir() / "holders")


def spawn(
    module: str, spec: dict[str, Any], *, deadline: float, label: str, ready_timeout: float = 30.0
) -> HolderRecord:
    """Start a holder running ``module.hold(spec, session)``; return once it is ready."""
    log_path = holder_log_dir() / f"{label}.log"
    payload = json.dumps({"module": module, "spec": spec, "deadline": deadline, "label": label})
    with os.fdopen(open_private(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND), "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "chaosrunner.faults.holder", payload],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    _REAPABLE[process.pid] = process
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], ready_timeout)
    line = process.stdout.readline() if ready else b""
    process.stdout.close()
    if line != READY:
        process.kill()
        process.wait()
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        why = "did not become ready in time" if not ready else "exited before it was ready"
        raise FaultError(f"holder {label} {why}: " + (" | ".join(tail) or "no output"))
    start_ticks = process_start_ticks(process.pid)
    if start_ticks is None:
        raise FaultError(f"holder {label} vanished right after becoming ready")
    return HolderRecord(process.pid, start_ticks, deadline, label, str(log_path))


_REAPABLE: dict[int, subprocess.Popen[bytes]] = {}
"""Holders started by this process: reaped by us, so they do not linger as zombies."""


def request_stop(record: HolderRecord) -> None:
    """Ask a holder to end its fault (SIGTERM) without waiting for it to exit.

    Reverts use this when they can verify the fault's end another way (say,
    PostgreSQL backends terminated by name): the holder's exit - interpreter
    teardown - is then not on the revert's critical path.
    """
    if is_alive(record):
        os.kill(record.pid, signal.SIGTERM)


KILL_WAIT = 5.0
"""How long a SIGKILLed holder may take to vanish before revert gives up on it.

A process stuck in uninterruptible sleep (a hung NFS mount, a wedged device)
ignores even SIGKILL; waiting for it without a deadline would hang the revert
of every other fault and the run's end."""


def stop(record: HolderRecord, timeout: float = 10.0, kill_wait: float = KILL_WAIT) -> None:
    """End a holder early (it reverts its fault on SIGTERM) and wait until it is gone. Idempotent.

    Bounded: ``timeout`` for a clean exit, then SIGKILL and ``kill_wait`` more.
    A holder still there after both raises ``FaultError``, so the revert counts
    as failed (the fault may still be held) instead of hanging or lying.
    """
    request_stop(record)
    if _wait_gone(record, timeout):
        return
    with contextlib.suppress(ProcessLookupError):  # it exited right at the deadline
        os.kill(record.pid, signal.SIGKILL)
    if not _wait_gone(record, kill_wait):
        raise FaultError(
            f"holder {record.label} (pid {record.pid}) is still running {timeout + kill_wait:g}s after "
            "SIGTERM and SIGKILL (stuck in the kernel?); its fault may still be in place"
        )


def _wait_gone(record: HolderRecord, seconds: float) -> bool:
    """True once the holder is gone (reaped when it is our child), False after ``seconds``."""
    deadline = time.monotonic() + seconds
    while is_alive(record):
        _reap(record.pid)
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    _reap(record.pid)
    return True


def find_by_label(label: str) -> list[HolderRecord]:
    """Live holders started with ``label``, found in /proc.

    For reverts that only have the planned record (the injector died between
    spawning the holder and journaling its pid): the label is known in advance.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) < 4 or argv[1:3] != [b"-m", b"chaosrunner.faults.holder"]:
            continue
        try:
            request = json.loads(argv[3])
        except ValueError:
            continue
        if request.get("label") != label:
            continue
        pid = int(entry.name)
        ticks = process_start_ticks(pid)
        if ticks is not None:
            log = str(holder_log_dir() / f"{label}.log")
            found.append(HolderRecord(pid, ticks, float(request.get("deadline", 0)), label, log))
    return [record for record in found if is_alive(record)]


def _reap(pid: int) -> None:
    process = _REAPABLE.get(pid)
    if process is not None and process.poll() is not None:
        del _REAPABLE[pid]


class HolderSession:
    """What a backend's ``hold`` sees: its deadline, a ready signal and a stop signal."""

    def __init__(self, deadline: float, label: str) -> None:
        self.deadline = deadline
        self.label = label
        self.stopping = threading.Event()

    def ready(self) -> None:
        """Tell the injecting process the fault is in place."""
        os.write(1, READY)
        os.close(1)

    def wait(self) -> None:
        """Block until SIGTERM (revert) or the deadline (dead-man's switch)."""
        self.stopping.wait(max(0.0, self.deadline - time.time()))

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.time())


def _log_redacted() -> None:
    """A holder's log is read by people (spawn shows its tail in errors): no credentials in it."""
    import logging

    from chaosrunner.redaction import RedactingFilter

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())


def _main(payload: str) -> None:
    _log_redacted()
    request = json.loads(payload)
    session = HolderSession(request["deadline"], request["label"])
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, set_event_handler(session.stopping))
    hold = importlib.import_module(request["module"]).hold
    hold(request["spec"], session)


if __name__ == "__main__":
    _main(sys.argv[1])
