"""Signal handlers that stop a thread's wait without deadlocking it.

A Python signal handler runs in the main thread, between two bytecodes -
possibly in the middle of ``Event.wait`` while that thread holds the event's
internal lock. A handler that calls ``event.set()`` then waits for a lock its
own thread holds, and the process hangs for ever (seen: a PostgreSQL holder
that ignored SIGTERM past its deadline). So the handler only starts a thread,
and that thread sets the event once the main thread has let go of the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any]


def set_event_handler(event: threading.Event) -> Handler:
    """A signal handler that sets ``event`` safely (from another thread)."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=event.set, name="signal", daemon=True).start()

    return handler
