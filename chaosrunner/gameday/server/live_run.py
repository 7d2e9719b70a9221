"""What the console's routes read about the live run: one object the session fills in.

The routes never hold the runner: they get the run folder (journal, abort
request, liveness), the scenario, the feed, the live view's series and,
once written, where the report is. The engine stays unaware of HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosrunner.engine.rundir import RunDir
from chaosrunner.gameday.server.feed import RunFeed
from chaosrunner.scenario.models import Scenario


@dataclass
class LiveRun:
    run: RunDir
    scenario: Scenario
    mode: str
    feed: RunFeed
    series: Callable[[], dict[str, Any]] | None = None  # the live view's samples so far
    measured: Callable[[], dict[str, Any] | None] | None = None  # the live view's latest TTD/TTM/TTR
    report_file: Path | None = None  # the HTML debrief, once the run's end wrote it
