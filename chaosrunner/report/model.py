"""The report's data, assembled once: the debrief plus Prometheus ranges.

Every format (HTML, Markdown, JSON) renders the same ``Report``, built here
in one pass: the debrief (measurement, score, verdict, from the journal), the
SLI, every abort condition and every steady-state check as range series over
the whole run - each asked of Prometheus exactly once, at one step that
stays under its point limit (``report.series``) - the fault windows and the
moments to mark on the chart, the interleaved timeline, the impact figures
and the scenario's history. Renderers only format; they never query, never
measure, never decide.

Prometheus being down or a query being rejected does not stop a report: the
panel carries a note saying why it is empty, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chaosrunner.engine.journal import in_effect_since, parse_time
from chaosrunner.engine.recovery import leftovers
from chaosrunner.errors import ChaosrunnerError
from chaosrunner.gameday.debrief import Debrief
from chaosrunner.gameday.measure import Measurement
from chaosrunner.gameday.scoring import Score
from chaosrunner.gameday.verdict import ExperimentVerdict
from chaosrunner.observe.metrics import MetricsSource, Series
from chaosrunner.report import fmt
from chaosrunner.report.chat_quotes import with_chat_quotes
from chaosrunner.report.detection import Detection, detection_of
from chaosrunner.report.history import HistoryEntry
from chaosrunner.report.impact import Impact, impact, request_rate_expr
from chaosrunner.report.redact import Redactor
from chaosrunner.report.series import Panel, choose_step
from chaosrunner.report.timeline import TimelineRow, timeline
from chaosrunner.scenario.models import Scenario


@dataclass(frozen=True)
class FaultWindow:
    name: str
    kind: str
    start: datetime
    end: datetime | None  # None: never reverted (the journal says so)
    summary: str


@dataclass(frozen=True)
class StillInjected:
    """A fault the journal never saw reverted: the report's loudest line."""

    fault: str
    kind: str
    why: str


@dataclass(frozen=True)
class Marker:
    """A moment drawn across the chart."""

    kind: str  # detected | mitigated | recovered | escalation | abort
    at: datetime
    label: str


@dataclass(frozen=True)
class Headline:
    """One of the big figures at the top: TTD, TTM, TTR against their targets."""

    key: str
    label: str
    value: timedelta | None
    target: timedelta | None
    detail: str

    @property
    def met(self) -> bool | None:
        if self.value is None or self.target is None:
            return None if self.target is None else False
        return self.value <= self.target

    @property
    def shown(self) -> str:
        return fmt.duration(self.value) if self.value is not None else "not reached"


