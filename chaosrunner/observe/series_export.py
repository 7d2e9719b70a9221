"""What exporting a run as a promtool test needs from Prometheus, beyond the engine's four questions.

``chaosrunner export-promtool`` replays a run's detection offline: it needs
Prometheus' own clocks (the global scrape and evaluation intervals, so the
exported series have the resolution the rules saw), the alerting rules with
their groups' files and intervals when the run's journal has no
``alert_rules`` event (runs from before it was journaled), and a cheap count
of how many series a selector matched over the window, so an export is
bounded *before* it fetches anything large.

Plain HTTP with the standard library (like ``observe.alertmanager``): one GET
per question, its body read up to a bound, every failure mapped to
``ServiceUnreachable`` or - a PromQL mistake Prometheus refuses -
``QueryRejected``. Range data itself goes through ``observe.prometheus``
(``PrometheusHTTP.range``), the one adapter for queries.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from chaosrunner.durations import parse_duration
from chaosrunner.errors import QueryRejected, ServiceUnreachable

MAX_BODY = 32 * 1024 * 1024
"""A config or rules answer larger than this is not one we want to hold in memory."""


@dataclass(frozen=True)
class Intervals:
    """Prometheus' global intervals, in seconds: how often it scrapes and evaluates rules by default."""

    scrape_seconds: float
    evaluation_seconds: float


@dataclass(frozen=True)
class RuleInGroup:
    """An alerting rule as ``/api/v1/rules`` lists it, with its group's file and interval."""

    name: str
    group: str
    file: str | None
    expr: str
    for_seconds: float
    interval_seconds: float | None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def _get(url: str, path: str, params: dict[str, str] | None = None, timeout: float = 10.0) -> Any:
    """The ``data`` of one Prometheus API answer."""
    address = f"{url.rstrip('/')}{path}"
    if params:
        address += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(address, timeout=timeout) as response:
            body = response.read(MAX_BODY + 1)
    except urllib.error.HTTPError as error:
        text = error.read(2000).decode("utf-8", "replace")
        if error.code in (400, 422):
            try:
                reason = json.loads(text).get("error", text)
            except ValueError:
                reason = text
            raise QueryRejected(f"Prometheus rejected {path}: {reason}") from error
        raise ServiceUnreachable(f"Prometheus at {url} answered {path} with HTTP {error.code}") from error
    except OSError as error:
        raise ServiceUnreachable(f"Prometheus at {url} did not answer {path}: {error}") from error
    if len(body) > MAX_BODY:
        raise ServiceUnreachable(f"Prometheus at {url} answered {path} with more than {MAX_BODY} bytes")
    try:
        payload = json.loads(body)
        return payload["data"]
    except (ValueError, KeyError, TypeError) as error:
        raise ServiceUnreachable(
            f"Prometheus at {url} answered {path} with something not its API: {error}"
        ) from error


def intervals(url: str) -> Intervals:
    """The global ``scrape_interval`` and ``evaluation_interval`` of the running configuration."""
    import yaml

    data = _get(url, "/api/v1/status/config")
    try:
        config = yaml.safe_load(data["yaml"]) or {}
        settings = config.get("global") or {}
        scrape = parse_duration(str(settings.get("scrape_interval", "1m"))).total_seconds()
        evaluation = parse_duration(str(settings.get("evaluation_interval", "1m"))).total_seconds()
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as error:
        raise ServiceUnreachable(
            f"Prometheus at {url} returned a configuration we cannot read: {error}"
        ) from error
    return Intervals(scrape_seconds=scrape, evaluation_seconds=evaluation)


def alerting_rules(url: str) -> list[RuleInGroup]:
    """Every alerting rule loaded now, with its group's file and interval (``/api/v1/rules?type=alert``)."""
    groups = _get(url, "/api/v1/rules", {"type": "alert"})
    rules = []
    for group in groups.get("groups", []):
        interval = group.get("interval")
        for rule in group.get("rules", []):
            if rule.get("type", "alerting") != "alerting":
                continue
            rules.append(
                RuleInGroup(
                    name=str(rule["name"]),
                    group=str(group.get("name", "")),
                    file=group.get("file") or None,
                    expr=str(rule.get("query", "")),
                    for_seconds=float(rule.get("duration") or 0.0),
                    interval_seconds=float(interval) if interval else None,
                    labels={str(k): str(v) for k, v in (rule.get("labels") or {}).items()},
                    annotations={str(k): str(v) for k, v in (rule.get("annotations") or {}).items()},
                )
            )
    return rules


def series_count(url: str, selector: str, end: float, window_seconds: float) -> int:
    """How many distinct series ``selector`` matched at any time in the ``window_seconds`` before ``end``.

    One instant query that returns a single number, so the export can refuse
    a selector that would bring back a million series before fetching them.
    """
    window = max(1, int(window_seconds + 0.999))
    expr = f"count(last_over_time({selector}[{window}s]))"
    result = _get(url, "/api/v1/query", {"query": expr, "time": f"{end:.3f}"})
    vector = result.get("result") or []
    return int(float(vector[0]["value"][1])) if vector else 0
