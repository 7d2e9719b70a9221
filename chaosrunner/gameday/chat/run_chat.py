"""One run's outbound chat: the notifier wired to a runner, each message's fate in the run's journal.

``ChatNotifier`` knows nothing of runs; this is where a run meets it. The
gameday session (``chaosrunner run``, gameday or automated, and the demo) and
the schedule daemon's executor make one with ``RunChat.for_runner`` before
``runner.run()`` and attach it as a listener. It

- reads the secrets once, then, and says in one warning line each variable
  the scenario names but the environment lacks (its name, never a value);
- journals what became of every message as ``chat_posted`` (kind, chat, ok,
  error, attempts - never the text, a token or a webhook URL);
- on ``close`` gives the channel a bounded while (``CLOSE_TIMEOUT``) to take
  what is left, then journals ``chat_closed`` with what was given up.

The journal outlives ``run_finished``: the last messages - the run finished,
the report - are posted after it, so their ``chat_posted`` lines come after it
too, until ``close``. After ``close`` nothing more is written, even when a
request that was already on its way answers late.

``chat_posted`` is written to the journal directly, not through the runner's
``emit``: the listeners (the terminal console, the session) would otherwise be
called from the chat's threads, after some of them have closed. The run's pages
see these lines anyway: the session hands its feed's ``wake``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaosrunner.gameday.chat.outbound import ChatNotifier, destinations_of, unset_variables

if TYPE_CHECKING:
    from chaosrunner.engine.runner import Runner
    from chaosrunner.gameday.debrief import Debrief

log = logging.getLogger("chaosrunner.chat")

CLOSE_TIMEOUT = 5.0
"""Seconds the channel gets after the run to take what is left: a chat service that is down costs
the run's end at most this (and a request's timeout rounded up to a second)."""


class RunChat:
    """A runner listener that tells the run's channels, and journals how that went."""

    def __init__(self, runner: Runner, *, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.runner = runner
        self.wake: Callable[[], None] | None = None  # the session's feed: pages see the lines at once
        self._lock = threading.Lock()
        self._closed = False
        self.notifier = ChatNotifier(
            runner.scenario, destinations_of(runner.scenario, environ), on_posted=self._journal_posted
        )

    @classmethod
    def for_runner(cls, runner: Runner, *, environ: Mapping[str, str] | None = None) -> RunChat | None:
        """The run's chat, or None when the scenario posts nowhere (nothing named, or nothing set).

        Each outbound variable named but not set is one warning line, whether or not another
        destination is set."""
        environ = os.environ if environ is None else environ
        for warning in unset_variables(runner.scenario, environ):
            log.warning("%s", warning)
        if not destinations_of(runner.scenario, environ):
            return None
        return cls(runner, environ=environ)

    # -- what the runner, the session and the schedule call ---------------------------------

    def __call__(self, event: Mapping[str, Any]) -> None:
        self.notifier(event)

    def set_console_link(self, url: str) -> None:
        """The observer's read-only link; never the facilitator's or the team's."""
        self.notifier.set_console_link(url)

    def report_written(self, report_file: Path | str | None, outcome: Debrief | None = None) -> None:
        self.notifier.report_written(report_file, outcome)

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Flush within ``timeout``, journal what was given up, and write nothing after. Idempotent."""
        with self._lock:
            if self._closed:
                return
        self.notifier.close(timeout)
        given_up, dropped = self.notifier.unsent, self.notifier.dropped
        self._journal(
            "chat_closed",
            last=True,  # a request still on its way that answers later is not journaled after this
            destinations=self.notifier.destinations,
            given_up=given_up,
            dropped=dropped,
            still_posting=self.notifier.working,
        )
        if given_up or dropped:
            log.warning(
                "chat: %d message(s) did not reach %s (%d dropped while the channel was not keeping up)",
                given_up + dropped,
                " and ".join(self.notifier.destinations),
                dropped,
            )

    # -- inside -------------------------------------------------------------------------------

    def _journal_posted(self, fields: dict[str, Any]) -> None:
        self._journal("chat_posted", **fields)

    def _journal(self, event_type: str, *, last: bool = False, **fields: Any) -> None:
        with self._lock:  # one writer at a time, and none after close
            journal = self.runner.journal
            if self._closed or journal is None:
                self._closed = self._closed or last
                return
            self._closed = last
            try:
                journal.write(journal.make_event(event_type, **fields))
            except OSError as error:
                log.warning("chat: could not journal %s: %s", event_type, error)
                return
        if self.wake is not None:
            try:
                self.wake()
            except Exception as error:  # the pages catch up at their next poll
                log.warning("chat: waking the run's pages failed: %s: %s", type(error).__name__, error)
