"""Prometheus metrics for the sandbox's processes (prometheus_client, wrapped here).

The checkout service and the traffic agents expose metrics the way any
instrumented service does; this module is their one door to
prometheus_client, as observe.pushgateway is chaosrunner's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry()

    def counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Any:
        from prometheus_client import Counter

        return Counter(name, documentation, labels, registry=self.registry)

    def histogram(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Any:
        from prometheus_client import Histogram

        return Histogram(name, documentation, labels, buckets=LATENCY_BUCKETS, registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Any:
        from prometheus_client import Gauge

        return Gauge(name, documentation, labels, registry=self.registry)

    def gauge_function(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self.gauge(name, documentation).set_function(read)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
