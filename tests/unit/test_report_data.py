"""The report's data, piece by piece: step, series, impact, timeline - on exact inputs."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from chaosrunner.engine.journal import JournalEvent
from chaosrunner.observe.metrics import Series
from chaosrunner.report.impact import impact, request_rate_expr
from chaosrunner.report.model import build_report, window
from chaosrunner.report.sample import REQUESTS, SLI, T0, sample_run
from chaosrunner.report.series import PROMETHEUS_POINT_LIMIT, Panel, choose_step, downsample
from chaosrunner.report.timeline import MEASURED, TEAM, timeline
from chaosrunner.scenario.models import Comparator

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


# -- the step and the ranges -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "step"),
    [(60, 1), (9_000, 1), (10_000, 1), (10_001, 2), (4 * 3600, 2), (4 * 3600 + 1200, 2), (86_400, 10)],
)
def test_step_keeps_every_query_under_prometheus_point_limit(span: float, step: float) -> None:
    assert choose_step(span) == step
    assert span / step + 1 < PROMETHEUS_POINT_LIMIT


def test_a_four_hour_run_is_fetched_once_per_expression_under_the_limit() -> None:
    debrief, metrics = sample_run(hours=4, conditions=8)
    measured = len(metrics.queries)  # the debrief's own measurement queried first
    report = build_report(debrief, metrics, now=NOW)
    assert report.step == 2.0
    asked = metrics.queries[measured:]
    expressions = [expr for expr, _ in asked]
    # the SLI, 8 abort conditions, the steady state, the SLI's request rate and every
    # alert's firing samples (report.detection): once each
    assert len(expressions) == len(set(expressions)) == 12
    assert REQUESTS in expressions and SLI in expressions
    assert {step for _, step in asked} == {2.0}
    for panel in report.panels:
        assert len(panel.points()) <= PROMETHEUS_POINT_LIMIT


def test_the_window_adds_a_little_baseline_either_side() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert window(start, start + timedelta(seconds=60), NOW) == (
        start.timestamp() - 10,
        start.timestamp() + 70,
    )
    begin, _ = window(start, start + timedelta(hours=4), NOW)
    assert start.timestamp() - begin == 600  # capped at ten minutes


# -- series ---------------------------------------------------------------------------------------


def test_downsampling_keeps_a_single_sample_spike() -> None:
    points = [(float(t), 1.0) for t in range(14_400)]
    points[7_777] = (7_777.0, 50.0)
    segments = downsample(points, 0, 14_400, 1_000, 1.0)
    kept = [point for segment in segments for point in segment]
    assert len(kept) <= 2_000
    assert (7_777.0, 50.0) in kept


def test_downsampling_breaks_the_line_where_data_is_missing() -> None:
    points = [(float(t), 1.0) for t in range(0, 50)] + [(float(t), 1.0) for t in range(80, 100)]
    points.insert(10, (10.5, math.nan))
    segments = downsample(points, 0, 100, 1_000, 1.0)
    assert len(segments) == 3


def test_panel_summary_counts_time_on_the_bad_side() -> None:
    sli = Panel(
        "sli", "sli", "x", Comparator.GE, 0.99, 1.0, [Series({}, [(0, 1.0), (1, 0.5), (2, 0.9), (3, 1.0)])]
    )
    abort = Panel("abort_condition", "a", "y", Comparator.GT, 5, 1.0, [Series({}, [(0, 1.0), (1, 6.0)])])
    assert sli.summary().outside_seconds == 2.0 and sli.summary().minimum == 0.5
    assert abort.summary().outside_seconds == 1.0 and abort.summary().last == 6.0
    assert sli.rule == "objective >= 0.99" and abort.rule == "aborts when > 5"


# -- impact ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sli", "denominator"),
    [
        (SLI, REQUESTS),
        (
            'sum(rate(ok_total[5m])) / sum(rate(requests_total{job="a-b"}[5m]))',
            'sum(rate(requests_total{job="a-b"}[5m]))',
        ),
        ("(1 - sum(rate(e[1m])) / sum by (job) (irate(r[1m])))", "sum by (job) (irate(r[1m]))"),
        (  # brackets and operators inside label values are text, not structure
            '1 - (sum(rate(r{code=~"5.*"}[1m])) / sum(rate(r{path="/a(b-c"}[1m])))',
            'sum(rate(r{path="/a(b-c"}[1m]))',
        ),
        ('avg(probe_success{job="checkout"})', None),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))", None),
        ("sum(rate(a[1m])) / sum(rate(b[1m])) * 100", None),
        ("sum(increase(e[1m])) / sum(increase(r[1m]))", None),
        ("sum(rate(e[1m])) / sum(rate(r[1m])) or vector(1)", None),
    ],
)
def test_request_rate_is_taken_only_from_a_ratio_of_rates(sli: str, denominator: str | None) -> None:
    found, why = request_rate_expr(sli)
    assert found == denominator, why


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sli_panel(values: list[float], comparator: Comparator = Comparator.GE, objective: float = 0.99) -> Panel:
    t0 = T0.timestamp()
    return Panel(
        "sli",
        "sli",
        SLI,
        comparator,
        objective,
        1.0,
        [Series({}, [(t0 + i, v) for i, v in enumerate(values)])],
    )


def test_impact_figures_from_a_ratio_sli_and_its_request_rate() -> None:
    panel = sli_panel([1.0, 0.5, 0.5, 0.0, 1.0])
    rate = [
        Series({"code": "200"}, [(T0.timestamp() + i, 6.0) for i in range(5)]),
        Series({"code": "500"}, [(T0.timestamp() + i, 4.0) for i in range(5)]),
    ]
    result = impact(panel, rate, "the denominator", [(at(0), at(4))], T0, at(4))
    assert result.get("faults_in_place").value == 4.0
    assert result.get("users_affected").value == 3.0
    assert result.get("worst_sli").value == 0.0
    assert result.get("error_budget").value == 2.0  # 0.5 + 0.5 + 1.0 seconds of full outage
    assert "of a 30-day budget" in result.get("error_budget").shown
    failed = result.get("failed_requests")
    assert failed.value == 20.0 and failed.shown == "20 of 50"  # (0.5+0.5+1) x 10 req/s


def test_impact_says_not_measurable_rather_than_guess() -> None:
    none = impact(None, None, "", [(at(0), at(4))], T0, at(4))
    assert none.get("users_affected").value is None and "no SLI" in none.get("users_affected").how
    latency = sli_panel([0.2, 0.9, 0.3], Comparator.LE, 0.5)
    result = impact(latency, None, "", [], T0, at(3))
    assert result.get("users_affected").value == 1.0  # the duration still holds
    assert (
        result.get("error_budget").value is None and "not a success ratio" in result.get("error_budget").how
    )
    assert result.get("faults_in_place").value is None
    gauge = impact(sli_panel([1.0, 0.5]), None, "the SLI is not written as a ratio", [], T0, at(2))
    assert gauge.get("error_budget").value is not None
    assert gauge.get("failed_requests").value is None
    assert gauge.get("failed_requests").how == "the SLI is not written as a ratio"


# -- timeline -------------------------------------------------------------------------------------


def test_timeline_orders_by_when_it_happened_and_marks_measured_moments() -> None:
    debrief, _ = sample_run()
    late = JournalEvent(
        type="responder",
        time="2026-11-27T14:05:00.000000Z",  # typed after the run...
        offset=300.0,
        event="note",
        at="2026-11-27T14:00:50.000000Z",  # ...about something at t0+40s
        by="carol",
        value="support saw tickets",
    )
    rows = timeline([*debrief.events, late], debrief.measurement)
    times = [row.at for row in rows]
    assert times == sorted(times)
    note = next(row for row in rows if row.who == "carol")
    assert note.offset == "t0+40s" and note.source == TEAM
    measured = [row.kind for row in rows if row.source == MEASURED]
    assert measured == ["detected", "mitigated", "recovered"]


def test_timeline_leaves_out_urls_and_names_unknown_events_safely() -> None:
    debrief, _ = sample_run()
    extra = [
        JournalEvent(
            type="webhook",
            time="2026-11-27T14:02:00.000000Z",
            offset=120.0,
            event="escalation_due",
            url="https://hooks.example/T000/B000/token-in-the-path",
            ok=True,
        ),
        JournalEvent(
            type="holder_spawned",
            time="2026-11-27T14:02:01.000000Z",
            offset=121.0,
            command="psql postgresql://u:pw@db/x",
            detail="holder up",
        ),
    ]
    rows = timeline([*debrief.events, *extra], debrief.measurement)
    text = " ".join(row.what for row in rows)
    assert "escalation due webhook delivered" in text and "token-in-the-path" not in text
    assert "holder spawned: holder up" in text and "pw@" not in text
