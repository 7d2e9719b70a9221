"""The go/no-go gate: a gameday run waits here, after preflight and before injecting.

The decision is not the engine's to take and it never learns about HTTP: the
facilitator's page and ``chaosrunner go`` journal a ``go_decision`` event
(gameday.run_sheet.record_decision) and the gate reads it back by tailing the
run's own journal. Tailing costs one read of the new bytes every
``POLL_SECONDS``, and the wait is on the runner's stop event, so an abort
condition, the kill switch, ``chaosrunner abort`` or a signal ends it at once.

One decision per run: whoever journals a decision, and the gate when it gives
up at ``go_timeout``, first take ``decision_lock`` (an exclusive flock on a
file in the run folder), look at the journal, then append. So two "go" clicks
at once journal one decision, and a "go" racing the timeout either lands
before the timeout's abort (and the run injects) or is refused after it.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from chaosrunner.engine.journal import JournalEvent, JournalTail
from chaosrunner.private_files import open_private

POLL_SECONDS = 0.1
LOCK_FILE = "decision.lock"
SHOWN_WHILE_WAITING = frozenset({"go_decision", "checklist"})
"""Events other processes journal during the wait that the runner's console should show."""


@contextmanager
def decision_lock(run_folder: Path) -> Iterator[None]:
    """Held while the journal is checked and a decision (or the timeout's abort) appended."""
    fd = open_private(run_folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def wait_for_go(
    journal_path: Path,
    stop: threading.Event,
    timeout: float,
    *,
    on_timeout: Callable[[], None],
    on_event: Callable[[JournalEvent], None] | None = None,
    poll: float = POLL_SECONDS,
) -> JournalEvent | None:
    """The ``go_decision`` event once journaled; None when ``stop`` is set or ``timeout`` passes.

    At the timeout, ``on_timeout`` runs under ``decision_lock`` after a last look
    at the journal, so no decision can be journaled after it. ``on_event`` sees
    every checklist tick and the decision as they arrive (the console shows what
    the facilitator does from another process).
    """
    tail = JournalTail(journal_path)

    def decision() -> JournalEvent | None:
        for event in tail.read_new():
            if event.type in SHOWN_WHILE_WAITING and on_event is not None:
                on_event(event)
            if event.type == "go_decision":
                return event
        return None

    deadline = time.monotonic() + timeout
    while True:
        found = decision()
        if found is not None:
            return found
        left = deadline - time.monotonic()
        if left <= 0:
            with decision_lock(journal_path.parent):
                found = decision()
                if found is None:
                    on_timeout()
            return found
        if stop.wait(min(poll, left)):
            return None
