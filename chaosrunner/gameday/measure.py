"""Time to detect, mitigate and recover, measured from the data, not from our polling.

Definitions (DESIGN.md):

- ``t0``: the moment the first fault was confirmed injected (journal).
- detection: the earliest of a configured detection alert's first *firing*
  sample in Prometheus (``timestamp(ALERTS{...})`` gives the exact evaluation
  time, not the query grid), Alertmanager's ``startsAt`` for it, or a
  responder's ``detected`` mark. TTD = detection - t0, with the layer that saw
  it first (synthetic, real_user, infrastructure, human, user_report).
- mitigation: the first moment the SLI is back inside its objective for the
  confirmation window, after having left it, while the fault is still active
  (range query at scrape resolution); or a ``mitigated`` mark - which, when an
  SLI is configured, counts only if the SLI confirms it. TTM = mitigation - t0.
- recovery: the first moment every steady-state check holds again after the
  revert (range query). TTR = recovery - t0.

Every figure carries its evidence (which alert, which samples, which mark),
and the functions that decide are pure: they take journal events and series,
so tests feed them exact timelines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chaosrunner.engine.journal import in_effect_since, parse_time
from chaosrunner.errors import ServiceUnreachable
from chaosrunner.gameday.marks import responder_events
from chaosrunner.gameday.responder import Mark, ResponderEvent
from chaosrunner.observe.metrics import MetricsSource, Series
from chaosrunner.scenario.models import Comparator, MitigationSignal, Scenario

STEP = 1.0
"""Range-query resolution in seconds: the rig's scrape and evaluation interval."""


@dataclass(frozen=True)
class Evidence:
    at: datetime | None
    source: str  # prometheus | alertmanager | responder | sli | journal | steady_state
    detail: str


@dataclass(frozen=True)
class Moment:
    """When something happened, how we know, and what else was considered."""

    at: datetime | None
    how: str
    evidence: tuple[Evidence, ...] = ()

    def since(self, t0: datetime | None) -> timedelta | None:
        return self.at - t0 if self.at is not None and t0 is not None else None


@dataclass
class Measurement:
    t0: datetime | None
    faults_ended: datetime | None
    run_end: datetime | None
    detection: Moment
    detection_layer: str | None
    mitigation: Moment
    recovery: Moment
    marks: list[ResponderEvent] = field(default_factory=list)
    impact: bool = True  # False when the SLI never left its objective
    notes: list[str] = field(default_factory=list)  # data that could not be had

    @property
    def ttd(self) -> timedelta | None:
        return self.detection.since(self.t0)

    @property
    def ttm(self) -> timedelta | None:
        return self.mitigation.since(self.t0)

    @property
    def ttr(self) -> timedelta | None:
        return self.recovery.since(self.t0)


def _first(events: list[dict[str, Any]], kind: str, **match: Any) -> dict[str, Any] | None:
    return next(
        (
            event
            for event in events
            if event["type"] == kind and all(event.get(k) == v for k, v in match.items())
        ),
        None,
    )


def _at(event: dict[str, Any] | None) -> datetime | None:
    return parse_time(event["time"]) if event else None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]


# -- detection ------------------------------------------------------------------------------


def detection_candidates(
    events: list[dict[str, Any]], scenario: Scenario, t0: datetime, alert_series: dict[str, list[Series]]
) -> list[tuple[datetime, str, Evidence]]:
    """(when, layer, evidence) for every way the incident was noticed at or after t0."""
    candidates: list[tuple[datetime, str, Evidence]] = []
    for name, series_list in alert_series.items():
        layer = scenario.detection.layer_of(name) or "monitoring"
        firing = [
            datetime.fromtimestamp(value, UTC)
            for series in series_list
            for _, value in series.points
            if datetime.fromtimestamp(value, UTC) >= t0
        ]
        if firing:
            first = min(firing)
            candidates.append((first, layer, Evidence(first, "prometheus", f"alert {name} firing ({layer})")))
    for event in events:
        if event["type"] == "alert" and event["source"] == "alertmanager":
            since = parse_time(event["since"])
            if since >= t0:
                layer = event.get("layer") or "monitoring"
                detail = f"alert {event['name']} paged via Alertmanager ({layer})"
                candidates.append((since, layer, Evidence(since, "alertmanager", detail)))
    for mark in responder_events(events):
        if mark.mark is Mark.DETECTED and mark.at >= t0:
            layer = mark.via.value if mark.via else "human"
            detail = f"{mark.by} marked detected via {layer}"
            candidates.append((mark.at, layer, Evidence(mark.at, "responder", detail)))
    return sorted(candidates, key=lambda candidate: candidate[0])


