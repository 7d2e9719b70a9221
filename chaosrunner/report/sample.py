"""A synthetic run with known numbers: for renderer tests, the speed benchmark and template work.

Renderers are tested the way rich tests its console (render to a string,
compare with what a person checked once), which needs a run whose every
number is fixed: this module builds one - a journal, a scenario, Prometheus
ranges answered by ``SampleMetrics`` (a ``MetricsSource`` that computes
each expression's value from the script below) - and debriefs it with the
real ``measure`` and ``score``. Only the input is synthetic.

The script, in seconds from t0 (the fault injected at 14:00:10 UTC):
the SLI (a success ratio of requests) is 1.0, drops to 0.5 at +15 (half the
requests fail, at 10 requests/s), returns at +100; the probe alert fires at
+20; the team declares P2 at +30, names an IC, posts an update that lacks a
hypothesis and a next-update time, makes a change, marks mitigation at +125; the fault is reverted at +131.
``sample_run(hours=4, conditions=8)`` stretches the same story over four
hours with more abort conditions, for the benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chaosrunner.engine.alert_rules import rule_fields
from chaosrunner.engine.journal import JournalEvent, format_time
from chaosrunner.gameday.debrief import Debrief
from chaosrunner.gameday.measure import measure
from chaosrunner.gameday.scoring import score
from chaosrunner.gameday.verdict import experiment_verdict
from chaosrunner.observe.metrics import ActiveAlert, AlertRule, Sample, Series
from chaosrunner.report.detection import FIRING_EXPR
from chaosrunner.scenario.loader import scenario_from_data

START = datetime(2026, 11, 27, 14, 0, 0, tzinfo=UTC)
T0 = START + timedelta(seconds=10)
RUN_ID = "20261127-140000-5a3b1e"
SLI = (
    '1 - (sum(rate(http_requests_total{job="checkout",code=~"5.."}[1m]))'
    ' / sum(rate(http_requests_total{job="checkout"}[1m])))'
)
REQUESTS = 'sum(rate(http_requests_total{job="checkout"}[1m]))'
PROBE_ALERT = 'timestamp(ALERTS{alertname="CheckoutProbeFailing", alertstate="firing"})'
UPDATE = (
    "checkout failing for 50% of users; hypothesis: db pool exhausted; "
    "@bob is terminating idle connections; next update in 10m"
)


class SampleMetrics:
    """Answers range queries from functions of time; ``resolution`` overrides the step."""

    url = "http://prometheus.example:9090"

    def __init__(
        self,
        values: dict[str, Callable[[float], float | None]],
        resolution: float | None = None,
        alerts_firing: dict[str, Callable[[float], float | None]] | None = None,
    ):
        self.values = values
        self.resolution = resolution
        self.alerts_firing = alerts_firing or {}  # alertname -> its firing sample's time at t
        self.queries: list[tuple[str, float]] = []

    def instant(self, expr: str, timeout: float = 5.0) -> Sample:
        return Sample()

    def range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        self.queries.append((expr, step))
        if expr == FIRING_EXPR:  # every alert at once, one series each (report.detection)
            found = [
                Series(labels={"alertname": name}, points=self._points(function, start, end, step))
                for name, function in self.alerts_firing.items()
            ]
            return [series for series in found if series.points]
        function = self.values.get(expr)
        if function is None:
            return []
        points = self._points(function, start, end, step)
        return [Series(labels={}, points=points)] if points else []

    def _points(
        self, function: Callable[[float], float | None], start: float, end: float, step: float
    ) -> list[tuple[float, float]]:
        every = self.resolution or step
        points = []
        for index in range(int((end - start) / every) + 1):
            t = start + index * every
            value = function(t)
            if value is not None:
                points.append((round(t, 3), value))
        return points

    def alerts(self) -> list[ActiveAlert]:
        return []

    def alert_rules(self) -> list[AlertRule]:
        return list(SAMPLE_RULES)


SAMPLE_RULES = (
    AlertRule("CheckoutProbeFailing", "checkout", "rules/checkout.yml", "probe_success == 0", 0.0),
    AlertRule(
        "CheckoutDbConnectionsHigh", "checkout", "rules/checkout.yml", "pg_connections_ratio > 0.9", 30.0
    ),
    AlertRule("CheckoutPodRestarting", "checkout", "rules/checkout.yml", "rate(restarts[5m]) > 0", 0.0),
    AlertRule("DiskAlmostFull", "node", "rules/node.yml", "disk_free_ratio < 0.1", 300.0, {"severity": "P3"}),
    AlertRule("CertificateExpiring", "node", "rules/node.yml", "cert_expiry_days < 14", 0.0),
)
"""The sample's rule set: caught, a gap (expected, silent), noise, pre-existing and untested."""


