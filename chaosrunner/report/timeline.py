"""One timeline that interleaves what the system did and what the team did.

A postmortem's timeline needs both: "14:02:07 checkout error rate alert
fires" next to "14:02:40 alice declares P2". The journal has both kinds of
event already; this module turns each into one row a person reads, orders
them by when they *happened* (a responder's late entry ``--at -2m`` sits
where it belongs, not where it was typed), and adds the moments measured from
Prometheus data - detection, mitigation, recovery - as rows of their own, so
the table and the headline figures tell the same story.

Rows never carry URLs or revert records: a webhook URL can hold a token,
and a revert record is the engine's business, not the postmortem's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chaosrunner.engine.journal import outcome_summary, parse_time
from chaosrunner.gameday.measure import Measurement
from chaosrunner.report import fmt
from chaosrunner.report.chat_quotes import imported_from

SYSTEM = "system"  # chaosrunner and the target: faults, checks, aborts, the run sheet's injects
MONITORING = "monitoring"  # alerts and abort-condition states, as Prometheus saw them
TEAM = "team"  # responder marks, and the facilitator's checklist and go/no-go
MEASURED = "measured"  # moments computed from Prometheus data afterwards

SKIPPED = {"phase", "fault_injecting", "fault_reverting", "responder_endpoint"}
"""Bookkeeping events a postmortem reader does not need (the next event says it better)."""


@dataclass(frozen=True)
class TimelineRow:
    at: datetime
    since_t0: timedelta | None
    source: str  # system | monitoring | team | measured
    who: str
    what: str
    kind: str  # the journal event type or responder mark: for styling and JSON consumers
    emphasis: bool = False  # aborts, escalation, the measured moments: worth a glance

    @property
    def offset(self) -> str:
        return fmt.offset(self.since_t0)


def _value(value: Any) -> str:
    return fmt.number(float(value)) if isinstance(value, int | float) else "no data"


def _check_detail(event: Mapping[str, Any]) -> str:
    """Drop the expression from `value 1.0 (<PromQL> >= 0.99)`: the report lists expressions once."""
    detail = str(event.get("detail", ""))
    return detail.split(" (", 1)[0] if detail.startswith("value ") else detail


def _responder(event: Mapping[str, Any]) -> tuple[str, str]:
    mark = event["event"]
    value = str(event.get("value", ""))
    via = event.get("via")
    text = {
        "detected": f"noticed the incident{f' (via {fmt.human(via)})' if via else ''}",
        "mitigated": "marked the incident mitigated",
        "resolved": "marked the incident resolved",
        "escalated": "escalated the incident",
        "severity": f"declared severity {value}",
        "ic": f"named {value} incident commander",
        "status": f"status update: {value}",
        "change": f"production change: {value}",
        "cause": f"declared root cause: {value}",
        "note": f"note: {value}",
    }.get(mark, f"{mark} {value}".strip())
    platform = imported_from(str(event.get("source") or ""))
    if platform:  # read from the chat export afterwards, not marked live: say so, and what was written
        quote = str(event.get("quote") or "")
        channel = f" #{event['channel']}" if event.get("channel") else ""
        text = f"[imported from {platform}{channel}] {text}" + (
            f' - wrote "{quote}"' if quote and quote != value else ""
        )
    return _person(event), text


def _person(event: Mapping[str, Any]) -> str:
    """``alice``, or ``alice (incident commander)`` when the event says which role."""
    who = str(event.get("by", "")) or "unknown"
    role = event.get("role")
    return f"{who} ({fmt.human(str(role))})" if role else who


def _go_decision(event: Mapping[str, Any]) -> str:
    said = "GO: inject the faults" if event.get("decision") == "go" else "NO-GO: call the gameday off"
    text = said + (f" - {event['reason']}" if event.get("reason") else "")
    unchecked = event.get("unchecked") or []
    if unchecked:
        text += f" (not ticked: {'; '.join(str(item) for item in unchecked)})"
    return text


def _describe(event: Mapping[str, Any]) -> tuple[str, str, str, bool] | None:
    """(source, who, what, emphasis) for one journal event, or None to leave it out."""
    kind = event["type"]
    fault = event.get("fault", "")
    rows: dict[str, Callable[[], tuple[str, str, str, bool]]] = {
        "run_started": lambda: (
            SYSTEM,
            "chaosrunner",
            f"run started: {event.get('scenario_title', '')} ({event.get('mode', '')} mode)",
            False,
        ),
        "check": lambda: (
            SYSTEM,
            "chaosrunner",
            f"{'ok' if event.get('ok') else 'FAILED'}: {event.get('name', '')} ({_check_detail(event)})",
            False,
        ),
        "fault_planned": lambda: (
            SYSTEM,
            "chaosrunner",
            f"planned fault {fault}: {event.get('summary') or event.get('kind', '')}"
            + (
                f" on {', '.join(str(t.get('name', '')) for t in event.get('targets', []))}"
                if event.get("targets")
                else ""
            ),
            False,
        ),
        "fault_injected": lambda: (
            SYSTEM,
            "chaosrunner",
            f"fault {fault} injected ({event.get('kind', '')})",
            True,
        ),
        "fault_inject_failed": lambda: (
            SYSTEM,
            "chaosrunner",
            f"fault {fault} could not be injected: {event.get('error', '')}",
            True,
        ),
        "fault_reverted": lambda: (
            SYSTEM,
            "chaosrunner" if event.get("by") != "recover" else "chaosrunner recover",
            f"fault {fault} reverted",
            True,
        ),
        "toxic_switched": lambda: (
            SYSTEM,
            str(event.get("by") or "facilitator"),
            f"toxic {event.get('toxic', '')} of fault {fault} switched "
            + ("on" if event.get("enabled") else "off"),
            True,
        ),
        "fault_outcome": lambda: (
            SYSTEM,
            "chaosrunner",
            f"fault {fault} aftermath: {outcome_summary(dict(event))}",
            False,
        ),
        "fault_revert_failed": lambda: (
            SYSTEM,
            "chaosrunner",
            f"fault {fault} NOT reverted: {event.get('error', '')}",
            True,
        ),
        "condition": lambda: (
            MONITORING,
            "abort monitor",
            f"abort condition {event.get('name', '')} {event.get('state', '')} "
            f"(value {_value(event.get('value'))}; aborts when {event.get('comparator', '')} "
            f"{_value(event.get('threshold'))})",
            event.get("state") == "firing",
        ),
        "prometheus": lambda: (
            MONITORING,
            "abort monitor",
            f"Prometheus {event.get('state', '')}" + (f": {event['error']}" if event.get("error") else ""),
            event.get("state") == "unreachable",
        ),
        "abort": lambda: (
            SYSTEM,
            "chaosrunner",
            f"ABORT ({fmt.human(str(event.get('cause', '')))}): {event.get('detail', '')}",
            True,
        ),
        "signal_ignored": lambda: (
            SYSTEM,
            "chaosrunner",
            f"{event.get('signal', '')} ignored: {event.get('detail', '')}",
            False,
        ),
        "run_finished": lambda: (
            SYSTEM,
            "chaosrunner",
            f"run finished: {event.get('status', '')} - {event.get('detail', '')}",
            False,
        ),
        "alert": lambda: (
            MONITORING,
            "Alertmanager" if event.get("source") == "alertmanager" else "Prometheus",
            f"alert {event.get('name', '')} {event.get('state', '')}"
            + (f" ({fmt.human(event['layer'])})" if event.get("layer") else "")
            + (f", active since {fmt.clock(parse_time(event['since']))}" if event.get("since") else ""),
            False,
        ),
        "alert_rules": lambda: (
            SYSTEM,
            "chaosrunner",
            f"{len(event.get('rules') or [])} alert rules loaded in Prometheus"
            if event.get("source") == "prometheus"
            else f"alert rules unavailable: {event.get('error', '')}",
            False,
        ),
        "faults_ending": lambda: (
            SYSTEM,
            "chaosrunner",
            f"ending the faults: {event.get('reason', '')}",
            False,
        ),
        "go_decision": lambda: (TEAM, _person(event), _go_decision(event), True),
        "checklist": lambda: (
            TEAM,
            _person(event),
            f"{'ticked' if event.get('checked') else 'unticked'} prerequisite: {event.get('text', '')}",
            False,
        ),
        "inject_fired": lambda: (
            SYSTEM,
            "run sheet",
            f"inject {event.get('name', '')} to {event.get('audience', 'responders')}: "
            + str(event.get("text", "")),
            True,
        ),
        "inject_skipped": lambda: (
            SYSTEM,
            "run sheet",
            f"inject {event.get('name', '')} skipped: {event.get('reason', '')}",
            False,
        ),
        "mitigation_unconfirmed": lambda: (SYSTEM, "chaosrunner", str(event.get("detail", "")), False),
        "escalation_due": lambda: (SYSTEM, "chaosrunner", f"escalation due: {event.get('detail', '')}", True),
        "webhook": lambda: (
            SYSTEM,
            "chaosrunner",
            f"{fmt.human(str(event.get('event', '')))} webhook "
            + ("delivered" if event.get("ok") else "failed"),
            False,
        ),
    }
    if kind == "phase" and event.get("phase") == "awaiting_go":
        return SYSTEM, "chaosrunner", "waiting for go/no-go from the facilitator", False
    if kind in SKIPPED:
        return None
    if kind == "responder":
        who, what = _responder(event)
        return TEAM, who, what, event.get("event") in ("detected", "mitigated", "escalated")
    render = rows.get(kind)
    if render is None:  # a newer event type: name it, show no field we do not know to be safe
        detail = event.get("detail") or event.get("reason") or ""
        return SYSTEM, "chaosrunner", f"{fmt.human(kind)}{': ' + str(detail) if detail else ''}", False
    return render()


def _when(event: Mapping[str, Any]) -> datetime:
    # Responder events happened at `at` (late entries are allowed); the rest when journaled.
    return parse_time(event["at"] if event["type"] == "responder" and event.get("at") else event["time"])


def measured_rows(measurement: Measurement) -> list[tuple[datetime, str, str]]:
    found = []
    if measurement.detection.at is not None:
        found.append(
            (
                measurement.detection.at,
                "detected",
                f"detected: {measurement.detection.how} (TTD {fmt.duration(measurement.ttd)})",
            )
        )
    if measurement.mitigation.at is not None:
        found.append(
            (
                measurement.mitigation.at,
                "mitigated",
                f"mitigated: {measurement.mitigation.how} (TTM {fmt.duration(measurement.ttm)})",
            )
        )
    if measurement.recovery.at is not None and measurement.t0 is not None:
        found.append(
            (
                measurement.recovery.at,
                "recovered",
                f"recovered: {measurement.recovery.how} (TTR {fmt.duration(measurement.ttr)})",
            )
        )
    return found


def timeline(events: Sequence[Mapping[str, Any]], measurement: Measurement) -> list[TimelineRow]:
    t0 = measurement.t0
    rows: list[tuple[datetime, int, TimelineRow]] = []
    for index, event in enumerate(events):
        described = _describe(event)
        if described is None:
            continue
        source, who, what, emphasis = described
        kind = str(event["event"]) if event["type"] == "responder" else event["type"]
        at = _when(event)
        rows.append((at, index, TimelineRow(at, at - t0 if t0 else None, source, who, what, kind, emphasis)))
    for at, kind, what in measured_rows(measurement):
        row = TimelineRow(at, at - t0 if t0 else None, MEASURED, "measurement", what, kind, True)
        rows.append((at, -1, row))  # ties: the measured moment first, then what reported it
    return [row for _, _, row in sorted(rows, key=lambda item: (item[0], item[1]))]