def detection(candidates: list[tuple[datetime, str, Evidence]]) -> tuple[Moment, str | None]:
    if not candidates:
        return Moment(None, "not detected"), None
    when, layer, first = candidates[0]
    return Moment(when, first.detail, tuple(candidate[2] for candidate in candidates)), layer


# -- mitigation -----------------------------------------------------------------------------


def mitigation_from_sli(
    points: list[tuple[float, float]], signal: MitigationSignal, t0: datetime, faults_ended: datetime | None
) -> tuple[datetime | None, bool, str]:
    """(moment, impact seen, explanation) from SLI samples at scrape resolution.

    The moment is the first sample, after the SLI first left its objective, from
    which it stays within it for the whole confirmation window. A window that
    is still open when the faults ended counts if it began while they were
    active (the watcher ends the faults as soon as it confirms).
    """
    start = t0.timestamp()
    window = signal.confirm_for.total_seconds()
    relevant = [(t, v) for t, v in sorted(points) if t >= start]
    breach = next((t for t, v in relevant if not signal.met(v)), None)
    if breach is None:
        return None, False, "the SLI never left its objective: no user impact to mitigate"
    end_limit = faults_ended.timestamp() if faults_ended else float("inf")
    candidate: float | None = None
    for t, v in relevant:
        if t <= breach:
            continue
        if not signal.met(v):
            candidate = None
            continue
        if candidate is None:
            if t > end_limit + STEP:
                break  # back only after the revert: that is recovery, not mitigation
            candidate = t
        if t - candidate >= window:
            moment = datetime.fromtimestamp(candidate, UTC)
            return (
                moment,
                True,
                f"SLI {signal.comparator.value} {signal.objective:g} from {_stamp(moment)} for {window:g}s",
            )
    if candidate is not None and faults_ended is not None and candidate <= end_limit:
        moment = datetime.fromtimestamp(candidate, UTC)
        return (
            moment,
            True,
            f"SLI {signal.comparator.value} {signal.objective:g} from {_stamp(moment)} until the revert",
        )
    return None, True, "the SLI did not return within its objective while the fault was active"


def mitigation(
    marks: list[ResponderEvent],
    signal: MitigationSignal | None,
    sli_points: list[tuple[float, float]] | None,
    t0: datetime,
    faults_ended: datetime | None,
) -> tuple[Moment, bool]:
    mark = next((mark for mark in marks if mark.mark is Mark.MITIGATED and mark.at >= t0), None)
    evidence: list[Evidence] = []
    if mark is not None:
        evidence.append(Evidence(mark.at, "responder", f"{mark.by} marked mitigated"))
    if signal is None or sli_points is None:
        if mark is None:
            return Moment(None, "not mitigated", tuple(evidence)), True
        return Moment(mark.at, f"{mark.by} marked mitigated (no SLI configured)", tuple(evidence)), True
    moment, impact, why = mitigation_from_sli(sli_points, signal, t0, faults_ended)
    evidence.append(Evidence(moment, "sli", why))
    if not impact:
        return Moment(None, why, tuple(evidence)), False
    if moment is None:
        how = "not mitigated" + (f" ({mark.by}'s mark is not confirmed by the SLI)" if mark else "")
        return Moment(None, how, tuple(evidence)), True
    return Moment(moment, why, tuple(evidence)), True


FINE_STEP = 0.1
"""Seconds: the second, finer pass around a transition found on the 1 s grid."""


def refine_mitigation(
    metrics: MetricsSource, signal: MitigationSignal, moment: Moment, notes: list[str]
) -> Moment:
    """Sharpen the SLI's return from the 1 s grid to the scrape that brought it back.

    A range query answers at grid points, so a value scraped just after one
    point shows at the next: up to a whole step late. A 0.1 s pass over the
    two seconds before the coarse moment finds the first point after the last
    breach - within 0.1 s of the sample itself - for ~20 points of cost.
    """
    assert moment.at is not None
    start = moment.at - timedelta(seconds=2 * STEP)
    try:
        series = metrics.range(signal.sli, start.timestamp(), moment.at.timestamp(), FINE_STEP)
    except ServiceUnreachable as error:
        notes.append(f"could not refine the mitigation moment: {error}")
        return moment
    points = sorted(point for item in series for point in item.points)
    last_breach = max((t for t, v in points if not signal.met(v)), default=None)
    if last_breach is None:
        return moment
    after = [t for t, v in points if t > last_breach and signal.met(v)]
    if not after:
        return moment
    refined = datetime.fromtimestamp(after[0], UTC)
    coarse, fine = _stamp(moment.at), _stamp(refined)
    evidence = tuple(
        Evidence(refined, item.source, item.detail.replace(coarse, fine)) if item.source == "sli" else item
        for item in moment.evidence
    )
    return Moment(refined, moment.how.replace(coarse, fine), evidence)