@dataclass
class Report:
    debrief: Debrief
    generated_at: datetime
    started: datetime | None
    finished: datetime | None
    window_start: float  # unix seconds: what the chart and the ranges cover
    window_end: float
    step: float
    panels: list[Panel] = field(default_factory=list)
    fault_windows: list[FaultWindow] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    timeline: list[TimelineRow] = field(default_factory=list)
    impact: Impact = field(default_factory=Impact)
    history: list[HistoryEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    prometheus: str | None = None  # where the ranges came from; None: not asked
    still_injected: list[StillInjected] = field(default_factory=list)
    detection: Detection = field(default_factory=lambda: Detection("missing", None))

    @property
    def run_id(self) -> str:
        return self.debrief.run_id

    @property
    def scenario(self) -> Scenario:
        return self.debrief.scenario

    @property
    def measurement(self) -> Measurement:
        return self.debrief.measurement

    @property
    def score(self) -> Score:
        return self.debrief.score

    @property
    def verdict(self) -> ExperimentVerdict:
        return self.debrief.verdict

    @property
    def mode(self) -> str:
        started = next((event for event in self.debrief.events if event.type == "run_started"), None)
        return str(started.get("mode", "")) if started else ""

    @property
    def scored(self) -> bool:
        """A run that never injected has nothing to score (refused, failed before t0)."""
        return self.measurement.t0 is not None

    def headlines(self) -> list[Headline]:
        m = self.measurement
        gameday = self.scenario.gameday
        return [
            Headline("ttd", "Time to detect", m.ttd, gameday.ttd_target, m.detection.how),
            Headline("ttm", "Time to mitigate", m.ttm, gameday.ttm_target, m.mitigation.how),
            Headline("ttr", "Time to recover", m.ttr, None, m.recovery.how),
        ]

    def verdict_line(self) -> str:
        verdict = self.verdict
        text = "Hypothesis held" if verdict.hypothesis_held else "Hypothesis did not hold"
        return (
            text
            + f" ({verdict.status}"
            + (f": {fmt.human(verdict.abort_cause)})" if verdict.abort_cause else ")")
        )

    def panel(self, role: str) -> Panel | None:
        return next((panel for panel in self.panels if panel.role == role), None)


# -- assembling -------------------------------------------------------------------------------


def _first(events: list[Any], kind: str) -> Any | None:
    return next((event for event in events if event["type"] == kind), None)


def fault_windows(events: list[Any]) -> list[FaultWindow]:
    planned = {event["fault"]: event for event in events if event["type"] == "fault_planned"}
    windows = []
    for event in events:
        if event["type"] != "fault_injected":
            continue
        name = event["fault"]
        reverted = next((e for e in events if e["type"] == "fault_reverted" and e.get("fault") == name), None)
        windows.append(
            FaultWindow(
                name=name,
                kind=str(event.get("kind", "")),
                start=in_effect_since(event),
                end=parse_time(reverted["time"]) if reverted else None,
                summary=str(planned.get(name, {}).get("summary", "")),
            )
        )
    return windows


def still_injected(events: list[Any]) -> list[StillInjected]:
    """Faults whose last word in the journal is not 'reverted', and why (what recover would pick up)."""
    found = []
    for leftover in leftovers(events):
        last = next(
            (
                event
                for event in reversed(events)
                if event.get("fault") == leftover.fault
                and event["type"] in ("fault_revert_failed", "fault_still_in_flight")
            ),
            None,
        )
        if last is None:
            why = "never reverted (the runner stopped before reverting it)"
        elif last["type"] == "fault_revert_failed":
            why = f"its revert failed: {last.get('error', '')}"
        else:
            why = f"its inject had not returned {last.get('waited', 0):g}s after the run stopped"
        found.append(StillInjected(leftover.fault, leftover.kind, why))
    return found


def markers(events: list[Any], measurement: Measurement) -> list[Marker]:
    found = []
    if measurement.detection.at is not None:
        found.append(Marker("detected", measurement.detection.at, "detected"))
    if measurement.mitigation.at is not None:
        found.append(Marker("mitigated", measurement.mitigation.at, "mitigated"))
    if measurement.recovery.at is not None and measurement.t0 is not None:
        found.append(Marker("recovered", measurement.recovery.at, "recovered"))
    due = _first(events, "escalation_due")
    if due is not None:
        found.append(Marker("escalation", parse_time(due["time"]), "escalation due"))
    for event in events:
        if event["type"] == "responder" and event.get("event") == "escalated":
            found.append(Marker("escalation", parse_time(event["at"]), "escalated"))
    abort = _first(events, "abort")
    if abort is not None:
        found.append(Marker("abort", parse_time(abort["time"]), f"abort: {fmt.human(str(abort['cause']))}"))
    return sorted(found, key=lambda marker: marker.at)


def _range(
    metrics: MetricsSource, expr: str, start: float, end: float, step: float, notes: list[str], what: str
) -> tuple[list[Series], str | None]:
    try:
        return metrics.range(expr, start, end, step), None
    except ChaosrunnerError as error:  # unreachable or rejected: the report goes on without it
        note = f"no data for {what}: {error}"
        notes.append(note)
        return [], note


def fetch_panels(
    scenario: Scenario, metrics: MetricsSource | None, start: float, end: float, step: float, notes: list[str]
) -> tuple[list[Panel], list[Series] | None, str]:
    """Each expression queried once: (panels, request-rate series or None, how/why-not)."""
    panels: list[Panel] = []
    if scenario.mitigation is not None:
        signal = scenario.mitigation
        panels.append(Panel("sli", "sli", signal.sli, signal.comparator, signal.objective, step))
    for condition in scenario.abort_conditions:
        panels.append(
            Panel(
                "abort_condition",
                condition.name,
                condition.expr,
                condition.comparator,
                condition.threshold,
                step,
            )
        )
    for check in scenario.steady_state:
        panels.append(Panel("steady_state", check.name, check.expr, check.comparator, check.threshold, step))
    rate_expr, rate_how = (
        request_rate_expr(scenario.mitigation.sli) if scenario.mitigation is not None else (None, "no SLI")
    )
    if metrics is None:
        for panel in panels:
            panel.note = "Prometheus was not queried (no Prometheus configured, or --offline)"
        return panels, None, "Prometheus was not queried"
    for panel in panels:
        panel.lines, panel.note = _range(metrics, panel.expr, start, end, step, notes, f"{panel.title}")
        if panel.note is None and not panel.lines:
            panel.note = "Prometheus returned no samples for this expression"
    request_rate: list[Series] | None = None
    if rate_expr is not None:
        series, why_not = _range(metrics, rate_expr, start, end, step, notes, "the request rate")
        request_rate = series if why_not is None else None
        rate_how = f"{rate_how}: {rate_expr}" if why_not is None else why_not
    return panels, request_rate, rate_how


def window(started: datetime | None, finished: datetime | None, now: datetime) -> tuple[float, float]:
    """The run plus a little before and after, so the chart shows the baseline."""
    begin = started or now
    end = finished or now
    span = max((end - begin).total_seconds(), 1.0)
    margin = min(max(0.1 * span, 10.0), 600.0)
    return begin.timestamp() - margin, end.timestamp() + margin


def build_report(
    result: Debrief,
    metrics: MetricsSource | None,
    *,
    history: list[HistoryEntry] | None = None,
    now: datetime | None = None,
) -> Report:
    result = with_chat_quotes(result)  # a finding scored from imported chat quotes what was written
    events = list(result.events)
    generated = now or datetime.now(UTC)
    started_event = _first(events, "run_started")
    finished_event = next((e for e in reversed(events) if e["type"] == "run_finished"), None)
    started = parse_time(started_event["time"]) if started_event else None
    finished = (
        parse_time(finished_event["time"])
        if finished_event
        else (parse_time(events[-1]["time"]) if events else None)
    )
    start, end = window(started, finished, generated)
    step = choose_step(end - start)
    notes = list(result.measurement.notes)
    panels, request_rate, rate_how = fetch_panels(result.scenario, metrics, start, end, step, notes)
    measured = result.measurement
    detection = detection_of(events, result.scenario, measured.t0, measured.run_end, metrics)
    notes += detection.notes
    redactor = Redactor.for_scenario(result.scenario)  # notes carry error messages, and get shortened
    notes = [redactor.scrub(note) for note in notes]
    for panel in panels:
        panel.note = redactor.scrub(panel.note) if panel.note else None
    faults = fault_windows(events)
    measurement = result.measurement
    return Report(
        debrief=result,
        generated_at=generated,
        started=started,
        finished=finished,
        window_start=start,
        window_end=end,
        step=step,
        panels=panels,
        fault_windows=faults,
        markers=markers(events, measurement),
        timeline=timeline(events, measurement),
        impact=impact(
            next((panel for panel in panels if panel.role == "sli"), None),
            request_rate,
            rate_how,
            [(fault.start, fault.end) for fault in faults],
            measurement.t0,
            measurement.run_end,
        ),
        history=list(history or []),
        notes=notes,
        prometheus=metrics.url if metrics is not None else None,
        still_injected=[
            StillInjected(left.fault, left.kind, redactor.scrub(left.why)) for left in still_injected(events)
        ],
        detection=detection,
    )
