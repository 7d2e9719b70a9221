"""Impact in numbers, each with how it was derived - or why it cannot be.

A postmortem's Impact section grounds the discussion in what users saw:
how long, how many requests failed, how much error budget went. A gameday
report must not invent those numbers, so every figure here is either
computed from data the run has - the journal for durations, the SLI's range
samples for the rest - with the derivation spelt out next to it, or shown
as "not measurable" with the reason (no SLI, an SLI that is not a success
ratio, no request rate in it).

The derivations (also in docs/report.md):

faults in place
    first ``fault_injected`` (t0) to the last ``fault_reverted``, from the
    journal.
users affected
    the time the SLI was outside its objective between t0 and the end of the
    run: samples on the wrong side times the query step.
error budget burned
    for a success-ratio SLI (compared with ``>=``/``>``, objective between 0
    and 1, values within [0, 1]): the integral of the bad fraction
    ``1 - SLI`` over t0 to the end of the run, in seconds of full outage;
    and that as a share of the budget a 30-day SLO window has at the
    objective, ``(1 - objective) x 30 d``. The 30-day window is a
    convention, named where it is used.
failed requests
    when the SLI is written as ``1 - (errors / requests)`` or
    ``good / requests`` with a ``rate()`` of requests as the denominator:
    the denominator is queried on its own, and failed requests are the sum
    over samples of ``(1 - SLI) x requests/s x step``. Good to the smoothing
    of the ``rate()`` window.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from chaosrunner.observe.metrics import Series
from chaosrunner.report import fmt
from chaosrunner.report.series import Panel
from chaosrunner.scenario.models import Comparator

SLO_WINDOW_DAYS = 30
NOT_MEASURABLE = "not measurable"


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: float | None  # None: not measurable
    unit: str  # seconds | requests | ratio | value
    shown: str  # what a person reads: "4m12s", "1,204", "not measurable"
    how: str  # the derivation, or the reason it is not measurable


@dataclass
class Impact:
    figures: list[Figure] = field(default_factory=list)

    def get(self, key: str) -> Figure | None:
        return next((figure for figure in self.figures if figure.key == key), None)


# -- finding the request rate in an SLI ---------------------------------------------------------

_ONE_MINUS = re.compile(r"^1(?:\.0*)?\s*-\s*")
_OPERATORS = set("+-*/%^")
_KEYWORDS = re.compile(r"\b(or|and|unless|atan2)\b")


def _strip_parens(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _matching_close(text) == len(text) - 1:
        text = text[1:-1].strip()
    return text


def _outside_quotes(text: str) -> Iterator[tuple[int, str, int]]:
    """(index, char, nesting depth before it) for every char outside string literals."""
    depth = 0
    quote: str | None = None
    for index, char in enumerate(text):
        if quote:
            if char == quote and text[index - 1] != "\\":
                quote = None
            continue
        if char in "\"'`":
            quote = char
            continue
        yield index, char, depth
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1


def _matching_close(text: str) -> int:
    """Index of the bracket that closes the one ``text`` opens with, -1 if none."""
    for index, char, depth in _outside_quotes(text):
        if char in ")]}" and depth == 1:
            return index
    return -1


def _top_level_operators(text: str) -> list[tuple[int, str]]:
    """(index, operator) of every arithmetic operator outside (), [], {} and quotes."""
    return [
        (index, char) for index, char, depth in _outside_quotes(text) if depth == 0 and char in _OPERATORS
    ]


def _top_level_text(text: str) -> str:
    """The expression with everything nested blanked out, to look for keywords."""
    out = []
    depth = 0
    for char in text:
        if char in "([{":
            depth += 1
        out.append(char if depth == 0 else " ")
        if char in ")]}":
            depth -= 1
    return "".join(out)


def request_rate_expr(sli: str) -> tuple[str | None, str]:
    """(requests-per-second expression, explanation) from an SLI written as a ratio.

    Accepts ``1 - (errors / requests)`` and ``good / requests`` where the
    denominator is a ``rate()``/``irate()``; anything else is not assumed.
    """
    text = _strip_parens(" ".join(sli.split()))
    match = _ONE_MINUS.match(text)
    if match:
        text = _strip_parens(text[match.end() :])
    operators = _top_level_operators(text)
    if [op for _, op in operators] != ["/"] or _KEYWORDS.search(_top_level_text(text)):
        return None, "the SLI is not written as a ratio 1 - (errors / requests) or good / requests"
    index = operators[0][0]
    denominator = text[index + 1 :].strip()
    if not re.search(r"\b(i?rate)\s*\(", denominator):
        return None, "the SLI's denominator is not a rate() of requests"
    return denominator, "the SLI's denominator, requests per second"


# -- the figures ----------------------------------------------------------------------------------


def _in_window(points: list[tuple[float, float]], start: float, end: float) -> list[tuple[float, float]]:
    return sorted((t, v) for t, v in points if start <= t <= end and not math.isnan(v))


def _worst_by_time(panel: Panel, start: float, end: float) -> list[tuple[float, float]]:
    """One SLI value per step: the worst line's, if the SLI returns several series."""
    by_time: dict[int, tuple[float, float]] = {}
    for t, v in _in_window(panel.points(), start, end):
        key = round(t / panel.step)
        if key not in by_time or panel.bad(v) or v < by_time[key][1]:
            by_time[key] = (t, v)
    return sorted(by_time.values())


