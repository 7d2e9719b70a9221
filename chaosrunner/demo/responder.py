"""The demo's scripted responder: a small on-call team that follows the practice.

It is driven by what it sees, not by a clock: it waits for an alert to fire
in Prometheus, acknowledges it, declares a severity, names an incident
commander, posts status updates at the cadence in the full format (what is
affected, hypothesis, who does what, next update - with live figures from
Prometheus), lets one engineer investigate ``pg_stat_activity`` and terminate
the connections hogging the checkout role, waits until the success rate is
back, marks the incident mitigated, and only then declares a root cause.

Everything it does goes through ``gameday.marks.record`` - the same path as
``chaosrunner mark`` - so the scorer cannot tell it from people.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from chaosrunner.demo import database
from chaosrunner.engine.rundir import RunDir
from chaosrunner.gameday.marks import record
from chaosrunner.observe.metrics import MetricsSource

IC = "maria"
ENGINEER = "dev"
ONCALL = "maria"
SUCCESS = (
    'sum(rate(http_requests_total{job="demo-checkout",code="200"}[5s]))'
    ' / sum(rate(http_requests_total{job="demo-checkout"}[5s]))'
)
CONNECT_FAILURES = 'sum(rate(checkout_db_connect_failures_total{job="demo-checkout"}[10s]))'
FIRING = 'ALERTS{alertname=~"DemoCheckout.*", alertstate="firing"}'
HOGS = (
    "SELECT pid FROM pg_stat_activity WHERE usename = %s AND application_name <> 'checkout' "
    "AND state = 'idle' AND now() - backend_start > interval '3 seconds'"
)


@dataclass
class ResponderTimings:
    """Human reaction times, compressed for a three-minute demo."""

    acknowledge: float = 2.0
    declare: float = 2.0
    investigate: float = 8.0
    update_every: float = 18.0
    poll: float = 0.5


class ScriptedResponder:
    def __init__(
        self,
        run: RunDir,
        metrics: MetricsSource,
        database_dsn: str,
        role: str,
        timings: ResponderTimings | None = None,
    ) -> None:
        self.run = run
        self.metrics = metrics
        self.database_dsn = database_dsn
        self.role = role
        self.timings = timings or ResponderTimings()
        self.stop = threading.Event()
        self.log: list[str] = []
        self._thread = threading.Thread(target=self._play, name="scripted-responder", daemon=True)
        self._last_update = 0.0

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=5)

    def _mark(self, event: str, value: str | None = None, *, by: str, via: str | None = None) -> None:
        record(self.run, event, value, by=by, via=via)
        self.log.append(f"{by}: {event} {value or via or ''}".strip())

    def _wait(self, seconds: float) -> bool:
        return not self.stop.wait(seconds)

    def _value(self, expr: str) -> float | None:
        try:
            values = self.metrics.instant(expr, timeout=1.0).finite()
        except Exception:  # a responder keeps going when a dashboard hiccups
            return None
        return max(values) if values else None

    def _firing_alert(self) -> dict[str, str] | None:
        try:
            sample = self.metrics.instant(FIRING, timeout=1.0)
        except Exception:
            return None
        return dict(sample.labels[0]) if sample.labels else None

    def _status(self, *, mitigating: bool) -> None:
        success = self._value(SUCCESS)
        refused = self._value(CONNECT_FAILURES)
        failing = f"{100 * (1 - success):.0f}%" if success is not None else "an unknown share"
        doing = (
            f"@{ENGINEER} is terminating the idle connections hogging {self.role}"
            if mitigating
            else f"@{ENGINEER} is checking pg_stat_activity for {self.role}"
        )
        self._mark(
            "status",
            f"Status update: checkout failing for {failing} of requests ("
            f"{f'{refused:.0f}' if refused is not None else '?'} database connections refused a second). "
            "Hypothesis: the database connections of role "
            f"{self.role} are exhausted, so the checkout pool cannot reconnect. {doing}. "
            f"Next update in {self.timings.update_every:g}s.",
            by=IC,
        )
        self._last_update = time.monotonic()

    def _play(self) -> None:
        alert = None
        while alert is None:
            if not self._wait(self.timings.poll):
                return
            alert = self._firing_alert()
        if not self._wait(self.timings.acknowledge):
            return
        self._mark("detected", by=ONCALL, via=alert.get("layer", "infrastructure"))
        if not self._wait(self.timings.declare):
            return
        self._mark("severity", "P1", by=IC)
        self._mark("ic", IC, by=IC)
        self._status(mitigating=False)
        if not self._wait(self.timings.investigate):
            return
        hogs = self._find_hogs()
        self._mark(
            "note", f"{len(hogs)} idle connections from another client hold {self.role}'s slots", by=ENGINEER
        )
        self._status(mitigating=True)
        terminated = self._terminate(hogs)
        self._mark("change", f"terminated {terminated} idle connections hogging {self.role}", by=ENGINEER)
        recovered_since = None
        while True:
            if not self._wait(self.timings.poll):
                return
            success = self._value(SUCCESS)
            if success is not None and success >= 0.99:
                recovered_since = recovered_since or time.monotonic()
                if time.monotonic() - recovered_since >= 3:
                    break
            else:
                recovered_since = None
                if time.monotonic() - self._last_update >= self.timings.update_every:
                    self._status(mitigating=True)
        self._mark("mitigated", by=IC)
        if self._wait(2.0):
            self._mark(
                "cause",
                "a client outside checkout opened connections as the checkout role and kept them "
                "idle: a connection leak that exhausted the role's CONNECTION LIMIT",
                by=ENGINEER,
            )

    def _find_hogs(self) -> list[int]:
        connection = database.connect(self.database_dsn, "responder-dev", 5)
        try:
            return [int(row[0]) for row in database.execute(connection, HOGS, (self.role,))]
        finally:
            database.close(connection)

    def _terminate(self, pids: list[int]) -> int:
        if not pids:
            return 0
        connection = database.connect(self.database_dsn, "responder-dev", 5)
        try:
            rows: list[Any] = database.execute(
                connection,
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM unnest(%s::int[]) AS pid",
                (pids,),
            )
            return int(rows[0][0])
        finally:
            database.close(connection)
