"""What the console's routes read about the live run: one object the session fills in.

The routes never hold the runner: they get the run folder (journal, abort
request, liveness), the scenario, the feed, the live view's series and,
once written, where the report is. The engine stays unaware of HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrunner.engine.rundir import RunDir
from chaosrunner.gameday.server.feed import RunFeed
from chaosrunner.scenario.models import Scenario


class ReportHandoff:
    """How many pages were told the debrief is there, and how many have fetched it.

    A page learns of the report from its stream and then asks for it: without
    ``--linger`` the server stopped in between and the facilitator's page
    showed a failed request instead of the debrief (CI hit it). The server's
    close waits - briefly, and only for pages that were told - until each has
    had it.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._owed = 0
        self._fetched = 0

    def told(self, pages: int) -> None:
        with self._changed:
            self._owed += pages

    def fetched(self) -> None:
        with self._changed:
            self._fetched += 1
            self._changed.notify_all()

    def wait(self, timeout: float) -> bool:
        """True when every page told has fetched the report; False when ``timeout`` ran out first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._fetched >= self._owed, timeout)


@dataclass
class LiveRun:
    run: RunDir
    scenario: Scenario
    mode: str
    feed: RunFeed
    series: Callable[[], dict[str, Any]] | None = None  # the live view's samples so far
    measured: Callable[[], dict[str, Any] | None] | None = None  # the live view's latest TTD/TTM/TTR
    report_file: Path | None = None  # the HTML debrief, once the run's end wrote it
    report_handoff: ReportHandoff = field(default_factory=ReportHandoff)

    def report_ready(self, report_file: Path) -> None:
        """Every open page learns the debrief is there (``GET /api/report``) and is owed it."""
        self.report_file = report_file
        self.report_handoff.told(self.feed.subscribers)
        self.feed.publish("report", {"url": "/api/report"})
