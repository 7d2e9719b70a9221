"""Past runs as ``chaosrunner serve`` shows them: the history rows, and each run's debrief on demand.

The console's run list is what ``chaosrunner history`` prints (``report.history``:
the figures kept when a report was written, or measured from the journal alone),
newest first. A run's report is rendered when asked, from its journal, offline:
the state folder is the one place every run is sure to have left something -
reports may have been written anywhere (``--out``, another working directory), and
Prometheus may have dropped the run's data long ago. Offline also keeps a page
from making the server query a Prometheus named in a scenario file.

Which run a request means is looked up in the state folder's own listing, never
built into a path from what the request said.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from chaosrunner.engine.rundir import RunDir, all_runs
from chaosrunner.gameday.debrief import debrief
from chaosrunner.report.history import HistoryEntry, entry_for, of_scenario
from chaosrunner.report.model import build_report
from chaosrunner.report.writer import render

CACHED_REPORTS = 16
"""Rendered reports kept in memory: a facilitator flicking between a few runs pays once each."""


def history_row(entry: HistoryEntry) -> dict[str, Any]:
    """One row of the run list: what ``chaosrunner history`` shows."""
    return {
        "run_id": entry.run_id,
        "title": entry.scenario,
        "started": entry.started,
        "status": entry.status,
        "ttd_s": entry.ttd_seconds,
        "ttm_s": entry.ttm_seconds,
        "score": entry.score,
        "grade": entry.grade,
    }


class PastRuns:
    """The state folder's runs, read-only."""

    def __init__(self, cached: int = CACHED_REPORTS) -> None:
        self._cached = cached
        self._reports: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._lock = threading.Lock()

    def rows(self) -> list[dict[str, Any]]:
        """Every run, newest first."""
        entries = sorted((entry_for(run) for run in all_runs()), key=lambda e: (e.started, e.run_id))
        return [history_row(entry) for entry in reversed(entries)]

    def find(self, run_id: str) -> RunDir | None:
        """The run of that id in the state folder's listing; None when there is none."""
        return next((run for run in all_runs() if run.run_id == run_id), None)

    def report_html(self, run_id: str) -> str | None:
        """The run's debrief as HTML (secrets scrubbed, as every report); None for an unknown run."""
        run = self.find(run_id)
        if run is None:
            return None
        # A run still going grows its journal: the size keys the cache, so a reload shows more.
        key = (run.run_id, run.journal_path.stat().st_size)
        with self._lock:
            if key in self._reports:
                self._reports.move_to_end(key)
                return self._reports[key]
        result = debrief(run, offline=True)
        report = build_report(result, None, history=of_scenario(result))
        html = render(report, ["html"])["html"]
        with self._lock:
            self._reports[key] = html
            while len(self._reports) > self._cached:
                self._reports.popitem(last=False)
        return html
