"""Detection in one run: which of all the alert rules fired, which were expected, how fast.

The measurement (gameday.measure) answers "when did monitoring first notice?".
This answers the per-alert question a detection-coverage map is built from
(report.coverage): for every alert rule Prometheus had loaded when the run
began (the journal's ``alert_rules`` event) and every alert the scenario
expects, whether it

- was **expected**: named in the scenario's detection signals;
- **fired** after t0, and when: its first firing ``ALERTS`` sample (the rule
  evaluation that fired it, as gameday.measure reads detection alerts), or
  Alertmanager's ``startsAt``, the earliest; offline, the journaled
  ``alert`` events (``activeAt`` plus the rule's ``for``);
- was **pre-existing**: already firing before the first fault began to be
  injected (the write-ahead ``fault_injecting`` record, written before the
  side effect). Such an alert says nothing about this fault, so it is not
  counted as fired (nor its TTD), even if it flaps later in the run. (Not
  t0 itself: t0 is when the inject was *confirmed*, and a fast alert can
  fire between the side effect and that confirmation; its firing is then
  taken from its first sample at or after t0, as the measured TTD does.)

Each alert gets a verdict for this run: ``caught`` (expected, fired), ``gap``
(expected, did not fire), ``noise`` (fired, not expected), ``untested``
(neither), ``pre_existing``. An expected alert Prometheus has no rule for is
kept (``rule_loaded: false``): that gap is the cheapest one to close.

The functions deciding are pure; ``fetch_firing`` is the one Prometheus
query (one range query for every alert, not one per rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chaosrunner.engine.journal import parse_time
from chaosrunner.errors import ChaosrunnerError
from chaosrunner.observe.metrics import MetricsSource, Series
from chaosrunner.report.series import choose_step
from chaosrunner.scenario.models import Scenario

STEP = 1.0
"""Seconds: range-query resolution, the same as gameday.measure's, so per-alert times match its TTD
(a run too long for 1 s under Prometheus' point limit gets report.series' coarser step)."""
FIRING_EXPR = 'timestamp(ALERTS{alertstate="firing"})'
"""Each firing alert's evaluation time at each step: one query answers for every rule."""
UNLISTED_LAYER = "monitoring"
VERDICTS = ("caught", "gap", "noise", "untested", "pre_existing")


@dataclass(frozen=True)
class RuleSeen:
    """An alerting rule as the run's ``alert_rules`` event recorded it."""

    name: str
    group: str
    file: str | None
    expr: str
    for_seconds: float
    labels: dict[str, str]
    layer: str


@dataclass(frozen=True)
class AlertOutcome:
    alert: str
    layer: str
    expected: bool
    fired: bool
    pre_existing: bool
    first_firing_at: datetime | None
    first_firing_seconds_after_t0: float | None
    rule_loaded: bool
    how: str  # where the firing time came from, or why there is none

    @property
    def verdict(self) -> str:
        if self.pre_existing:
            return "pre_existing"
        if self.expected:
            return "caught" if self.fired else "gap"
        return "noise" if self.fired else "untested"


