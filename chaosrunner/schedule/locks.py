"""Target locks: never two runs on the same target, across daemons on this machine.

An exclusive, non-blocking ``flock`` on ``<state dir>/locks/<name>.lock``:
the kernel releases it when the holder dies, so a crashed daemon never leaves
a target locked.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

from chaosrunner.statedir import state_dir


@contextmanager
def target_lock(name: str) -> Iterator[bool]:
    """Yields True when this process holds the lock, False when someone else does."""
    folder = state_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{name}.lock").open("ab") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
