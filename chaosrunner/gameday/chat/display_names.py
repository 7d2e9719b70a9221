"""Slack user ids to the names people see, within a time budget, remembered for the run.

A slash command must be answered within Slack's three seconds, and the mark's
author and an ``ic <@U123>`` want the person's display name, which only
``users.info`` knows. So every lookup a request needs runs at once, on a few
threads, and the request waits for them together at most ``budget`` seconds
(1.5 s by default: half of Slack's limit, the rest for the journal and the
answer). What is not known by then falls back to what the request carried
(``user_name``, the mention's own label, the id); a lookup that finishes late
still fills the cache, so the next command from that person has the name.

Names are remembered for the run (a person's display name rarely changes
during a gameday, and asking Slack once per command would spend the budget
every time); a failed lookup is not asked again for a minute, so a Slack that
refuses the token is not asked on every command.

Each lookup runs on a daemon thread of its own (at most ``MAX_ASKING`` at
once; past that a name is simply not looked up this time): a lookup stuck on
a Slack that does not answer must never hold the runner's process open at
exit, which a thread pool's workers would (Python joins them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, wait

RESOLVE_BUDGET = 1.5  # seconds one request may wait for names, all lookups together
RETRY_FAILED_AFTER = 60.0
MAX_REMEMBERED = 5_000  # names; a workspace's people, far more than a gameday's
MAX_ASKING = 16  # lookups under way at once; a gameday has a handful of people

Lookup = Callable[[str], "str | None"]


class DisplayNames:
    """A cache of display names in front of ``lookup`` (user id -> name or None)."""

    def __init__(self, lookup: Lookup, clock: Callable[[], float] = time.monotonic) -> None:
        self._lookup = lookup
        self._clock = clock
        self._names: dict[str, str] = {}
        self._failed_until: dict[str, float] = {}
        self._pending: dict[str, Future[str | None]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def resolve(self, user_ids: Iterable[str], budget: float = RESOLVE_BUDGET) -> dict[str, str]:
        """The names known for ``user_ids`` within ``budget`` seconds; unknown ids are left out."""
        deadline = self._clock() + budget
        waiting: dict[str, Future[str | None]] = {}
        found: dict[str, str] = {}
        with self._lock:
            for user_id in dict.fromkeys(user_ids):
                if user_id in self._names:
                    found[user_id] = self._names[user_id]
                elif self._failed_until.get(user_id, 0.0) > self._clock():
                    continue
                else:
                    asked = self._pending.get(user_id) or self._ask(user_id)
                    if asked is not None:
                        waiting[user_id] = asked
        if waiting:
            wait(waiting.values(), timeout=max(0.0, deadline - self._clock()))
        for user_id, future in waiting.items():
            name = future.result() if future.done() else None
            if name:
                found[user_id] = name
        return found

    def _ask(self, user_id: str) -> Future[str | None] | None:
        if self._closed or len(self._pending) >= MAX_ASKING:
            return None
        future: Future[str | None] = Future()
        self._pending[user_id] = future

        def look_up() -> None:
            try:
                name = self._lookup(user_id)
            except Exception:  # any failure is "no name": the caller falls back
                name = None
            # Remembered before the future is done: a caller woken by it must find the answer
            # (or the failure's back-off) already recorded. A done-callback runs after the
            # waiters wake, and a resolve in between saw a stale pending lookup (CI hit it).
            self._remember(user_id, name)
            future.set_result(name)

        threading.Thread(target=look_up, name="chat-names", daemon=True).start()
        return future

    def _remember(self, user_id: str, name: str | None) -> None:
        with self._lock:
            self._pending.pop(user_id, None)
            if name:
                if len(self._names) >= MAX_REMEMBERED:
                    self._names.pop(next(iter(self._names)))  # the oldest: it is asked again if needed
                self._names[user_id] = name
                self._failed_until.pop(user_id, None)
            else:
                self._failed_until[user_id] = self._clock() + RETRY_FAILED_AFTER
                if len(self._failed_until) > MAX_REMEMBERED:
                    self._failed_until.pop(next(iter(self._failed_until)))

    def close(self) -> None:
        """Stop asking; a lookup under way finishes on its own daemon thread."""
        self._closed = True


def slack_display_names(token: str, api_url: str, timeout: float = 5.0) -> DisplayNames:
    """Names from Slack's ``users.info`` with a bot token (``users:read``)."""
    from chaosrunner.gameday.chat.slack_api import user_display_name

    return DisplayNames(lambda user_id: user_display_name(token, user_id, api_url=api_url, timeout=timeout))