@dataclass(frozen=True)
class Detection:
    source: str  # prometheus | unavailable | missing (a journal from before alert_rules)
    error: str | None
    rules: list[RuleSeen] = field(default_factory=list)
    alerts: list[AlertOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def by_verdict(self, verdict: str) -> list[AlertOutcome]:
        return [alert for alert in self.alerts if alert.verdict == verdict]


# -- reading the journal ----------------------------------------------------------------------


def rules_seen(events: Iterable[Mapping[str, Any]]) -> tuple[list[RuleSeen], str, str | None]:
    """(rules, source, error) from the run's ``alert_rules`` event."""
    event = next((event for event in events if event["type"] == "alert_rules"), None)
    if event is None:
        return [], "missing", "the journal has no alert_rules event (a run from before rules were recorded)"
    rules = [
        RuleSeen(
            name=str(rule.get("name", "")),
            group=str(rule.get("group", "")),
            file=rule.get("file"),
            expr=str(rule.get("expr", "")),
            for_seconds=float(rule.get("for_seconds") or 0.0),
            labels=dict(rule.get("labels") or {}),
            layer=str(rule.get("layer") or UNLISTED_LAYER),
        )
        for rule in event.get("rules") or []
    ]
    return rules, str(event.get("source", "unavailable")), event.get("error")


# -- Prometheus ---------------------------------------------------------------------------------


def fetch_firing(
    metrics: MetricsSource, began: datetime, run_end: datetime, notes: list[str]
) -> dict[str, list[float]] | None:
    """Every alert's firing-sample times (unix seconds) from just before t0 to the run's end.

    None when Prometheus could not answer (a note says why): the caller falls
    back to the journal. The window starts one step before the injection
    began, so an alert already firing shows a sample from before it (pre-existing)."""
    start = (began - timedelta(seconds=STEP)).timestamp()
    end = (run_end + timedelta(seconds=2)).timestamp()
    try:
        series = metrics.range(FIRING_EXPR, start, end, max(STEP, choose_step(end - start)))
    except ChaosrunnerError as error:
        notes.append(f"no alert data for detection: {error}")
        return None
    return firing_times(series)


def firing_times(series: list[Series]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for item in series:
        name = item.labels.get("alertname")
        if name:
            found.setdefault(name, []).extend(value for _, value in item.points)
    return found


# -- deciding (pure) ----------------------------------------------------------------------------


def _journal_firings(
    events: Iterable[Mapping[str, Any]], for_seconds: Mapping[str, float]
) -> tuple[dict[str, list[datetime]], dict[str, list[datetime]]]:
    """(Prometheus firing moments by alert, Alertmanager startsAt by alert) from ``alert`` events."""
    prometheus: dict[str, list[datetime]] = {}
    alertmanager: dict[str, list[datetime]] = {}
    for event in events:
        if event["type"] != "alert" or not event.get("since"):
            continue
        name = str(event.get("name", ""))
        since = parse_time(str(event["since"]))
        if event.get("source") == "alertmanager":
            alertmanager.setdefault(name, []).append(since)
        elif event.get("state") == "firing":
            prometheus.setdefault(name, []).append(since + timedelta(seconds=for_seconds.get(name, 0.0)))
    return prometheus, alertmanager


def injection_began(events: Iterable[Mapping[str, Any]], t0: datetime | None) -> datetime | None:
    """When the first fault began to be injected (its write-ahead record); t0 without one."""
    first = next((event for event in events if event["type"] == "fault_injecting"), None)
    return min(parse_time(str(first["time"])), t0) if first is not None and t0 is not None else t0


def outcomes(
    events: Iterable[Mapping[str, Any]],
    scenario: Scenario,
    t0: datetime | None,
    rules: list[RuleSeen],
    firing: Mapping[str, list[float]] | None,
) -> list[AlertOutcome]:
    """One outcome per rule seen and per expected alert, rules first in Prometheus' order."""
    events = list(events)
    began = injection_began(events, t0)
    by_name: dict[str, RuleSeen] = {}
    for rule in rules:
        by_name.setdefault(rule.name, rule)  # one alert name in two groups is one alert here
    expected = scenario.detection.all_alerts()
    names = list(by_name) + [name for name in expected if name not in by_name]
    journal_prometheus, journal_alertmanager = _journal_firings(
        events, {rule.name: rule.for_seconds for rule in rules}
    )
    found = []
    for name in names:
        layer = scenario.detection.layer_of(name) or (
            by_name[name].layer if name in by_name else UNLISTED_LAYER
        )
        moments: list[tuple[datetime, str]] = []
        if firing is not None:
            moments += [
                (datetime.fromtimestamp(value, UTC), "ALERTS sample") for value in firing.get(name, [])
            ]
        else:
            moments += [(moment, "activeAt + for") for moment in journal_prometheus.get(name, [])]
        moments += [(moment, "Alertmanager") for moment in journal_alertmanager.get(name, [])]
        found.append(_outcome(name, layer, name in expected, name in by_name, moments, t0, began))
    return found


def _outcome(
    name: str,
    layer: str,
    expected: bool,
    rule_loaded: bool,
    moments: list[tuple[datetime, str]],
    t0: datetime | None,
    began: datetime | None,
) -> AlertOutcome:
    def make(fired: bool, pre: bool, at: datetime | None, how: str) -> AlertOutcome:
        seconds = round((at - t0).total_seconds(), 3) if at is not None and t0 is not None else None
        return AlertOutcome(name, layer, expected, fired, pre, at, seconds, rule_loaded, how)

    if t0 is None or began is None:
        return make(False, False, None, "no fault was injected")
    if any(moment < began for moment, _ in moments):
        return make(False, True, None, "already firing before the fault: not counted")
    after = sorted(moment for moment, _ in moments if moment >= t0)
    if not after:
        return make(False, False, None, "did not fire" if rule_loaded else "no such rule in Prometheus")
    first = after[0]
    how = next(source for moment, source in moments if moment == first)
    return make(True, False, first, f"first firing ({how})")


def detection_of(
    events: Sequence[Mapping[str, Any]],
    scenario: Scenario,
    t0: datetime | None,
    run_end: datetime | None,
    metrics: MetricsSource | None,
) -> Detection:
    """The run's detection: the journal's rules, firing times from Prometheus (else the journal)."""
    rules, source, error = rules_seen(events)
    notes: list[str] = []
    firing = None
    if metrics is not None and t0 is not None and run_end is not None:
        firing = fetch_firing(metrics, injection_began(events, t0) or t0, run_end, notes)
    return Detection(source, error, rules, outcomes(events, scenario, t0, rules, firing), notes)