# -- recovery -------------------------------------------------------------------------------


def recovery(
    steady: dict[str, list[tuple[float, float]]],
    checks: list[tuple[str, Comparator, float]],
    after: datetime | None,
    journal_fallback: datetime | None,
) -> Moment:
    """First sample time after the revert at which every steady-state check holds."""
    if after is None:
        return Moment(None, "faults were never reverted")
    if not checks:
        return Moment(after, "no steady state defined: recovery taken at the revert")
    grids = []
    for name, comparator, threshold in checks:
        grids.append(
            {
                round(t): comparator.holds(v, threshold)
                for t, v in steady.get(name, [])
                if t >= after.timestamp()
            }
        )
    common = sorted(set.intersection(*(set(grid) for grid in grids))) if grids else []
    for second in common:
        if all(grid[second] for grid in grids):
            moment = datetime.fromtimestamp(second, UTC)
            return Moment(
                moment,
                "every steady-state check holds again",
                (Evidence(moment, "steady_state", "range query"),),
            )
    if journal_fallback is not None:
        return Moment(journal_fallback, "steady state returned (journal check)")
    return Moment(None, "steady state did not return")


# -- putting it together ----------------------------------------------------------------------


def _range(
    metrics: MetricsSource, expr: str, start: datetime, end: datetime, notes: list[str]
) -> list[Series]:
    """A range query; an unreachable Prometheus leaves a note and no data (PromQL errors raise)."""
    try:
        return metrics.range(expr, start.timestamp(), end.timestamp(), STEP)
    except ServiceUnreachable as error:
        notes.append(f"no Prometheus data for {expr!r}: {error}")
        return []


def measure(events: list[dict[str, Any]], scenario: Scenario, metrics: MetricsSource | None) -> Measurement:
    injected = [event for event in events if event["type"] == "fault_injected"]
    t0 = min((in_effect_since(event) for event in injected), default=None)
    ended = _first(events, "faults_ending") or _first(events, "phase", phase="reverting")
    faults_ended = _at(ended)
    run_end = _at(_first(events, "run_finished")) or (parse_time(events[-1]["time"]) if events else None)
    marks = responder_events(events)
    if t0 is None or run_end is None:
        empty = Moment(None, "no fault was injected")
        return Measurement(t0, faults_ended, run_end, empty, None, empty, empty, marks, impact=False)
    window_end = run_end + timedelta(seconds=2)
    notes: list[str] = []
    alert_series: dict[str, list[Series]] = {}
    sli_points: list[tuple[float, float]] | None = None
    steady: dict[str, list[tuple[float, float]]] = {}
    if metrics is not None:
        for name in scenario.detection.all_alerts():
            expr = f'timestamp(ALERTS{{alertname="{name}", alertstate="firing"}})'
            alert_series[name] = _range(metrics, expr, t0 - timedelta(seconds=STEP), window_end, notes)
        if scenario.mitigation is not None:
            series = _range(metrics, scenario.mitigation.sli, t0 - timedelta(seconds=STEP), window_end, notes)
            sli_points = [point for item in series for point in item.points]
        for check in scenario.steady_state:
            series = _range(metrics, check.expr, faults_ended or t0, window_end, notes)
            steady[check.name] = [point for item in series for point in item.points]
    detected, layer = detection(detection_candidates(events, scenario, t0, alert_series))
    mitigated, impact = mitigation(marks, scenario.mitigation, sli_points, t0, faults_ended)
    if metrics is not None and scenario.mitigation is not None and mitigated.at is not None:
        mitigated = refine_mitigation(metrics, scenario.mitigation, mitigated, notes)
    returned = _first(events, "check", name="steady state returned", ok=True)
    recovered = recovery(
        steady,
        [(check.name, check.comparator, check.threshold) for check in scenario.steady_state],
        faults_ended,
        _at(returned),
    )
    return Measurement(t0, faults_ended, run_end, detected, layer, mitigated, recovered, marks, impact, notes)
