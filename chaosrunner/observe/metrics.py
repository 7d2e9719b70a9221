"""The engine's view of Prometheus: a small interface and its value types.

The engine asks four things of monitoring: "what is this expression now?",
"what was it over this window?", "which alerts are active?" and "which alert
rules are loaded?". Keeping that
behind ``MetricsSource`` means the engine never speaks HTTP, the adapter
(``observe.prometheus``) is the only place that does, and unit tests can swap
in ``observe.scripted`` - a fake at our own seam, never the only test.

Query results are reduced to one number per expression on purpose: abort
conditions, steady-state checks and SLIs are written to return a single
series; when they return several, callers choose the reduction that errs on
the safe side (an abort holds if *any* series breaches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Sample:
    """One instant-query answer: every series' value (empty means no data)."""

    values: tuple[float, ...] = ()
    labels: tuple[dict[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not [value for value in self.values if not math.isnan(value)]

    def finite(self) -> list[float]:
        return [value for value in self.values if not math.isnan(value)]


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]] = field(default_factory=list)  # (unix time, value)


@dataclass(frozen=True)
class ActiveAlert:
    """An alert as Prometheus reports it; ``active_at`` is when it went pending."""

    name: str
    state: str  # pending | firing
    active_at: datetime
    labels: dict[str, str]


@dataclass(frozen=True)
class AlertRule:
    """An alerting rule as Prometheus has it loaded (``/api/v1/rules?type=alert``).

    Every rule, not only the ones a scenario expects: detection coverage needs
    the alerts nobody declared (noise) and the ones that never fire (untested).
    """

    name: str
    group: str
    file: str | None
    expr: str
    for_seconds: float
    labels: dict[str, str] = field(default_factory=dict)


class MetricsSource(Protocol):
    """What the engine needs from Prometheus. Errors raise ServiceUnreachable."""

    url: str

    def instant(self, expr: str, timeout: float) -> Sample: ...

    def range(self, expr: str, start: float, end: float, step: float) -> list[Series]: ...

    def alerts(self) -> list[ActiveAlert]: ...

    def alert_rules(self) -> list[AlertRule]: ...
