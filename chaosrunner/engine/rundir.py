"""Run folders: where a run's journal lives, and how to tell a live run from a dead one.

``<state dir>/runs/<run id>/`` holds ``journal.jsonl``, ``runner.lock`` and,
when an operator asks a run to stop, ``abort-request``. The runner holds an
exclusive ``flock`` on ``runner.lock`` for its whole life; the kernel drops it
when the process dies, however it dies. So "is this run live?" is "can I take
the lock?" - no pid files to go stale, no pid reuse to fool us.
"""

from __future__ import annotations

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
        run = cls(runs_root() / (run_id or new_run_id()))
        run.path.mkdir(parents=True, exist_ok=False)
        return run

    @classmethod
    def find(cls, run_id: str) -> RunDir:
        path = runs_root() / run_id
        if not RUN_ID.match(run_id) or not (path / FILE_NAME).exists():
            raise UnknownRun(f"no run {run_id!r} in {runs_root()} (list them with `chaosrunner runs`)")
        return cls(path)

    def hold_lock(self) -> None:
        """Mark this run live for as long as this process lives."""
        handle = self.lock_path.open("ab")
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock_handle = handle

    def release_lock(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def is_live(self) -> bool:
        if self._lock_handle is not None:
            return True
        try:
            handle = self.lock_path.open("ab")
        except FileNotFoundError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False

    def journal(self) -> Journal:
        return Journal.open_existing(self.journal_path)

    def events(self) -> list[JournalEvent]:
        return list(read_events(self.journal_path))

    def request_abort(self, reason: str) -> None:
        tmp = self.abort_request_path.with_suffix(".tmp")
        tmp.write_text(reason)
        os.replace(tmp, self.abort_request_path)

    def abort_requested(self) -> str | None:
        try:
            return self.abort_request_path.read_text() or "abort requested"
        except FileNotFoundError:
            return None


def all_runs() -> list[RunDir]:
    root = runs_root()
    if not root.is_dir():
        return []
    return [
        RunDir(path)
        for path in sorted(root.iterdir())
        if RUN_ID.match(path.name) and (path / FILE_NAME).exists()
    ]
