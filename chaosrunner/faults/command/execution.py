"""Running a scenario's argv: no shell, a deadline, a bounded stderr tail, a marked environment.

Everything the ``command.run`` kind needs from the operating system lives here,
so the fault module reads as the protocol (plan, inject, revert, check) and
this one as the mechanism:

- ``run_bounded`` runs an argv to completion or to its deadline, in a session
  of its own, and kills the whole process group when the deadline passes (a
  script's children do not outlive it);
- stderr is kept as a *tail* (the last ``TAIL_BYTES``), read by a thread, so a
  chatty program costs neither memory nor disk; stdout is discarded;
- every process we start carries ``MARKER_VARIABLE=<label>`` in its
  environment. Children inherit it, so ``marked_processes`` finds an inject's
  whole tree from /proc - even after the runner was SIGKILLed between spawning
  it and journaling its pid, and even a child that left the process group;
- secret values (``env_from``) are read from our own environment at the moment
  a program starts, never stored, and masked in any tail we keep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from chaosrunner.errors import FaultError
from chaosrunner.faults.holder import process_start_ticks

MARKER_VARIABLE = "CHAOSRUNNER_COMMAND_FAULT"
TAIL_BYTES = 2048
"""How much of a program's stderr is kept (and journaled): enough for the error, never a log."""
TERMINATE_GRACE = 5.0
"""SIGTERM to SIGKILL, for a process group we end."""
MASK = "***"


@dataclass(frozen=True)
class CommandResult:
    """What became of one run of an argv: JSON data for the revert record and the journal."""

    argv0: str
    exit_code: int | None  # None: killed at its deadline
    elapsed: float
    stderr_tail: str
    timed_out: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        how = "did not exit within its deadline (killed)" if self.timed_out else f"exited {self.exit_code}"
        tail = self.stderr_tail.strip().splitlines()[-3:]
        return f"{self.argv0} {how} after {self.elapsed:.2f}s" + (
            f"; stderr: {' | '.join(tail)}" if tail else ""
        )


def secret_values(env_from: Mapping[str, str]) -> dict[str, str]:
    """``{NAME: value}`` for each ``NAME: VARIABLE`` in env_from; refuses an unset variable by name."""
    missing = sorted(variable for variable in env_from.values() if variable not in os.environ)
    if missing:
        raise FaultError(
            f"environment variable(s) {', '.join(missing)} named in env_from are not set here "
            "(set them for `chaosrunner run` and `chaosrunner recover` alike)"
        )
    return {name: os.environ[variable] for name, variable in env_from.items()}


def command_env(env: Mapping[str, str], env_from: Mapping[str, str], label: str) -> dict[str, str]:
    """The environment a program runs with: ours, the literal extras, the secrets, the marker."""
    return {**os.environ, **env, **secret_values(env_from), MARKER_VARIABLE: label}


def mask(text: str, secrets: Sequence[str]) -> str:
    """A program may echo a secret it was given: never keep it."""
    for value in sorted(secrets, key=len, reverse=True):
        if len(value) >= 4:  # masking "1" would garble every number in the tail
            text = text.replace(value, MASK)
    return text


class TailReader:
    """Drains a pipe in a thread, keeping only its last ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int = TAIL_BYTES) -> None:
        self._stream = stream
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._limit = limit
        self._thread = threading.Thread(target=self._drain, name="command-stderr", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for chunk in iter(lambda: os.read(self._stream.fileno(), 4096), b""):
                self._chunks.append(chunk)
                self._size += len(chunk)
                while self._size - len(self._chunks[0]) >= self._limit:
                    self._size -= len(self._chunks.popleft())

    def text(self, secrets: Sequence[str] = (), wait: float = 1.0) -> str:
        self._thread.join(wait)  # a grandchild holding the pipe open must not hang us
        data = b"".join(self._chunks)[-self._limit :]
        return mask(data.decode("utf-8", errors="replace"), secrets)


def start(argv: Sequence[str], env: Mapping[str, str], cwd: str | None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session (its pid is its process group), stderr piped."""
    try:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as error:
        raise FaultError(f"cannot start {argv[0]!r}: {error.strerror or error}") from error


def run_bounded(
    argv: Sequence[str], env: Mapping[str, str], cwd: str | None, deadline: float, secrets: Sequence[str]
) -> CommandResult:
    """Run ``argv`` until it exits or ``deadline`` seconds pass (then its group is killed)."""
    began = time.monotonic()
    process = start(argv, env, cwd)
    assert process.stderr is not None
    tail = TailReader(process.stderr)
    timed_out = False
    try:
        process.wait(timeout=deadline)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(process.pid)
        process.wait()
    elapsed = time.monotonic() - began
    result = CommandResult(
        argv0=argv[0],
        exit_code=None if timed_out else process.returncode,
        elapsed=round(elapsed, 3),
        stderr_tail=tail.text(secrets),
        timed_out=timed_out,
    )
    process.stderr.close()
    return result


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass(frozen=True)
class MarkedProcess:
    pid: int
    start_ticks: int
    pgid: int


def marked_processes(label: str) -> list[MarkedProcess]:
    """Every live process whose environment carries our marker for ``label``."""
    wanted = f"{MARKER_VARIABLE}={label}".encode()
    found = []
    own = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if wanted not in environ.split(b"\0"):
            continue
        pid = int(entry.name)
        ticks = process_start_ticks(pid)
        if ticks is None or _is_zombie(pid):
            continue
        with contextlib.suppress(ProcessLookupError):
            found.append(MarkedProcess(pid, ticks, os.getpgid(pid)))
    return found


def _is_zombie(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return raw[raw.rindex(")") + 2 :].split()[0] in ("Z", "X")


def terminate_marked(label: str, grace: float = TERMINATE_GRACE) -> list[int]:
    """End every process of ``label`` with its process group: SIGTERM, then SIGKILL after ``grace``.

    Returns the pids that were running. Only marked processes are signalled,
    each through its own group, so a recycled pid or group id can never be hit.
    """
    victims = marked_processes(label)
    if not victims:
        return []
    for victim in victims:
        kill_group(victim.pgid, signal.SIGTERM)
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim.pid, signal.SIGTERM)
    give_up = time.monotonic() + grace
    while time.monotonic() < give_up and marked_processes(label):
        time.sleep(0.05)
    for victim in marked_processes(label):
        kill_group(victim.pgid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim.pid, signal.SIGKILL)
    give_up = time.monotonic() + grace
    while time.monotonic() < give_up and marked_processes(label):
        time.sleep(0.05)
    left = marked_processes(label)
    if left:
        raise FaultError(
            f"processes {', '.join(str(p.pid) for p in left)} of {label} survived SIGKILL "
            "(stuck in the kernel?)"
        )
    return [victim.pid for victim in victims]