def is_success_ratio(panel: Panel, values: list[float]) -> tuple[bool, str]:
    if panel.comparator not in (Comparator.GE, Comparator.GT):
        return False, "the SLI is not compared with >= or >: it is not a success ratio"
    if panel.threshold is None or not 0 < panel.threshold < 1:
        return False, "the SLI's objective is not between 0 and 1: it is not a success ratio"
    if any(v < 0 or v > 1 for v in values):
        return False, "the SLI has values outside [0, 1]: it is not a success ratio"
    return True, ""


def faults_in_place(windows: list[tuple[datetime, datetime | None]], run_end: datetime | None) -> Figure:
    label = "Faults in place"
    if not windows:
        return Figure("faults_in_place", label, None, "seconds", NOT_MEASURABLE, "no fault was injected")
    start = min(begin for begin, _ in windows)
    ends = [end or run_end for _, end in windows]
    if any(end is None for end in ends):
        return Figure(
            "faults_in_place", label, None, "seconds", NOT_MEASURABLE, "the journal has no end for a fault"
        )
    end = max(e for e in ends if e is not None)
    seconds = (end - start).total_seconds()
    return Figure(
        "faults_in_place",
        label,
        round(seconds, 3),
        "seconds",
        fmt.duration(seconds),
        f"first fault injected (t0, {fmt.clock(start)}) to the last reverted ({fmt.clock(end)}), "
        "from the journal",
    )


