"""Scoring the team's response: one pure function per rubric criterion.

The rubric follows the incident-response practice in DESIGN.md and its
reference article: monitoring detects before users do; severity is declared
and right; an incident commander is named and coordinates rather than
changes things; status updates come at the severity's cadence in the format
"what is affected, current hypothesis, who does what, next update"; the
team mitigates before chasing root cause; escalates when the expected time
passes; one person changes production at a time.

Each criterion returns a ``Finding``: passed / failed / not applicable, the
points earned of its weight, the evidence with timestamps, and for a failure
a concrete action item. The total is scaled to 0-100 over the applicable
criteria, with a grade. The experiment's own verdict (hypothesis held,
aborted, blast radius contained) is reported separately: a team can respond
perfectly to an experiment that went wrong, and the other way round.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise

from chaosrunner.durations import format_duration
from chaosrunner.engine.plan import status_update_cadence
from chaosrunner.gameday.measure import Measurement
from chaosrunner.gameday.responder import Mark, ResponderEvent
from chaosrunner.scenario.models import Scenario


class Verdict(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class Finding:
    criterion: str
    title: str
    verdict: Verdict
    points: float
    weight: float
    summary: str
    evidence: tuple[str, ...] = ()
    action_item: str | None = None


@dataclass
class Score:
    findings: list[Finding] = field(default_factory=list)

    @property
    def total(self) -> float:
        applicable = [finding for finding in self.findings if finding.verdict is not Verdict.NOT_APPLICABLE]
        possible = sum(finding.weight for finding in applicable)
        return round(100 * sum(finding.points for finding in applicable) / possible, 1) if possible else 0.0

    @property
    def grade(self) -> str:
        for threshold, grade in ((90, "A"), (80, "B"), (70, "C"), (60, "D")):
            if self.total >= threshold:
                return grade
        return "F"

    def went_well(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.verdict is Verdict.PASSED]

    def action_items(self) -> list[str]:
        return [finding.action_item for finding in self.findings if finding.action_item]


def _t(moment: datetime | None) -> str:
    return moment.strftime("%H:%M:%S") if moment else "-"


def _marks(measurement: Measurement, kind: Mark) -> list[ResponderEvent]:
    return [mark for mark in measurement.marks if mark.mark is kind]


def _offset(measurement: Measurement, moment: datetime) -> str:
    if measurement.t0 is None:
        return _t(moment)
    return f"{_t(moment)} (t0+{format_duration(round((moment - measurement.t0).total_seconds()))})"


Criterion = Callable[[Measurement, Scenario, float], Finding]


def detected_by_monitoring(measurement: Measurement, scenario: Scenario, weight: float) -> Finding:
    title = "Detected by monitoring before any human or user report"
    evidence = tuple(
        f"{_offset(measurement, e.at)} {e.detail}" for e in measurement.detection.evidence if e.at
    )
    if measurement.detection.at is None:
        return Finding(
            "detected_by_monitoring",
            title,
            Verdict.FAILED,
            0,
            weight,
            "the incident was never detected",
            evidence,
            "Add an alert on the symptom this scenario causes (synthetic probe or error rate).",
        )
    layer = measurement.detection_layer or "unknown"
    if layer in ("human", "user_report"):
        return Finding(
            "detected_by_monitoring",
            title,
            Verdict.FAILED,
            0,
            weight,
            f"first noticed by a {layer.replace('_', ' ')}, not by monitoring",
            evidence,
            "Add or tune an alert so monitoring fires before people notice; review why "
            "the synthetic and real-user layers stayed quiet.",
        )
    return Finding(
        "detected_by_monitoring",
        title,
        Verdict.PASSED,
        weight,
        weight,
        f"monitoring ({layer.replace('_', ' ')}) detected it first",
        evidence,
    )


def ttd_within_target(measurement: Measurement, scenario: Scenario, weight: float) -> Finding:
    title = "Time to detect within target"
    target = scenario.gameday.ttd_target
    ttd = measurement.ttd
    if ttd is None:
        return Finding(
            "ttd_within_target",
            title,
            Verdict.FAILED,
            0,
            weight,
            "not detected",
            (),
            "Alert on the user-facing symptom with a `for` short enough for the TTD target.",
        )
    summary = (
        f"TTD {format_duration(round(ttd.total_seconds(), 1))} against a target of {format_duration(target)}"
    )
    evidence = (
        (
            f"t0 {_t(measurement.t0)}; detected {_offset(measurement, measurement.detection.at)}"
            f" ({measurement.detection.how})",
        )
        if measurement.detection.at
        else ()
    )
    if ttd <= target:
        return Finding("ttd_within_target", title, Verdict.PASSED, weight, weight, summary, evidence)
    return Finding(
        "ttd_within_target",
        title,
        Verdict.FAILED,
        0,
        weight,
        summary,
        evidence,
        f"Shorten detection: the first alert came {format_duration(round((ttd - target).total_seconds()))} "
        "late; lower its `for` or alert on an earlier signal.",
    )


def severity_declared(measurement: Measurement, scenario: Scenario, weight: float) -> Finding:
    title = "Severity declared and matching the expected one"
    expected = scenario.metadata.expected_severity.value
    declared = _marks(measurement, Mark.SEVERITY)
    if not declared:
        return Finding(
            "severity_declared",
            title,
            Verdict.FAILED,
            0,
            weight,
            "no severity was declared",
            (),
            f"Declare a severity early (this scenario is a {expected}): it sets who joins and how often "
            "stakeholders hear from you.",
        )
    first = declared[0]
    evidence = tuple(f"{_offset(measurement, mark.at)} {mark.by} declared {mark.value}" for mark in declared)
    final = declared[-1].value
    if final == expected:
        return Finding(
            "severity_declared",
            title,
            Verdict.PASSED,
            weight,
            weight,
            f"declared {first.value}"
            + (f", then {final}" if final != first.value else "")
            + f" (expected {expected})",
            evidence,
        )
    return Finding(
        "severity_declared",
        title,
        Verdict.FAILED,
        weight / 2,
        weight,
        f"declared {final}, expected {expected}",
        evidence,
        f"Review the severity definitions: this impact is a {expected}, not {final}.",
    )


def incident_commander(measurement: Measurement, scenario: Scenario, weight: float) -> Finding:
    title = "An incident commander named, who did not also make the changes"
    named = _marks(measurement, Mark.IC)
    if not named:
        return Finding(
            "incident_commander",
            title,
            Verdict.FAILED,
            0,
            weight,
            "no incident commander was named",
            (),
            "Name an incident commander in the first minutes; the IC coordinates and communicates.",
        )
    commander = named[-1].value
    changes = [mark for mark in _marks(measurement, Mark.CHANGE) if mark.by == commander]
    evidence = [f"{_offset(measurement, named[0].at)} {named[0].by} named {commander} IC"]
    evidence += [f"{_offset(measurement, mark.at)} IC {commander} changed: {mark.value}" for mark in changes]
    if changes:
        return Finding(
            "incident_commander",
            title,
            Verdict.FAILED,
            weight / 2,
            weight,
            f"{commander} was IC but also made {len(changes)} production change(s)",
            tuple(evidence),
            "Keep the IC hands-off: assign a technical lead to make changes while the IC coordinates.",
        )
    return Finding(
        "incident_commander",
        title,
        Verdict.PASSED,
        weight,
        weight,
        f"{commander} was IC and made no changes",
        tuple(evidence),
    )


UPDATE_PARTS = {
    "what is affected": re.compile(
        r"\b(affect|impact|users?|customers?|error|fail|down|degrad|slow|latenc|\d+\s*%)", re.I
    ),
    "current hypothesis": re.compile(
        r"\b(hypothes|suspect|likely|cause|because|looks like|seems|root)", re.I
    ),
    "who does what": re.compile(
        r"(@\w+|\b\w+ (is|are) (investigating|checking|rolling|restarting|looking|working)|\bowner\b)", re.I
    ),
    "next update": re.compile(r"\bnext update\b|\bupdate in\b|\bnext at\b|\bnext in\b", re.I),
}


def missing_parts(text: str) -> list[str]:
    return [part for part, pattern in UPDATE_PARTS.items() if not pattern.search(text)]


def status_updates(measurement: Measurement, scenario: Scenario, weight: float) -> Finding:
    title = "Status updates at the severity's cadence, in the full format"
    cadence = status_update_cadence(scenario)
    updates = _marks(measurement, Mark.STATUS)
    start = measurement.detection.at or measurement.t0
    end = measurement.mitigation.at or measurement.faults_ended or measurement.run_end
    if cadence is None:
        return Finding(
            "status_updates",
            title,
            Verdict.NOT_APPLICABLE,
            0,
            weight,
            "no update cadence applies to this severity",
        )
    if start is None or end is None or end <= start:
        return Finding(
            "status_updates", title, Verdict.NOT_APPLICABLE, 0, weight, "the incident was never open"
        )
    evidence = []
    for mark in updates:
        gaps = missing_parts(mark.value)
        evidence.append(
            f"{_offset(measurement, mark.at)} {mark.by}: {mark.value!r}"
            + (f" - missing {', '.join(gaps)}" if gaps else "")
        )
    if not updates:
        return Finding(
            "status_updates",
            title,
            Verdict.FAILED,
            0,
            weight,
            f"no status update in {format_duration(round((end - start).total_seconds()))} of incident",
            (),
            f"Post a status update at least every {format_duration(cadence)}: what is affected, "
            "hypothesis, who does what, when the next update is.",
        )
    moments = [start] + [mark.at for mark in updates if start <= mark.at <= end] + [end]
    late = [(a, b) for a, b in pairwise(moments) if b - a > cadence + timedelta(seconds=5)]
    complete = [mark for mark in updates if not missing_parts(mark.value)]
    share_on_time = 1 - len(late) / max(1, len(moments) - 1)
    share_complete = len(complete) / len(updates)
    points = round(weight * (share_on_time + share_complete) / 2, 1)
    summary = (
        f"{len(updates)} update(s); {len(late)} gap(s) longer than {format_duration(cadence)}; "
        f"{len(complete)} of {len(updates)} in the full format"
    )
    if not late and len(complete) == len(updates):
        return Finding("status_updates", title, Verdict.PASSED, weight, weight, summary, tuple(evidence))
    action = []
    if late:
        action.append(
            f"keep to the {format_duration(cadence)} cadence (longest gap "
            f"{format_duration(round(max(b - a for a, b in late).total_seconds()))})"
        )
    if len(complete) < len(updates):
        action.append("give every update all four parts: affected, hypothesis, who does what, next update")
    return Finding(
        "status_updates",
        title,
        Verdict.FAILED,
        points,
        weight,
        summary,
        tuple(evidence),
        "Status updates: " + "; ".join(action) + ".",
    )


def mitigation_before_root_cause(measurement: Measurement, scenario: Scenario, weight: float) -> Finding:
    title = "Mitigated before a root cause was declared"
    causes = _marks(measurement, Mark.CAUSE)
    mitigated = measurement.mitigation.at
    evidence = [f"{_offset(measurement, mark.at)} {mark.by} declared cause: {mark.value}" for mark in causes]
    if mitigated:
        evidence.insert(0, f"{_offset(measurement, mitigated)} mitigated ({measurement.mitigation.how})")
    if not measurement.impact:
        return Finding(
            "mitigation_before_root_cause",
            title,
            Verdict.NOT_APPLICABLE,
            0,
            weight,
            "no user impact to mitigate",
            tuple(evidence),
        )
    if mitigated is None:
        return Finding(
            "mitigation_before_root_cause",
            title,
            Verdict.FAILED,
            0,
            weight,
            "never mitigated",
            tuple(evidence),
            "Mitigate first (roll back, fail over, shed load), investigate after.",
        )
    early = [mark for mark in causes if mark.at < mitigated]
    if early:
        return Finding(
            "mitigation_before_root_cause",
            title,
            Verdict.FAILED,
            0,
            weight,
            f"root cause declared {format_duration(round((mitigated - early[0].at).total_seconds()))} "
            "before mitigation",
            tuple(evidence),
            "Stop the bleeding before the investigation: agree a mitigation within minutes, "
            "and keep root-cause work for after.",
        )
    return Finding(
        "mitigation_before_root_cause",
        title,
        Verdict.PASSED,
        weight,
        weight,
        "mitigated first" + (", cause declared after" if causes else ""),
        tuple(evidence),
    )


def ttm_within_target(measurement: Measurement, scenario: Scenario, weight: float) -> Finding:
    title = "Time to mitigate within target"
    target = scenario.gameday.ttm_target
    if not measurement.impact:
        return Finding(
            "ttm_within_target", title, Verdict.NOT_APPLICABLE, 0, weight, "no user impact to mitigate"
        )
    ttm = measurement.ttm
    if ttm is None:
        return Finding(
            "ttm_within_target",
            title,
            Verdict.FAILED,
            0,
            weight,
            f"not mitigated ({measurement.mitigation.how})",
            (),
            "Prepare a runbook with the mitigation for this failure so it takes minutes, not a search.",
        )
    summary = (
        f"TTM {format_duration(round(ttm.total_seconds(), 1))} against a target of {format_duration(target)}"
    )
    evidence = tuple(f"{_t(e.at)} {e.detail}" for e in measurement.mitigation.evidence)
    if ttm <= target:
        return Finding("ttm_within_target", title, Verdict.PASSED, weight, weight, summary, evidence)
    return Finding(
        "ttm_within_target",
        title,
        Verdict.FAILED,
        0,
        weight,
        summary,
        evidence,
        "Make the mitigation faster: a runbook, a one-command rollback or a feature flag for this failure.",
    )


def escalation(measurement: Measurement, scenario: Scenario, weight: float) -> Finding:
    title = "Escalated once the expected time passed unmitigated"
    target = scenario.gameday.ttm_target
    t0 = measurement.t0
    if t0 is None or not measurement.impact:
        return Finding("escalation", title, Verdict.NOT_APPLICABLE, 0, weight, "no incident to escalate")
    due = t0 + target
    mitigated = measurement.mitigation.at
    if mitigated is not None and mitigated <= due:
        return Finding(
            "escalation",
            title,
            Verdict.NOT_APPLICABLE,
            0,
            weight,
            "mitigated within the expected time: no escalation needed",
        )
    ends = measurement.faults_ended or measurement.run_end
    if mitigated is None and ends is not None and ends <= due:
        return Finding(
            "escalation",
            title,
            Verdict.NOT_APPLICABLE,
            0,
            weight,
            "the incident ended before escalation was due",
        )
    escalated = [mark for mark in _marks(measurement, Mark.ESCALATED) if mark.at >= t0]
    evidence = [f"{_t(due)} escalation due (t0+{format_duration(target)})"]
    evidence += [f"{_offset(measurement, mark.at)} {mark.by} escalated" for mark in escalated]
    if escalated:
        return Finding("escalation", title, Verdict.PASSED, weight, weight, "escalated", tuple(evidence))
    return Finding(
        "escalation",
        title,
        Verdict.FAILED,
        0,
        weight,
        "the expected time passed and nobody escalated",
        tuple(evidence),
        "Escalate one severity level automatically when the expected time to "
        "mitigate passes; make it the IC's explicit call.",
    )


def single_changer(measurement: Measurement, scenario: Scenario, weight: float) -> Finding:
    title = "One person making production changes at a time"
    changes = _marks(measurement, Mark.CHANGE)
    if not changes:
        return Finding(
            "single_changer", title, Verdict.NOT_APPLICABLE, 0, weight, "no production change recorded"
        )
    evidence = tuple(f"{_offset(measurement, mark.at)} {mark.by}: {mark.value}" for mark in changes)
    owners = [mark.by for mark in changes]
    blocks = [owner for index, owner in enumerate(owners) if index == 0 or owner != owners[index - 1]]
    if len(blocks) == len(set(blocks)):  # each person's changes form one uninterrupted run
        return Finding(
            "single_changer",
            title,
            Verdict.PASSED,
            weight,
            weight,
            f"{len(changes)} change(s), by {', '.join(dict.fromkeys(owners))} in turn",
            evidence,
        )
    return Finding(
        "single_changer",
        title,
        Verdict.FAILED,
        0,
        weight,
        f"changes by {', '.join(dict.fromkeys(owners))} interleaved",
        evidence,
        "Route every production change through one named person at a time (the IC decides who).",
    )


CRITERIA: dict[str, Criterion] = {
    "detected_by_monitoring": detected_by_monitoring,
    "ttd_within_target": ttd_within_target,
    "severity_declared": severity_declared,
    "incident_commander": incident_commander,
    "status_updates": status_updates,
    "mitigation_before_root_cause": mitigation_before_root_cause,
    "ttm_within_target": ttm_within_target,
    "escalation": escalation,
    "single_changer": single_changer,
}


def score(measurement: Measurement, scenario: Scenario) -> Score:
    weights = scenario.scoring.weights
    return Score(
        [criterion(measurement, scenario, getattr(weights, name)) for name, criterion in CRITERIA.items()]
    )
