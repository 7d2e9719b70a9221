"""The report as JSON: a documented, versioned document for other tools.

Dashboards, a history database, a chat bot summarising the gameday: they
read ``report.json``. Its shape is defined once, by the pydantic models
below, which both build the document and derive its JSON Schema
(``report_schema()``, kept in docs/report.schema.json and checked against
these models by the unit tests). ``schema_version`` changes only when a
field is removed or changes meaning; new fields may appear in any version,
so readers ignore what they do not know.

Times are ISO 8601 UTC with milliseconds; durations are seconds (floats);
a figure that could not be measured is ``null`` with the reason beside it.
Series are summarised (min, max, mean, last, time outside the threshold),
not dumped: a four-hour run at 1 s would be megabytes nobody reads.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chaosrunner.report import fmt
from chaosrunner.report.model import Report

SCHEMA_VERSION = 1


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunDoc(_Doc):
    id: str
    mode: str = Field(description="automated | gameday")
    started: str | None
    finished: str | None
    status: str = Field(description="completed | aborted | deviated | failed | refused | unfinished")
    hypothesis_held: bool
    abort_cause: str | None
    abort_detail: str | None
    blast_radius_contained: bool
    targets_hit: int
    detail: str


class FaultDoc(_Doc):
    name: str
    kind: str
    start_offset_seconds: float
    duration_seconds: float | None


class ConditionDoc(_Doc):
    name: str
    expr: str
    comparator: str
    threshold: float
    for_seconds: float | None = None


class ScenarioDoc(_Doc):
    title: str
    owner: str
    description: str
    hypothesis: str
    expected_severity: str
    file: str | None
    faults: list[FaultDoc]
    abort_conditions: list[ConditionDoc]
    steady_state: list[ConditionDoc]
    sli: ConditionDoc | None = Field(description="the mitigation SLI: threshold is its objective")
    detection_alerts: dict[str, list[str]] = Field(description="alert names by monitoring layer")


class TimingDoc(_Doc):
    seconds: float | None = Field(description="from t0; null when the moment was never reached")
    target_seconds: float | None
    met: bool | None = Field(description="within target; null when there is no target")
    at: str | None
    how: str


class TimingsDoc(_Doc):
    t0: str | None = Field(description="when the first fault was confirmed injected")
    detected_by: str | None = Field(
        description="synthetic | real_user | infrastructure | human | user_report"
    )
    ttd: TimingDoc
    ttm: TimingDoc
    ttr: TimingDoc
    impact_seen: bool = Field(description="false when the SLI never left its objective")
    evidence: list[str]


class FindingDoc(_Doc):
    criterion: str
    title: str
    verdict: Literal["passed", "failed", "not_applicable"]
    points: float
    weight: float
    summary: str
    evidence: list[str]
    action_item: str | None


class ScoreDoc(_Doc):
    total: float | None = Field(description="0-100 over the applicable criteria; null when nothing ran")
    grade: str | None


class ActionItemDoc(_Doc):
    action: str
    criterion: str
    owner: str = Field(description="empty: to be filled in at the postmortem")
    due: str = Field(description="empty: to be filled in at the postmortem")


class FigureDoc(_Doc):
    key: str
    label: str
    value: float | None = Field(description="null: not measurable (see how)")
    unit: str
    shown: str
    how: str


class EventDoc(_Doc):
    at: str
    offset_seconds: float | None = Field(description="from t0")
    source: Literal["system", "monitoring", "team", "measured"]
    who: str
    what: str
    kind: str


class SeriesDoc(_Doc):
    role: Literal["sli", "abort_condition", "steady_state"]
    name: str
    expr: str
    comparator: str | None
    threshold: float | None
    step_seconds: float
    series: int = Field(description="how many series the expression returned")
    samples: int
    min: float | None
    max: float | None
    mean: float | None
    last: float | None
    outside_threshold_seconds: float | None = Field(
        description="time on the bad side: SLI below objective, abort condition holding, steady state broken"
    )
    note: str | None


class HistoryDoc(_Doc):
    run_id: str
    started: str
    status: str
    ttd_seconds: float | None
    ttm_seconds: float | None
    score: float | None
    grade: str | None
    source: str = Field(description="report: measured with Prometheus data; journal: from the journal alone")


class AlertRuleDoc(_Doc):
    name: str
    group: str
    file: str | None
    expr: str
    for_seconds: float
    labels: dict[str, str]
    layer: str = Field(description="synthetic | real_user | infrastructure, or monitoring when not declared")


class AlertOutcomeDoc(_Doc):
    alert: str
    layer: str
    expected: bool = Field(description="named in the scenario's detection signals")
    fired: bool = Field(description="went firing after t0 (a pre-existing alert does not count)")
    pre_existing: bool = Field(description="firing before the first fault began: says nothing about it")
    first_firing_seconds_after_t0: float | None
    first_firing_at: str | None
    rule_loaded: bool = Field(description="false: expected, but Prometheus had no rule of that name")
    verdict: Literal["caught", "gap", "noise", "untested", "pre_existing"]
    how: str


class DetectionDoc(_Doc):
    source: str = Field(
        description="prometheus: rules read at preflight | unavailable (see error) | missing (older journal)"
    )
    error: str | None
    rules: list[AlertRuleDoc] = Field(description="every alerting rule Prometheus had loaded at preflight")
    alerts: list[AlertOutcomeDoc] = Field(description="one per rule, plus expected alerts with no rule")


class ReportDocument(_Doc):
    """The debrief of one run."""

    schema_version: Literal[1] = 1
    generated_at: str
    run: RunDoc
    scenario: ScenarioDoc
    timings: TimingsDoc
    score: ScoreDoc
    findings: list[FindingDoc]
    went_well: list[str] = Field(description="titles of the passed criteria")
    action_items: list[ActionItemDoc]
    impact: list[FigureDoc]
    events: list[EventDoc] = Field(description="the timeline: system and responder events interleaved")
    series: list[SeriesDoc]
    history: list[HistoryDoc] = Field(description="runs of this scenario up to this one, oldest first")
    notes: list[str] = Field(description="data that could not be had, and why")
    detection: DetectionDoc = Field(description="per alert rule: expected, fired, pre-existing, time from t0")


def report_schema() -> dict[str, Any]:
    schema = ReportDocument.model_json_schema()
    schema["title"] = "chaosrunner debrief report"
    return schema


def _condition(name: str, expr: str, comparator: Any, threshold: float, for_: Any = None) -> ConditionDoc:
    return ConditionDoc(
        name=name,
        expr=expr,
        comparator=comparator.value,
        threshold=threshold,
        for_seconds=for_.total_seconds() if for_ is not None else None,
    )


def document(report: Report) -> ReportDocument:
    scenario = report.scenario
    m = report.measurement
    verdict = report.verdict
    started = next((event for event in report.debrief.events if event.type == "run_started"), None)
    headlines = {headline.key: headline for headline in report.headlines()}
    moments = {"ttd": m.detection, "ttm": m.mitigation, "ttr": m.recovery}

    def timing(key: str) -> TimingDoc:
        headline = headlines[key]
        return TimingDoc(
            seconds=fmt.seconds(headline.value),
            target_seconds=fmt.seconds(headline.target),
            met=headline.met,
            at=fmt.iso(moments[key].at),
            how=moments[key].how,
        )

    evidence = [
        f"{fmt.clock_ms(item.at)} {item.source}: {item.detail}"
        for moment in moments.values()
        for item in moment.evidence
    ]
    return ReportDocument(
        generated_at=fmt.iso(report.generated_at) or "",
        run=RunDoc(
            id=report.run_id,
            mode=report.mode,
            started=fmt.iso(report.started),
            finished=fmt.iso(report.finished),
            status=verdict.status,
            hypothesis_held=verdict.hypothesis_held,
            abort_cause=verdict.abort_cause,
            abort_detail=verdict.abort_detail,
            blast_radius_contained=verdict.blast_radius_contained,
            targets_hit=verdict.targets_hit,
            detail=verdict.detail,
        ),
        scenario=ScenarioDoc(
            title=scenario.metadata.title,
            owner=scenario.metadata.owner,
            description=scenario.metadata.description,
            hypothesis=scenario.metadata.hypothesis,
            expected_severity=scenario.metadata.expected_severity.value,
            file=str(started.get("scenario_file")) if started else None,
            faults=[
                FaultDoc(
                    name=fault.name,
                    kind=fault.kind,
                    start_offset_seconds=fault.start.total_seconds(),
                    duration_seconds=fault.duration.total_seconds() if fault.duration else None,
                )
                for fault in scenario.faults
            ],
            abort_conditions=[
                _condition(c.name, c.expr, c.comparator, c.threshold, c.for_)
                for c in scenario.abort_conditions
            ],
            steady_state=[
                _condition(c.name, c.expr, c.comparator, c.threshold) for c in scenario.steady_state
            ],
            sli=(
                _condition(
                    "sli",
                    scenario.mitigation.sli,
                    scenario.mitigation.comparator,
                    scenario.mitigation.objective,
                )
                if scenario.mitigation
                else None
            ),
            detection_alerts={
                "synthetic": list(scenario.detection.synthetic),
                "real_user": list(scenario.detection.real_user),
                "infrastructure": list(scenario.detection.infrastructure),
            },
        ),
        timings=TimingsDoc(
            t0=fmt.iso(m.t0),
            detected_by=m.detection_layer,
            ttd=timing("ttd"),
            ttm=timing("ttm"),
            ttr=timing("ttr"),
            impact_seen=m.impact,
            evidence=evidence,
        ),
        score=ScoreDoc(
            total=report.score.total if report.scored else None,
            grade=report.score.grade if report.scored else None,
        ),
        findings=[
            FindingDoc(
                criterion=finding.criterion,
                title=finding.title,
                verdict=finding.verdict.value,
                points=finding.points,
                weight=finding.weight,
                summary=finding.summary,
                evidence=list(finding.evidence),
                action_item=finding.action_item,
            )
            for finding in (report.score.findings if report.scored else [])
        ],
        went_well=[finding.title for finding in report.score.went_well()] if report.scored else [],
        action_items=[
            ActionItemDoc(action=finding.action_item, criterion=finding.criterion, owner="", due="")
            for finding in (report.score.findings if report.scored else [])
            if finding.action_item
        ],
        impact=[FigureDoc(**figure.__dict__) for figure in report.impact.figures],
        events=[
            EventDoc(
                at=fmt.iso(row.at) or "",
                offset_seconds=fmt.seconds(row.since_t0),
                source=row.source,
                who=row.who,
                what=row.what,
                kind=row.kind,
            )
            for row in report.timeline
        ],
        series=[_series(panel) for panel in report.panels],
        history=[
            HistoryDoc(
                run_id=entry.run_id,
                started=entry.started,
                status=entry.status,
                ttd_seconds=entry.ttd_seconds,
                ttm_seconds=entry.ttm_seconds,
                score=entry.score,
                grade=entry.grade,
                source=entry.source,
            )
            for entry in report.history
        ],
        notes=list(report.notes),
        detection=_detection(report),
    )


def _detection(report: Report) -> DetectionDoc:
    found = report.detection
    return DetectionDoc(
        source=found.source,
        error=found.error,
        rules=[AlertRuleDoc(**rule.__dict__) for rule in found.rules],
        alerts=[
            AlertOutcomeDoc(
                alert=alert.alert,
                layer=alert.layer,
                expected=alert.expected,
                fired=alert.fired,
                pre_existing=alert.pre_existing,
                first_firing_seconds_after_t0=alert.first_firing_seconds_after_t0,
                first_firing_at=fmt.iso(alert.first_firing_at),
                rule_loaded=alert.rule_loaded,
                verdict=alert.verdict,
                how=alert.how,
            )
            for alert in found.alerts
        ],
    )


def _series(panel: Any) -> SeriesDoc:
    summary = panel.summary()
    return SeriesDoc(
        role=panel.role,
        name=panel.name,
        expr=panel.expr,
        comparator=panel.comparator.value if panel.comparator else None,
        threshold=panel.threshold,
        step_seconds=panel.step,
        series=len(panel.lines),
        samples=summary.samples,
        min=summary.minimum,
        max=summary.maximum,
        mean=round(summary.mean, 6) if summary.mean is not None else None,
        last=summary.last,
        outside_threshold_seconds=summary.outside_seconds,
        note=panel.note,
    )


def render_json(report: Report) -> str:
    return document(report).model_dump_json(indent=2) + "\n"
