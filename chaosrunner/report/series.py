"""The Prometheus series a report shows: one panel per expression, fetched once.

A report charts the SLI, every abort condition and every steady-state check
over the whole run. Each is one range query, asked once when the report is
assembled (``report.model``); every renderer then reads these values, so the
HTML chart, the Markdown table and the JSON summaries cannot disagree and
Prometheus is not asked again per format.

The step is the finest that keeps a query under Prometheus' limit of 11,000
points per series (``query_range`` refuses more): 1 s - the rig's scrape
interval - up to about two and a half hours, then the next round step, so a
four-hour run is fetched at 2 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from chaosrunner.observe.metrics import Series
from chaosrunner.scenario.models import Comparator

PROMETHEUS_POINT_LIMIT = 11_000
POINT_BUDGET = 10_000
"""Points per series we aim for: a margin under the limit for the pre- and post-roll."""
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def choose_step(span_seconds: float) -> float:
    """The smallest round step (>= 1 s) that keeps ``span`` under the point budget."""
    for step in STEPS:
        if span_seconds / step <= POINT_BUDGET:
            return float(step)
    return float(math.ceil(span_seconds / POINT_BUDGET))


@dataclass(frozen=True)
class SeriesSummary:
    samples: int
    minimum: float | None
    maximum: float | None
    mean: float | None
    last: float | None
    outside_seconds: float | None  # time on the wrong side of the threshold (None: no threshold)


@dataclass
class Panel:
    """One expression over the run: the SLI, an abort condition or a steady-state check.

    ``comparator``/``threshold`` say what "good" is for the SLI and steady
    state, and what "abort" is for an abort condition; ``bad()`` folds that
    difference so callers need not.
    """

    role: str  # sli | abort_condition | steady_state
    name: str
    expr: str
    comparator: Comparator | None
    threshold: float | None
    step: float
    lines: list[Series] = field(default_factory=list)
    note: str | None = None  # why there is no data, when there is none

    @property
    def title(self) -> str:
        return {"sli": "SLI", "abort_condition": "Abort condition", "steady_state": "Steady state"}[
            self.role
        ] + ("" if self.role == "sli" else f" {self.name}")

    @property
    def rule(self) -> str:
        """``objective >= 0.99`` / ``aborts when > 0.5`` / ``healthy when == 1``."""
        if self.comparator is None or self.threshold is None:
            return ""
        words = {"sli": "objective", "abort_condition": "aborts when", "steady_state": "healthy when"}
        return f"{words[self.role]} {self.comparator.value} {self.threshold:g}"

    def bad(self, value: float) -> bool:
        if self.comparator is None or self.threshold is None or math.isnan(value):
            return False
        holds = self.comparator.holds(value, self.threshold)
        return holds if self.role == "abort_condition" else not holds

    def points(self) -> list[tuple[float, float]]:
        return [point for line in self.lines for point in line.points]

    def summary(self) -> SeriesSummary:
        values = [v for _, v in self.points() if not math.isnan(v)]
        if not values:
            return SeriesSummary(0, None, None, None, None, None)
        outside: float | None = None
        if self.comparator is not None and self.threshold is not None:
            # A sample stands for one step; with several lines, a step is bad when any line is.
            bad_times = {round(t / self.step) for line in self.lines for t, v in line.points if self.bad(v)}
            outside = len(bad_times) * self.step
        last_time = max(t for t, _ in self.points())
        return SeriesSummary(
            samples=len(values),
            minimum=min(values),
            maximum=max(values),
            mean=sum(values) / len(values),
            last=next(v for line in self.lines for t, v in line.points if t == last_time),
            outside_seconds=outside,
        )


def label_text(labels: dict[str, str]) -> str:
    shown = {key: value for key, value in labels.items() if key != "__name__"}
    return ", ".join(f"{key}={value}" for key, value in sorted(shown.items()))


def downsample(
    points: list[tuple[float, float]], start: float, end: float, buckets: int, step: float
) -> list[list[tuple[float, float]]]:
    """Reduce a line to at most ~2 points per pixel column, keeping every spike.

    Each column keeps its minimum and maximum in time order, so a one-sample
    error spike in a four-hour run still shows. A gap in the data (no sample
    for longer than two and a half steps or three columns, or a NaN) splits the line into
    segments, so the chart does not draw a value across a time nobody saw.
    """
    if not points or end <= start:
        return []
    width = (end - start) / buckets
    segments: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    column: list[tuple[float, float]] = []
    column_index: int | None = None
    last_time: float | None = None

    def flush() -> None:
        if not column:
            return
        low = min(column, key=lambda point: point[1])
        high = max(column, key=lambda point: point[1])
        current.extend(sorted({low, high}))
        column.clear()

    for t, v in sorted(points):
        if math.isnan(v) or (last_time is not None and t - last_time > max(3 * width, 2.5 * step)):
            flush()
            if current:
                segments.append(current)
            current = []
            column_index = None
            if math.isnan(v):
                last_time = None
                continue
        index = int((t - start) / width)
        if index != column_index:
            flush()
            column_index = index
        column.append((t, v))
        last_time = t
    flush()
    if current:
        segments.append(current)
    return segments
