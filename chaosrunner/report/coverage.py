"""Detection coverage: which failures the alerts catch, how fast, and which alerts are noise.

Pure functions over many report documents (``report.json``, the results
store's rows): each carries its run's ``detection`` (report.detection) - every
alert rule Prometheus had loaded, whether the scenario expected it, whether
it fired after t0 and when. Across runs that becomes a map:

- **rows** are scenarios (with their fault kinds), **columns** every alert
  rule seen in any run. A **cell** says: fired in ``fired`` of ``runs`` runs,
  the median (and best) time from t0 to its first firing, its layer.
  A run in which the alert was already firing at t0 is pre-existing: it
  says nothing about the fault, so it is left out of ``runs`` (and counted
  in ``pre_existing``).
- each cell's **verdict**: ``caught`` (expected and fired at least once),
  ``gap`` (expected, never fired), ``noise`` (fired, not expected: noise,
  or a detector nobody declared), ``untested`` (neither).
- per **alert** across all scenarios, counting runs (docs/coverage.md):
  precision = runs where it fired and its scenario expected it / runs where
  it fired; recall = runs where it fired and was expected / runs where it
  was expected. Either is null when its denominator is 0. The alert's own
  verdict takes the strongest of its cells: caught, then gap, then noise,
  then untested (an alert never fired in any run).
- per **scenario**: the layers that caught it, its runs' own TTD (the
  measured detection, which may be a person's mark) best and median,
  against its target.

Documents without ``detection`` (reports from before it existed) and runs
that never injected (no t0: nothing to detect) are skipped and counted.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

VERDICT_ORDER = ("caught", "gap", "noise", "untested")


@dataclass
class Cell:
    scenario: str
    fault_kinds: list[str]
    alert: str
    layer: str
    expected: bool  # in the scenario's latest run
    runs: int  # runs that count (not pre-existing)
    fired: int
    pre_existing: int
    expected_runs: int
    ttd_seconds: float | None  # median t0 -> first firing over the runs it fired
    best_ttd_seconds: float | None
    verdict: str
    fired_expected: int = 0  # runs in which it fired and that run expected it
    _ttds: list[float] = field(default_factory=list, repr=False)

    def row(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_ttds")
        return data


@dataclass
class AlertSummary:
    alert: str
    layers: list[str]
    runs: int
    fired: int
    expected_runs: int
    fired_expected: int
    precision: float | None
    recall: float | None
    verdict: str
    scenarios_caught: list[str]


@dataclass
class ScenarioSummary:
    scenario: str
    fault_kinds: list[str]
    runs: int
    layers_caught: list[str]
    ttd_target_seconds: float | None
    best_ttd_seconds: float | None
    median_ttd_seconds: float | None
    within_target: int  # runs whose TTD met the target
    detected_runs: int


@dataclass
class Coverage:
    cells: list[Cell]
    alerts: list[AlertSummary]
    scenarios: list[ScenarioSummary]
    runs: int
    skipped: dict[str, int]

    def scenario_titles(self) -> list[str]:
        return [summary.scenario for summary in self.scenarios]

    def alert_names(self) -> list[str]:
        return [summary.alert for summary in self.alerts]

    def cell(self, scenario: str, alert: str) -> Cell | None:
        return next((c for c in self.cells if c.scenario == scenario and c.alert == alert), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "skipped": dict(self.skipped),
            "rows": [cell.row() for cell in self.cells],
            "alerts": [asdict(alert) for alert in self.alerts],
            "scenarios": [asdict(scenario) for scenario in self.scenarios],
        }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def cell_verdict(expected: bool, fired: int) -> str:
    if expected:
        return "caught" if fired else "gap"
    return "noise" if fired else "untested"


def coverage(documents: Iterable[Mapping[str, Any]]) -> Coverage:
    """The map over report documents given oldest first (the store's order)."""
    cells: dict[tuple[str, str], Cell] = {}
    kinds: dict[str, list[str]] = {}
    targets: dict[str, float | None] = {}
    run_ttds: dict[str, list[float]] = {}
    runs_of: dict[str, int] = {}
    within: dict[str, int] = {}
    alert_order: dict[str, None] = {}
    skipped = {"no_detection": 0, "not_injected": 0}
    counted = 0
    for document in documents:
        detection = document.get("detection")
        timings = document.get("timings") or {}
        if not detection:
            skipped["no_detection"] += 1
            continue
        if not timings.get("t0"):
            skipped["not_injected"] += 1
            continue
        counted += 1
        title = str(document["scenario"]["title"])
        kinds[title] = sorted({str(fault["kind"]) for fault in document["scenario"].get("faults", [])})
        ttd = timings.get("ttd") or {}
        targets[title] = ttd.get("target_seconds")
        runs_of[title] = runs_of.get(title, 0) + 1
        if ttd.get("seconds") is not None:
            run_ttds.setdefault(title, []).append(float(ttd["seconds"]))
            if ttd.get("met"):
                within[title] = within.get(title, 0) + 1
        for outcome in detection.get("alerts", []):
            name = str(outcome["alert"])
            alert_order.setdefault(name, None)
            cell = cells.get((title, name))
            if cell is None:
                cell = cells[(title, name)] = Cell(
                    title, [], name, str(outcome.get("layer", "")), False, 0, 0, 0, 0, None, None, ""
                )
            _count(cell, outcome)
    for cell in cells.values():
        cell.fault_kinds = kinds.get(cell.scenario, [])
        cell.ttd_seconds = _median(cell._ttds)
        cell.best_ttd_seconds = min(cell._ttds) if cell._ttds else None
        cell.verdict = cell_verdict(cell.expected, cell.fired)
    position = {name: index for index, name in enumerate(alert_order)}
    ordered = sorted(cells.values(), key=lambda c: (c.scenario, position[c.alert]))
    return Coverage(
        cells=ordered,
        alerts=[_alert_summary(name, [c for c in ordered if c.alert == name]) for name in alert_order],
        scenarios=[
            ScenarioSummary(
                scenario=title,
                fault_kinds=kinds[title],
                runs=runs_of[title],
                layers_caught=sorted({c.layer for c in ordered if c.scenario == title and c.fired_expected}),
                ttd_target_seconds=targets.get(title),
                best_ttd_seconds=min(run_ttds[title]) if run_ttds.get(title) else None,
                median_ttd_seconds=_median(run_ttds.get(title, [])),
                within_target=within.get(title, 0),
                detected_runs=len(run_ttds.get(title, [])),
            )
            for title in sorted(runs_of)
        ],
        runs=counted,
        skipped=skipped,
    )


def _count(cell: Cell, outcome: Mapping[str, Any]) -> None:
    """Add one run's outcome for this alert to its cell."""
    cell.layer = str(outcome.get("layer") or cell.layer)  # the latest run's word
    cell.expected = bool(outcome.get("expected"))
    if outcome.get("pre_existing"):
        cell.pre_existing += 1
        return
    cell.runs += 1
    cell.expected_runs += 1 if outcome.get("expected") else 0
    if outcome.get("fired"):
        cell.fired += 1
        cell.fired_expected += 1 if outcome.get("expected") else 0
        seconds = outcome.get("first_firing_seconds_after_t0")
        if seconds is not None:
            cell._ttds.append(float(seconds))


def _alert_summary(name: str, cells: list[Cell]) -> AlertSummary:
    """Precision and recall count runs, and whether a run expected the alert is that run's word."""
    fired = sum(cell.fired for cell in cells)
    expected_runs = sum(cell.expected_runs for cell in cells)
    fired_expected = sum(cell.fired_expected for cell in cells)
    verdicts = {cell.verdict for cell in cells}
    verdict = next((v for v in VERDICT_ORDER if v in verdicts), "untested")
    return AlertSummary(
        alert=name,
        layers=sorted({cell.layer for cell in cells}),
        runs=sum(cell.runs for cell in cells),
        fired=fired,
        expected_runs=expected_runs,
        fired_expected=fired_expected,
        precision=_ratio(fired_expected, fired),
        recall=_ratio(fired_expected, expected_runs),
        verdict=verdict,
        scenarios_caught=sorted(cell.scenario for cell in cells if cell.verdict == "caught"),
    )
