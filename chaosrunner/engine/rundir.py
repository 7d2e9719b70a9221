"""Run folders: where a run's journal lives, and how to tell a live run from a dead one.

``<state dir>/runs/<run id>/`` holds ``journal.jsonl``, ``runner.lock`` and,
when an operator asks a run to stop, ``abort-request``. The runner holds an
exclusive ``flock`` on ``runner.lock`` for its whole life; the kernel drops it
when the process dies, however it dies. So "is this run live?" starts with
"can I take the lock?" - no pid file to go stale decides it.

A lock can be taken by anyone who can open the file, though, and a forged
lock would make ``recover`` leave a dead run's faults in place. Two defences:
the state folders are 0700 and their files 0600 (chaosrunner.private_files),
so other users cannot open the lock at all; and a busy lock counts as live
only when the kernel says (``/proc/locks``) that the runner itself holds it -
the pid and start time it wrote into the lock file before locking it (or, for
runs of older versions, the ones its journal recorded). A lock held by any
other process is not a live runner.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from chaosrunner.engine.journal import FILE_NAME, Journal, JournalEvent, read_events
from chaosrunner.errors import UnknownRun
from chaosrunner.faults.holder import process_start_ticks
from chaosrunner.private_files import (
    DIR_MODE,
    open_private,
    private_dir,
    read_no_follow,
    tighten,
    write_private,
)
from chaosrunner.statedir import state_dir

RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


def runs_root() -> Path:
    return state_dir() / "runs"


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class RunDir:
    path: Path
    _lock_handle: IO[bytes] | None = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def journal_path(self) -> Path:
        return self.path / FILE_NAME

    @property
    def lock_path(self) -> Path:
        return self.path / "runner.lock"

    @property
    def abort_request_path(self) -> Path:
        return self.path / "abort-request"

    @classmethod
    def create(cls, run_id: str | None = None) -> RunDir:
        """A new run folder, 0700 inside 0700 folders (older, looser ones are tightened)."""
        private_dir(state_dir())
        root = private_dir(runs_root())
        for existing in root.iterdir():  # run folders an older version left readable to others
            tighten(existing)
        run = cls(root / (run_id or new_run_id()))
        run.path.mkdir(mode=DIR_MODE)
        os.chmod(run.path, DIR_MODE)  # the umask may have taken bits off
        return run

    @classmethod
    def find(cls, run_id: str) -> RunDir:
        path = runs_root() / run_id
        if not RUN_ID.match(run_id) or not (path / FILE_NAME).exists():
            raise UnknownRun(f"no run {run_id!r} in {runs_root()} (list them with `chaosrunner runs`)")
        return cls(path)

    def hold_lock(self) -> None:
        """Mark this run live for as long as this process lives.

        The runner's pid and start time go into the lock file *before* the
        lock is taken, so whoever sees the lock busy can ask who holds it.
        """
        fd = open_private(self.lock_path, os.O_RDWR | os.O_CREAT)
        handle = os.fdopen(fd, "r+b")
        try:
            handle.truncate(0)
            handle.write(f"{os.getpid()} {process_start_ticks(os.getpid())}\n".encode())
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            handle.close()
            raise
        self._lock_handle = handle

    def release_lock(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def is_live(self) -> bool:
        """Is this run's runner alive? Only the runner holding its own lock counts."""
        if self._lock_handle is not None:
            return True
        try:
            fd = open_private(self.lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        except OSError as error:
            if error.errno == errno.ELOOP:  # a symlink: the runner never makes one, so no runner is behind it
                return False
            raise
        with os.fdopen(fd, "rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._held_by_runner(handle)
            return False

    def _held_by_runner(self, handle: IO[bytes]) -> bool:
        """The lock is busy: is the holder the runner, or someone who merely could open the file?"""
        runner = _recorded_runner(handle.read(128)) or self._runner_from_journal()
        if runner is None:
            return True  # nothing says who the runner is: a busy lock is all we have
        pid, start_ticks = runner
        if process_start_ticks(pid) != start_ticks:
            return False  # the runner is gone (its pid may since belong to someone else)
        holders = lock_holders(os.fstat(handle.fileno()).st_ino)
        # Without /proc/locks, the runner being alive with its lock busy is the best evidence there is.
        return holders is None or pid in holders

    def _runner_from_journal(self) -> tuple[int, int] | None:
        first = next(read_events(self.journal_path), None)
        if first is None or first.type != "run_started":
            return None
        pid, ticks = first.get("pid"), first.get("pid_start_ticks")
        return (pid, ticks) if isinstance(pid, int) and isinstance(ticks, int) else None

    def journal(self) -> Journal:
        return Journal.open_existing(self.journal_path)

    def events(self) -> list[JournalEvent]:
        return list(read_events(self.journal_path))

    def request_abort(self, reason: str) -> None:
        write_private(self.abort_request_path, reason)

    def abort_requested(self) -> str | None:
        try:
            reason = read_no_follow(self.abort_request_path, limit=4096)
        except FileNotFoundError:
            return None
        except OSError as error:  # something is there that we cannot read: still a request to stop
            return f"abort requested (abort-request unreadable: {error.strerror})"
        return reason.decode(errors="replace") or "abort requested"


def all_runs() -> list[RunDir]:
    root = runs_root()
    if not root.is_dir():
        return []
    return [
        RunDir(path)
        for path in sorted(root.iterdir())
        if RUN_ID.match(path.name) and (path / FILE_NAME).exists()
    ]


def _recorded_runner(content: bytes) -> tuple[int, int] | None:
    """``PID START_TICKS`` as ``hold_lock`` wrote it; None for older, empty lock files."""
    try:
        pid, ticks = content.split()
        return int(pid), int(ticks)
    except ValueError:
        return None


def lock_holders(inode: int) -> set[int] | None:
    """Pids holding a lock on a file with this inode number, from /proc/locks (None: unavailable).

    A line reads ``1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF``; waiters
    (``1: -> FLOCK ...``) hold nothing and are skipped. The inode number alone
    is matched (the device numbers differ on overlay filesystems): a false
    match could only ever add a pid, and a pid only counts when it is the
    runner's.
    """
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as table:
            lines = table.read().splitlines()
    except OSError:
        return None
    holders: set[int] = set()
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->":
            continue
        try:
            pid, inode_field = int(fields[4]), int(fields[5].rsplit(":", 1)[1])
        except (ValueError, IndexError):
            continue
        if inode_field == inode:
            holders.add(pid)
    return holders
