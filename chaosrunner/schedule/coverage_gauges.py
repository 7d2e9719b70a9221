"""After a scheduled run: its scenario's detection coverage, pushed to the Pushgateway.

Staging dashboards and alerts then see, per scenario and alert rule, the share
of runs in which the alert fired and its median time to fire
(observe.pushgateway.push_detection_coverage), from the results store's
report documents (report.coverage). Best effort, like the outcome gauges: a
store or Pushgateway that fails never fails the schedule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chaosrunner.report.coverage import coverage


def coverage_cells(
    title: str, documents: Iterable[dict[str, Any]]
) -> list[tuple[str, str, bool, int, int, float | None]]:
    found = coverage(documents)
    return [
        (cell.alert, cell.layer, cell.expected, cell.fired, cell.runs, cell.ttd_seconds)
        for cell in found.cells
        if cell.scenario == title
    ]


def push_scenario_coverage(pushgateway: str, title: str, documents: Iterable[dict[str, Any]]) -> None:
    """Push the coverage of ``title`` computed over ``documents`` (the store's, for that scenario)."""
    from chaosrunner.observe.pushgateway import push_detection_coverage

    cells = coverage_cells(title, documents)
    if cells:
        push_detection_coverage(pushgateway, title, cells)