def sample_run(
    hours: float | None = None, conditions: int = 1, resolution: float | None = None
) -> tuple[Debrief, SampleMetrics]:
    """The debrief of the sample run and the metrics source the report should query.

    ``hours`` stretches the incident (the story's proportions stay); ``conditions``
    is the number of abort conditions (each one series).
    """
    scale = 1.0 if hours is None else hours * 3600 / 136
    t0 = T0.timestamp()

    def at(seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds * scale)

    data: dict[str, Any] = {
        "metadata": {
            "title": "Checkout pool exhausted",
            "owner": "payments-sre",
            "expected_severity": "P2",
            "hypothesis": "Checkout sheds load and recovers once the pool is freed.",
        },
        "target": {"prometheus": SampleMetrics.url},
        "steady_state": [
            {"name": "up", "expr": 'min(up{job="checkout"})', "comparator": "==", "threshold": 1}
        ],
        "faults": [{"name": "pool", "kind": "inprocess.flag", "params": {"flag": "sample"}}],
        "abort_conditions": [
            {
                "name": "errors" if index == 0 else f"errors-{index}",
                "expr": "sum(rate(errors_total[1m]))"
                if index == 0
                else f'sum(rate(errors_total{{shard="{index}"}}[1m]))',
                "comparator": ">",
                "threshold": 8,
                "for": "5s",
            }
            for index in range(conditions)
        ],
        "detection": {"synthetic": ["CheckoutProbeFailing"], "infrastructure": ["CheckoutDbConnectionsHigh"]},
        "mitigation": {"sli": SLI, "comparator": ">=", "objective": 0.99, "confirm_for": "20s"},
        "gameday": {
            "mode": "gameday",
            "ttd_target": "1m",
            "ttm_target": "2m" if hours is None else f"{int(hours * 60)}m",
            "status_update_every": "2m" if hours is None else "30m",
        },
    }
    scenario = scenario_from_data(data, source="sample")
    events: list[JournalEvent] = []

    def event(moment: datetime, event_type: str, **fields: Any) -> None:
        events.append(
            JournalEvent(
                type=event_type,
                time=format_time(moment),
                offset=round((moment - START).total_seconds(), 6),
                **fields,
            )
        )

    event(
        START,
        "run_started",
        run_id=RUN_ID,
        version=1,
        scenario_title=scenario.metadata.title,
        scenario_file="scenarios/checkout-pool.yaml",
        scenario=scenario.model_dump(mode="json", by_alias=True),
        mode="gameday",
        pid=4242,
        pid_start_ticks=1,
        host="gameday-laptop",
        monotonic_start=0.0,
    )
    event(
        START + timedelta(seconds=1),
        "alert_rules",
        rules=[rule_fields(rule, scenario) for rule in SAMPLE_RULES],
        source="prometheus",
        error=None,
    )
    event(START + timedelta(seconds=2), "check", name="steady state up", ok=True, detail="value 1.0 (== 1)")
    event(START + timedelta(seconds=3), "check", name="abort condition errors", ok=True, detail="value 0.0")
    event(
        START + timedelta(seconds=8),
        "fault_planned",
        fault="pool",
        kind="inprocess.flag",
        targets=[{"id": "sample", "name": "checkout-db pool"}],
        summary="hold every connection of the checkout pool",
        revert_record={"flag": "sample"},
    )
    event(T0, "fault_injected", fault="pool", kind="inprocess.flag", revert_record={"flag": "sample"})
    event(
        at(20) + timedelta(seconds=0.4),
        "alert",
        source="prometheus",
        name="CheckoutProbeFailing",
        state="firing",
        since=format_time(at(20)),
        layer="synthetic",
    )
    event(
        at(20) + timedelta(seconds=1.3),
        "alert",
        source="alertmanager",
        name="CheckoutProbeFailing",
        state="firing",
        since=format_time(at(20) + timedelta(seconds=1)),
        layer="synthetic",
    )
    marks = [
        (30, "severity", "P2", "alice", None),
        (35, "ic", "alice", "alice", None),
        (60, "status", "checkout failing for 50% of users; @bob is on it", "alice", None),
        (90, "change", "terminated the idle connections", "bob", None),
        (125, "mitigated", "", "alice", None),
        (128, "cause", "a batch job leaked connections", "bob", None),
    ]
    if hours is not None:  # a long incident: an update every half hour, as a P2 demands
        marks += [(60 + k * 10, "status", UPDATE, "alice", None) for k in range(1, 7)]
    for seconds, mark, value, by, via in sorted(marks):
        fields = {"event": mark, "at": format_time(at(seconds)), "by": by, "value": value}
        if via:
            fields["via"] = via
        event(at(seconds) + timedelta(seconds=0.2), "responder", **fields)
    event(at(130), "faults_ending", reason="alice marked mitigated, confirmed by the SLI")
    event(at(130) + timedelta(seconds=0.1), "phase", phase="reverting")
    event(at(131), "fault_reverted", fault="pool", kind="inprocess.flag", attempts=1, by="runner")
    event(at(135), "check", name="steady state returned", ok=True, detail="every check holds after revert")
    event(at(136), "run_finished", status="completed", exit_code=0, detail="steady state returned")
    events.sort(key=lambda e: e["time"])

    def since(t: float) -> float:
        return (t - t0) / scale

    def sli(t: float) -> float:
        return 0.5 if 15 <= since(t) < 100 else 1.0

    def firing(t: float) -> float | None:
        return at(20).timestamp() if 20 <= since(t) < 105 else None

    values: dict[str, Callable[[float], float | None]] = {
        SLI: sli,
        REQUESTS: lambda t: 10.0,
        PROBE_ALERT: firing,
        'min(up{job="checkout"})': lambda t: 1.0,
    }

    def errors(shard: int) -> Callable[[float], float | None]:
        def value(t: float) -> float:
            wobble = 0.5 * math.sin(t / 60) if hours is not None else 0.0
            return (5.0 if 15 <= since(t) < 100 else 0.0) + shard * 0.1 + wobble

        return value

    for index, condition in enumerate(scenario.abort_conditions):
        values[condition.expr] = errors(index)
    alerts_firing: dict[str, Callable[[float], float | None]] = {
        "CheckoutProbeFailing": firing,
        "CheckoutPodRestarting": lambda t: at(45).timestamp() if 45 <= since(t) < 60 else None,
        "DiskAlmostFull": lambda t: t - 0.5,  # firing since long before the run
    }
    metrics = SampleMetrics(values, resolution, alerts_firing)
    measurement = measure(list(events), scenario, metrics)
    return (
        Debrief(
            run_id=RUN_ID,
            scenario=scenario,
            events=events,
            measurement=measurement,
            score=score(measurement, scenario),
            verdict=experiment_verdict(list(events)),
        ),
        metrics,
    )
