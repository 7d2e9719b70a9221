"""Chaos Toolkit tolerances, turned into our comparisons.

A tolerance says what a probe's value must be for the system to be healthy:
a plain value, a list of values, ``range``, ``regex``, ``jsonpath`` or another
``probe`` (a Python function). Ours are explicit: a PromQL value compared
with a threshold, or an HTTP answer's status, body and JSON. What has no
faithful equivalent raises ``ToleranceUnsupported`` with the reason, and the
caller refuses the activity by name.
"""

from __future__ import annotations

import re
from typing import Any

from chaosrunner.scenario.http_check import JSON_PATH
from chaosrunner.scenario.models import Comparator

PROMETHEUS_VALUE_PATH = re.compile(r"^\$\.data\.result\[(\d+|\*)\]\.value\[1\]$")
"""The one place in a Prometheus API answer a value lives: what a query check compares."""

MAX_STATUS_CODES = 100
OPPOSITE = {
    Comparator.EQ: Comparator.NE,
    Comparator.NE: Comparator.EQ,
    Comparator.LT: Comparator.GE,
    Comparator.GE: Comparator.LT,
    Comparator.LE: Comparator.GT,
    Comparator.GT: Comparator.LE,
}


class ToleranceUnsupported(Exception):
    """This tolerance has no faithful equivalent here; the message says why."""


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise ToleranceUnsupported(f"{what} is a boolean, not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ToleranceUnsupported(f"{what} {value!r} is not a number") from None


def query_bounds(tolerance: Any) -> list[tuple[str, Comparator, float]]:
    """The comparisons a Prometheus query's value must pass: [(suffix, comparator, threshold)].

    A ``range`` is two comparisons (at least the low end, at most the high
    end); a ``jsonpath`` must point at the query's value and expect a number.
    """
    if isinstance(tolerance, int | float) and not isinstance(tolerance, bool):
        return [("", Comparator.EQ, float(tolerance))]
    if not isinstance(tolerance, dict):
        raise ToleranceUnsupported(
            f"a {type(tolerance).__name__} tolerance on a Prometheus query (expected range or jsonpath)"
        )
    kind = tolerance.get("type")
    if kind == "range":
        bounds = tolerance.get("range")
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise ToleranceUnsupported("a range tolerance needs range: [low, high]")
        low, high = _number(bounds[0], "range low"), _number(bounds[1], "range high")
        return [("-min", Comparator.GE, low), ("-max", Comparator.LE, high)]
    if kind == "jsonpath":
        path = str(tolerance.get("path", ""))
        if not PROMETHEUS_VALUE_PATH.match(path.replace(" ", "")):
            raise ToleranceUnsupported(
                f"jsonpath {path!r} does not point at the query's value ($.data.result[0].value[1])"
            )
        if "expect" not in tolerance:
            raise ToleranceUnsupported("a jsonpath tolerance without 'expect' (it only tests presence)")
        expect = tolerance["expect"]
        if isinstance(expect, list):
            raise ToleranceUnsupported("a jsonpath tolerance expecting a list of values")
        return [("", Comparator.EQ, _number(expect, "expected value"))]
    if kind == "probe":
        raise ToleranceUnsupported(f"a probe tolerance (a Python function, {_function(tolerance)})")
    raise ToleranceUnsupported(f"a tolerance of type {kind!r} on a Prometheus query")


def abort_bounds(tolerance: Any) -> list[tuple[str, Comparator, float]]:
    """A safeguard's tolerance says what is fine; an abort condition says what is not: each bound inverted."""
    return [
        (suffix, OPPOSITE[comparator], threshold) for suffix, comparator, threshold in query_bounds(tolerance)
    ]


def http_expectations(tolerance: Any) -> dict[str, Any]:
    """An HTTP check's ``expect_*`` fields for a tolerance on an HTTP probe."""
    if tolerance is None:
        return {"expect_status": [200]}
    if isinstance(tolerance, int) and not isinstance(tolerance, bool):
        return {"expect_status": [tolerance]}
    if isinstance(tolerance, list) and tolerance and all(isinstance(code, int) for code in tolerance):
        return {"expect_status": list(tolerance)}
    if not isinstance(tolerance, dict):
        raise ToleranceUnsupported(f"a {type(tolerance).__name__} tolerance on an HTTP probe")
    kind = tolerance.get("type")
    target = str(tolerance.get("target", "body"))
    if kind == "range" and target in ("status", "body"):
        bounds = tolerance.get("range")
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise ToleranceUnsupported("a range tolerance needs range: [low, high]")
        low, high = int(_number(bounds[0], "range low")), int(_number(bounds[1], "range high"))
        if high - low + 1 > MAX_STATUS_CODES or target != "status":
            raise ToleranceUnsupported("a range tolerance on an HTTP probe other than a status range")
        return {"expect_status": list(range(low, high + 1))}
    if kind == "regex" and target == "body":
        return {
            "expect_status": list(range(200, 300)),
            "expect_body_regex": str(tolerance.get("pattern", "")),
        }
    if kind == "jsonpath" and target == "body":
        if "expect" not in tolerance or isinstance(tolerance["expect"], list | dict):
            raise ToleranceUnsupported("a jsonpath tolerance without one expected value")
        if not JSON_PATH.match(str(tolerance.get("path", ""))):
            raise ToleranceUnsupported(
                f"jsonpath {tolerance.get('path')!r}: we follow plain paths ($.status, $.items[0].name), "
                "not filters or wildcards"
            )
        return {
            "expect_status": list(range(200, 300)),
            "expect_json": {"path": str(tolerance.get("path", "")), "equals": tolerance["expect"]},
        }
    if kind == "probe":
        raise ToleranceUnsupported(f"a probe tolerance (a Python function, {_function(tolerance)})")
    raise ToleranceUnsupported(f"a {kind!r} tolerance on {target!r} of an HTTP probe")


def _function(tolerance: dict[str, Any]) -> str:
    provider = tolerance.get("provider") or {}
    return f"{provider.get('module', '?')}.{provider.get('func', '?')}"
