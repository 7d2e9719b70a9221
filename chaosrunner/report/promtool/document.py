"""The promtool test file, from data already fetched: pure, so the choices are tested without services.

Two choices matter for a test that passes on today's run and keeps passing:

- **When to assert.** promtool evaluates the rules on its own grid from the
  first input sample; Prometheus evaluated them with another phase against
  scrapes that landed between grid points. The two agree up to about one
  interval, so an assertion is only made at an evaluation time where the
  alert's state was the same for ``MARGIN_INTERVALS`` intervals either side:
  the first such time after the alert fired (with every label set firing
  then), and the last such quiet time before it (no alert, not even
  pending). Both also wait for the rule's ``for`` and for the longest range
  the expression reads, so promtool has the history Prometheus had.
- **What an alert looks like.** promtool compares an alert's labels and
  annotations exactly. Labels come from Prometheus' own ``ALERTS`` series (the
  expression's labels plus the rule's); annotations from the rule file,
  with ``$labels`` templates filled in. Other templates (``$value``,
  ``humanize``...) depend on values at a moment promtool sees differently, so
  such an annotation is left out and the file says so at the top.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MARGIN_INTERVALS = 2
"""How many intervals either side an asserted state must hold (phase differences are under one)."""


@dataclass(frozen=True)
class AlertHistory:
    """One alert's states on the input grid: the label sets firing, and whether anything was active."""

    firing: list[frozenset[tuple[tuple[str, str], ...]]]  # per grid step: each firing alert's label pairs
    active: list[bool]  # per grid step: any alert of this name pending or firing


@dataclass(frozen=True)
class RuleToTest:
    name: str
    for_seconds: float
    lookback_seconds: float  # the longest range/offset its expression reads
    eval_interval: float  # its group's interval, else Prometheus' global one
    annotations: dict[str, str] = field(default_factory=dict)
    rule_labels: frozenset[str] = frozenset()  # labels the rule adds: not in $labels when templates render


@dataclass(frozen=True)
class Assertion:
    """An ``alert_rule_test`` entry: at ``eval_seconds`` after the first input sample, these alerts."""

    alert: str
    eval_seconds: float
    alerts: list[dict[str, str]]  # each alert's labels (alertname excluded); empty: none expected
    annotations: list[dict[str, str]]


def promtool_duration(seconds: float) -> str:
    """A Prometheus duration: whole seconds as ``90s``, otherwise milliseconds (no fractions allowed)."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def _stable(values: Sequence[Any], index: int, margin: int) -> bool:
    low, high = index - margin, index + margin
    if low < 0 or high >= len(values):
        return False
    return all(values[position] == values[index] for position in range(low, high + 1))


def choose_times(history: AlertHistory, rule: RuleToTest, step: float) -> tuple[int | None, int | None]:
    """Grid indices to assert at: (first stable firing, last stable quiet before it); None when there is none.

    Only indices on the rule's evaluation grid count: promtool looks at
    alerts where it evaluated them.
    """
    margin = max(1, math.ceil(MARGIN_INTERVALS * max(rule.eval_interval, step) / step))
    every = max(1, round(rule.eval_interval / step))
    settled = math.ceil((rule.lookback_seconds + rule.for_seconds) / step)
    firing_at = None
    for index in range(0, len(history.firing), every):
        if index >= settled + margin and history.firing[index] and _stable(history.firing, index, margin):
            firing_at = index
            break
    first_active = next((i for i, active in enumerate(history.active) if active), len(history.active))
    quiet_until = first_active if firing_at is None else min(first_active, firing_at)
    quiet_at = None
    for index in range(0, quiet_until, every):
        settled_quiet = index >= math.ceil(rule.lookback_seconds / step) and not history.active[index]
        if settled_quiet and _stable(history.active, index, margin):
            quiet_at = index
    return firing_at, quiet_at


_LABEL_TEMPLATE = re.compile(r"\{\{-?\s*(?:\$labels|\.Labels)\.([A-Za-z_][A-Za-z0-9_]*)\s*-?\}\}")


def render_annotation(template: str, labels: Mapping[str, str]) -> str | None:
    """The annotation with ``{{ $labels.x }}`` filled in; None when it uses any other template."""
    text = _LABEL_TEMPLATE.sub(lambda match: labels.get(match.group(1), ""), template)
    return None if "{{" in text else text


def unrenderable(rule: RuleToTest) -> list[str]:
    """The rule's annotations this export cannot fill in (they use more than ``$labels``)."""
    return sorted(name for name, text in rule.annotations.items() if render_annotation(text, {}) is None)


def assertions_for(history: AlertHistory, rule: RuleToTest, step: float) -> list[Assertion]:
    firing_at, quiet_at = choose_times(history, rule, step)
    found = []
    if quiet_at is not None:
        found.append(Assertion(rule.name, quiet_at * step, [], []))
    if firing_at is not None:
        label_sets = [dict(pairs) for pairs in sorted(history.firing[firing_at])]
        annotations = []
        for labels in label_sets:
            # Prometheus renders templates with the expression's labels, before the rule's are added.
            own = {key: value for key, value in labels.items() if key not in rule.rule_labels}
            rendered = {name: render_annotation(text, own) for name, text in rule.annotations.items()}
            annotations.append({name: text for name, text in rendered.items() if text is not None})
        found.append(Assertion(rule.name, firing_at * step, label_sets, annotations))
    return found


def promtool_document(
    *,
    rule_files: Sequence[str],
    evaluation_interval: float,
    step: float,
    input_series: Sequence[tuple[str, str]],
    assertions: Sequence[Assertion],
    name: str,
) -> dict[str, Any]:
    """The YAML document promtool reads (``promtool test rules FILE``)."""
    tests = []
    for assertion in assertions:
        expected = []
        for labels, texts in zip(assertion.alerts, assertion.annotations, strict=True):
            entry: dict[str, Any] = {"exp_labels": labels}
            if texts:
                entry["exp_annotations"] = texts
            expected.append(entry)
        tests.append(
            {
                "eval_time": promtool_duration(assertion.eval_seconds),
                "alertname": assertion.alert,
                "exp_alerts": expected,
            }
        )
    return {
        "rule_files": list(rule_files),
        "evaluation_interval": promtool_duration(evaluation_interval),
        "tests": [
            {
                "name": name,
                "interval": promtool_duration(step),
                "input_series": [{"series": series, "values": values} for series, values in input_series],
                "alert_rule_test": tests,
            }
        ],
    }


def series_text(labels: Mapping[str, str]) -> str:
    """A series as promtool's ``series:`` wants it: ``name{label="value",...}``, labels sorted."""
    from chaosrunner.report.promtool.selectors import quote

    name = labels.get("__name__", "")
    rest = ",".join(f"{key}={quote(value)}" for key, value in sorted(labels.items()) if key != "__name__")
    return f"{name}{{{rest}}}"
