"""The scorer and the measurement as pure functions on exact timelines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chaosrunner.errors import UsageError
from chaosrunner.gameday.measure import Measurement, Moment, mitigation_from_sli
from chaosrunner.gameday.responder import Mark, ResponderEvent, Via, make_event, parse_at
from chaosrunner.gameday.scoring import CRITERIA, Verdict, missing_parts, score
from chaosrunner.scenario.loader import scenario_from_data
from chaosrunner.scenario.models import Comparator, MitigationSignal

T0 = datetime(2026, 11, 27, 14, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def scenario(**gameday: Any) -> Any:
    return scenario_from_data(
        {
            "metadata": {"title": "t", "owner": "o", "expected_severity": "P2", "hypothesis": "h"},
            "faults": [{"name": "f", "kind": "inprocess.flag", "params": {"flag": "f"}}],
            "gameday": {
                "mode": "gameday",
                "ttd_target": "1m",
                "ttm_target": "5m",
                "status_update_every": "2m",
                **gameday,
            },
        }
    )


def mark(
    seconds: float, kind: Mark, value: str = "", by: str = "alice", via: Via | None = None
) -> ResponderEvent:
    return ResponderEvent(kind, at(seconds), by, value, via)


GOOD_UPDATE = (
    "checkout errors for 30% of users; hypothesis: pool exhausted; @bob is restarting it; next update in 2m"
)


def measurement(
    marks: list[ResponderEvent],
    *,
    detected: float | None = 20,
    layer: str | None = "synthetic",
    mitigated: float | None = 200,
    ended: float = 230,
    impact: bool = True,
) -> Measurement:
    return Measurement(
        t0=T0,
        faults_ended=at(ended),
        run_end=at(ended + 5),
        detection=Moment(at(detected) if detected is not None else None, "alert ProbeFailing firing"),
        detection_layer=layer if detected is not None else None,
        mitigation=Moment(at(mitigated) if mitigated is not None else None, "SLI back"),
        recovery=Moment(at(ended + 3), "steady"),
        marks=sorted(marks, key=lambda m: m.at),
        impact=impact,
    )


def exemplary() -> list[ResponderEvent]:
    return [
        mark(30, Mark.SEVERITY, "P2"),
        mark(35, Mark.IC, "alice"),
        mark(60, Mark.STATUS, GOOD_UPDATE),
        mark(90, Mark.CHANGE, "restarted pool", by="bob"),
        mark(150, Mark.STATUS, GOOD_UPDATE),
        mark(210, Mark.CAUSE, "leak", by="bob"),
    ]


def verdicts(result: Any) -> dict[str, Verdict]:
    return {finding.criterion: finding.verdict for finding in result.findings}


def test_an_exemplary_response_scores_100() -> None:
    result = score(measurement(exemplary()), scenario())
    assert set(verdicts(result).values()) <= {Verdict.PASSED, Verdict.NOT_APPLICABLE}
    assert result.total == 100.0 and result.grade == "A"
    assert result.action_items() == []
    assert len(result.findings) == len(CRITERIA) == 9


@pytest.mark.parametrize(
    ("change", "criterion", "expected"),
    [
        (lambda m, kw: kw.update(layer="user_report"), "detected_by_monitoring", Verdict.FAILED),
        (lambda m, kw: kw.update(detected=90), "ttd_within_target", Verdict.FAILED),
        (lambda m, kw: m.__setitem__(0, mark(30, Mark.SEVERITY, "P1")), "severity_declared", Verdict.FAILED),
        (
            lambda m, kw: m.append(mark(95, Mark.CHANGE, "hotfix", by="alice")),
            "incident_commander",
            Verdict.FAILED,
        ),
        (
            lambda m, kw: m.__setitem__(2, mark(60, Mark.STATUS, "it is broken")),
            "status_updates",
            Verdict.FAILED,
        ),
        (
            lambda m, kw: m.__setitem__(4, mark(175, Mark.NOTE, "x")),
            "status_updates",
            Verdict.FAILED,
        ),  # 60s -> 200s gap
        (
            lambda m, kw: m.__setitem__(5, mark(100, Mark.CAUSE, "leak")),
            "mitigation_before_root_cause",
            Verdict.FAILED,
        ),
        (lambda m, kw: kw.update(mitigated=400, ended=420), "ttm_within_target", Verdict.FAILED),
        (lambda m, kw: kw.update(mitigated=400, ended=420), "escalation", Verdict.FAILED),
        (
            lambda m, kw: m.extend(
                [mark(91, Mark.CHANGE, "a", by="carol"), mark(92, Mark.CHANGE, "b", by="bob")]
            ),
            "single_changer",
            Verdict.FAILED,
        ),
    ],
)
def test_each_criterion_fails_on_its_own_mistake(change: Any, criterion: str, expected: Verdict) -> None:
    marks = exemplary()
    options: dict[str, Any] = {}
    change(marks, options)
    result = score(measurement(marks, **options), scenario())
    finding = next(f for f in result.findings if f.criterion == criterion)
    assert finding.verdict is expected, finding
    assert finding.action_item
    assert result.total < 100


def test_escalation_passes_when_the_team_escalated_in_time() -> None:
    marks = [*exemplary(), mark(320, Mark.ESCALATED, by="alice")]
    result = score(measurement(marks, mitigated=400, ended=420), scenario())
    assert verdicts(result)["escalation"] is Verdict.PASSED


def test_no_impact_makes_mitigation_criteria_not_applicable() -> None:
    result = score(measurement(exemplary(), mitigated=None, impact=False), scenario())
    found = verdicts(result)
    assert found["ttm_within_target"] is Verdict.NOT_APPLICABLE
    assert found["mitigation_before_root_cause"] is Verdict.NOT_APPLICABLE
    assert found["escalation"] is Verdict.NOT_APPLICABLE


def test_weights_come_from_the_scenario_and_the_total_scales_to_100() -> None:
    marks = exemplary()
    marks[0] = mark(30, Mark.SEVERITY, "P3")  # half points on severity
    weights = {"severity_declared": 50}
    result = score(
        measurement(marks),
        scenario_from_data(
            {**scenario().model_dump(mode="json", by_alias=True), "scoring": {"weights": weights}}
        ),
    )
    finding = next(f for f in result.findings if f.criterion == "severity_declared")
    assert (finding.points, finding.weight) == (25, 50)
    applicable = [f for f in result.findings if f.verdict is not Verdict.NOT_APPLICABLE]
    assert result.total == round(
        100 * sum(f.points for f in applicable) / sum(f.weight for f in applicable), 1
    )


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        (GOOD_UPDATE, []),
        ("all good", ["what is affected", "current hypothesis", "who does what", "next update"]),
        ("errors at 20%, cause unknown, next update 14:40", ["who does what"]),
    ],
)
def test_status_update_format(text: str, missing: list[str]) -> None:
    assert missing_parts(text) == missing


SIGNAL = MitigationSignal(
    sli="sli", comparator=Comparator.GE, objective=0.99, confirm_for=timedelta(seconds=3)
)


def series(values: list[float], start: float = 0) -> list[tuple[float, float]]:
    return [(at(start + index).timestamp(), value) for index, value in enumerate(values)]


def test_mitigation_is_the_first_moment_back_for_the_whole_window() -> None:
    # good, bad x3, good for 1s (a blip), bad, then good for 5s
    points = series([1, 0.5, 0.5, 0.5, 1, 0.5, 1, 1, 1, 1, 1])
    moment, impact, why = mitigation_from_sli(points, SIGNAL, T0, at(20))
    assert impact and moment == at(6)
    assert "for 3s" in why


def test_an_sli_that_never_breached_means_no_impact() -> None:
    moment, impact, _ = mitigation_from_sli(series([1, 1, 1, 1]), SIGNAL, T0, at(3))
    assert moment is None and not impact


def test_a_return_only_after_the_revert_is_recovery_not_mitigation() -> None:
    points = series([0.5] * 8 + [1] * 6)
    moment, impact, _ = mitigation_from_sli(points, SIGNAL, T0, faults_ended=at(5))
    assert moment is None and impact


def test_responder_events_are_validated() -> None:
    now = at(100)
    event = make_event("detected", None, by="bob", at=at(50), via="synthetic", run_started=T0, now=now)
    assert event.via is Via.SYNTHETIC
    assert (
        make_event("detected", None, by="bob", at=at(50), via=None, run_started=T0, now=now).via is Via.HUMAN
    )
    assert make_event("severity", "p1", by="a", at=at(1), via=None, run_started=T0, now=now).value == "P1"
    for bad in [
        dict(mark="severity", value="P9", at=at(1)),
        dict(mark="status", value=None, at=at(1)),
        dict(mark="mitigated", value="done", at=at(1)),
        dict(mark="note", value="x", at=at(500)),  # future
        dict(mark="note", value="x", at=at(-60)),  # before the run
        dict(mark="panic", value=None, at=at(1)),
    ]:
        with pytest.raises(UsageError):
            make_event(bad["mark"], bad["value"], by="a", at=bad["at"], via=None, run_started=T0, now=now)
    with pytest.raises(UsageError, match="--via only applies"):
        make_event("note", "x", by="a", at=at(1), via="synthetic", run_started=T0, now=now)


def test_at_parses_the_forms_people_type() -> None:
    now = datetime(2026, 11, 27, 14, 30, 0, tzinfo=UTC)
    assert parse_at(None, now) == now
    assert parse_at("-5m", now) == now - timedelta(minutes=5)
    assert parse_at("14:02", now) == datetime(2026, 11, 27, 14, 2, tzinfo=UTC)
    assert parse_at("2026-11-27T14:05:30Z", now) == datetime(2026, 11, 27, 14, 5, 30, tzinfo=UTC)
    with pytest.raises(UsageError):
        parse_at("yesterday", now)