def impact(
    sli: Panel | None,
    request_rate: list[Series] | None,
    request_rate_note: str,
    fault_windows: list[tuple[datetime, datetime | None]],
    t0: datetime | None,
    run_end: datetime | None,
) -> Impact:
    figures = [faults_in_place(fault_windows, run_end)]
    keys = ("users_affected", "worst_sli", "error_budget", "failed_requests")
    labels = {
        "users_affected": "Users affected (SLI outside its objective)",
        "worst_sli": "Worst SLI",
        "error_budget": "Error budget burned",
        "failed_requests": "Failed requests",
    }
    units = {
        "users_affected": "seconds",
        "worst_sli": "value",
        "error_budget": "seconds",
        "failed_requests": "requests",
    }

    def missing(reason: str) -> list[Figure]:
        return [Figure(key, labels[key], None, units[key], NOT_MEASURABLE, reason) for key in keys]

    if sli is None:
        return Impact([*figures, *missing("the scenario defines no SLI (mitigation.sli)")])
    if t0 is None or run_end is None:
        return Impact([*figures, *missing("no fault was injected")])
    if not sli.points():
        return Impact([*figures, *missing(sli.note or "Prometheus returned no SLI samples")])
    start, end = t0.timestamp(), run_end.timestamp()
    samples = _worst_by_time(sli, start, end)
    if not samples:
        return Impact([*figures, *missing("no SLI samples between t0 and the end of the run")])
    step = sli.step
    window = f"between t0 and the end of the run, from {len(samples)} samples {fmt.duration(step)} apart"
    bad = [(t, v) for t, v in samples if sli.bad(v)]
    affected = len(bad) * step
    figures.append(
        Figure(
            "users_affected",
            labels["users_affected"],
            affected,
            "seconds",
            fmt.duration(affected) if affected else "0s",
            f"samples with the SLI outside {sli.rule} x the step, {window}"
            + (
                f"; first at {fmt.clock(_at(bad[0][0]))}, last at {fmt.clock(_at(bad[-1][0]))}" if bad else ""
            ),
        )
    )
    worst_t, worst = min(samples, key=lambda point: point[1])
    figures.append(
        Figure(
            "worst_sli",
            labels["worst_sli"],
            worst,
            "value",
            fmt.number(worst),
            f"lowest SLI sample, at {fmt.clock(_at(worst_t))} ({sli.rule})",
        )
    )
    ratio, why_not = is_success_ratio(sli, [v for _, v in samples])
    if not ratio:
        figures.append(
            Figure("error_budget", labels["error_budget"], None, "seconds", NOT_MEASURABLE, why_not)
        )
        figures.append(
            Figure("failed_requests", labels["failed_requests"], None, "requests", NOT_MEASURABLE, why_not)
        )
        return Impact(figures)
    assert sli.threshold is not None
    burned = sum(max(0.0, 1.0 - v) for _, v in samples) * step
    budget = (1 - sli.threshold) * SLO_WINDOW_DAYS * 86400
    figures.append(
        Figure(
            "error_budget",
            labels["error_budget"],
            round(burned, 3),
            "seconds",
            f"{fmt.duration(burned)} of full outage = {fmt.percent(burned / budget)} of a "
            f"{SLO_WINDOW_DAYS}-day budget",
            f"sum of (1 - SLI) x step {window}; a {SLO_WINDOW_DAYS}-day SLO window at the "
            f"{fmt.percent(sli.threshold)} objective allows {fmt.duration(budget)} of full outage",
        )
    )
    figures.append(_failed_requests(samples, step, request_rate, request_rate_note, window))
    return Impact(figures)


def _failed_requests(
    samples: list[tuple[float, float]],
    step: float,
    request_rate: list[Series] | None,
    request_rate_note: str,
    window: str,
) -> Figure:
    label = "Failed requests"
    if request_rate is None:
        return Figure("failed_requests", label, None, "requests", NOT_MEASURABLE, request_rate_note)
    rate_by_time: dict[int, float] = {}
    for series in request_rate:  # several series (by instance, by code): requests add up
        for t, v in series.points:
            if not math.isnan(v):
                rate_by_time[round(t / step)] = rate_by_time.get(round(t / step), 0.0) + v
    if not rate_by_time:
        return Figure(
            "failed_requests",
            label,
            None,
            "requests",
            NOT_MEASURABLE,
            "Prometheus returned no samples for the request rate",
        )
    failed = 0.0
    requests = 0.0
    for t, v in samples:
        rate = rate_by_time.get(round(t / step))
        if rate is None:
            continue
        failed += max(0.0, 1.0 - v) * rate * step
        requests += rate * step
    return Figure(
        "failed_requests",
        label,
        round(failed, 1),
        "requests",
        f"{fmt.count(failed)} of {fmt.count(requests)}",
        f"sum of (1 - SLI) x requests/s x step {window}; requests/s is {request_rate_note}",
    )


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
