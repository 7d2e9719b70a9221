"""A scripted MetricsSource: the fake at our own seam, for fast engine tests.

Tests set what each expression returns (a value, no data, or an outage) and
the engine cannot tell the difference from Prometheus - except that this one
answers instantly and deterministically. It is shipped in the package, as
httpx ships its mock transport, so every layer's tests use the same fake.
It is never the only test of anything: the engine's integration tests run
against a real Prometheus.
"""

from __future__ import annotations

import threading

from chaosrunner.errors import ServiceUnreachable
from chaosrunner.observe.metrics import ActiveAlert, AlertRule, Sample, Series


class ScriptedMetrics:
    def __init__(self, values: dict[str, float | None] | None = None) -> None:
        self.url = "scripted://"
        self._values: dict[str, float | None] = dict(values or {})
        self._down = False
        self._lock = threading.Lock()
        self.queries: list[str] = []
        self.rules: list[AlertRule] = []

    def set(self, expr: str, value: float | None) -> None:
        """``None`` means the expression returns no data."""
        with self._lock:
            self._values[expr] = value

    def outage(self, down: bool = True) -> None:
        with self._lock:
            self._down = down

    def instant(self, expr: str, timeout: float = 5.0) -> Sample:
        with self._lock:
            self.queries.append(expr)
            if self._down:
                raise ServiceUnreachable("scripted Prometheus outage")
            value = self._values.get(expr)
        return Sample() if value is None else Sample(values=(value,), labels=({},))

    def range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        return []

    def alerts(self) -> list[ActiveAlert]:
        return []

    def alert_rules(self) -> list[AlertRule]:
        with self._lock:
            if self._down:
                raise ServiceUnreachable("scripted Prometheus outage")
            return list(self.rules)
