"""``chaosrunner export-promtool RUN_ID``: the detection a run proved, as a promtool rule test.

From the run's journal: its window (``run_started`` to ``run_finished``),
its Prometheus, and the alert rules monitoring had loaded (the
``alert_rules`` event; a run from before that event was journaled falls back
to the rules Prometheus has loaded now, and the file says so). From that
Prometheus: the samples every exported rule's expression read, at scrape
resolution over the window stretched back by the expression's longest range
(``input_series``), and the rule's own ``ALERTS`` series, which say which
alerts fired, with which labels, and when (``alert_rule_test``).

The result passes ``promtool test rules`` against the team's real rule files
(``rule_files``: the files Prometheus reported, or ``--rule-file``), so the
detection a gameday proved stays proven in CI: change a threshold so the
alert would no longer fire, and the test fails.

Bounded on purpose: a rule whose selector matches a million series would
otherwise make a file nobody can read, so the series count is asked first
(``--max-series``) and the grid size checked before fetching
(``--max-samples``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from chaosrunner.engine.journal import JournalEvent, format_time
from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import UsageError
from chaosrunner.observe.metrics import MetricsSource
from chaosrunner.report.promtool.document import (
    AlertHistory,
    Assertion,
    RuleToTest,
    assertions_for,
    promtool_document,
    series_text,
    unrenderable,
)
from chaosrunner.report.promtool.notation import compress, steps_from_samples
from chaosrunner.report.promtool.rule_files import FileRule, read_rule_files
from chaosrunner.report.promtool.selectors import quote, selectors_of

DEFAULT_MAX_SERIES = 500
DEFAULT_MAX_SAMPLES = 500_000
LEAD_IN_INTERVALS = 6
"""Intervals of data before the run: enough for a quiet assertion with its margin either side."""


@dataclass(frozen=True)
class RunRule:
    """An alert rule as the run knew it (journal or Prometheus)."""

    name: str
    file: str | None
    expr: str
    for_seconds: float


@dataclass
class Export:
    text: str  # the YAML promtool reads, comments first
    alerts: list[str]  # the alerts it tests
    series: int
    samples: int
    notes: list[str] = field(default_factory=list)


def _window(events: Sequence[JournalEvent], run_id: str) -> tuple[float, float]:
    started = next((event for event in events if event.type == "run_started"), None)
    if started is None:
        raise UsageError(f"run {run_id!r} has no run_started event: its journal is damaged")
    finished = next((event for event in events if event.type == "run_finished"), None)
    if finished is None:
        raise UsageError(f"run {run_id!r} has not finished (no run_finished event): export it when it has")
    return started.time.timestamp(), finished.time.timestamp()


def _rules_of_run(events: Sequence[JournalEvent], url: str) -> tuple[list[RunRule], str]:
    """The run's alert rules and a sentence saying where they came from."""
    journaled = next((event for event in events if event.type == "alert_rules"), None)
    if journaled is not None and journaled.get("source") == "prometheus":
        rules = [
            RunRule(
                str(rule["name"]), rule.get("file"), str(rule["expr"]), float(rule.get("for_seconds") or 0)
            )
            for rule in journaled.get("rules", [])
        ]
        return rules, "alert rules: the run's journal (alert_rules event at preflight)"
    from chaosrunner.observe.series_export import alerting_rules

    why = "the journal has no alert_rules event" if journaled is None else "the run could not read them"
    rules = [RunRule(rule.name, rule.file, rule.expr, rule.for_seconds) for rule in alerting_rules(url)]
    return rules, f"alert rules: fetched from {url} at export time ({why}); they may have changed since"


def _alert_names_fired(metrics: MetricsSource, start: float, end: float, step: float) -> set[str]:
    series = metrics.range('ALERTS{alertstate="firing"}', start, end, step)
    return {item.labels.get("alertname", "") for item in series}


def _history(
    metrics: MetricsSource, name: str, start: float, end: float, step: float, count: int
) -> AlertHistory:
    firing: list[set[tuple[tuple[str, str], ...]]] = [set() for _ in range(count)]
    active = [False] * count
    for item in metrics.range(f"ALERTS{{alertname={quote(name)}}}", start, end, step):
        labels = tuple(
            sorted((k, v) for k, v in item.labels.items() if k not in ("__name__", "alertname", "alertstate"))
        )
        state = item.labels.get("alertstate")
        for at, _value in item.points:
            index = round((at - start) / step)
            if 0 <= index < count:
                active[index] = True
                if state == "firing":
                    firing[index].add(labels)
    return AlertHistory(firing=[frozenset(labels) for labels in firing], active=active)


@dataclass(frozen=True)
class Grid:
    """The input's time grid: ``count`` steps of ``step`` seconds from ``start`` (time 0 in promtool)."""

    start: float
    step: float
    count: int

    @property
    def end(self) -> float:
        return self.start + (self.count - 1) * self.step


def _alerts_to_export(
    wanted: Sequence[str], by_name: dict[str, list[RunRule]], fired: Callable[[], set[str]], run_id: str
) -> list[str]:
    """The ``--alert`` names (each must be a rule of the run), else every rule that fired."""
    names = list(dict.fromkeys(wanted))
    unknown = [name for name in names if name not in by_name]
    if unknown:
        known = ", ".join(sorted(by_name)) or "none"
        raise UsageError(
            f"--alert {', '.join(unknown)}: not an alert rule of run {run_id} (its rules: {known})"
        )
    if names:
        return names
    happened = fired()
    names = sorted(name for name in by_name if name in happened)
    if not names:
        raise UsageError(
            f"no alert rule fired during run {run_id}: "
            "name one with --alert to export a test that it stays quiet"
        )
    return names


def _rules_to_test(
    names: Sequence[str], by_name: dict[str, list[RunRule]], files: Sequence[str], global_eval: float
) -> tuple[list[RuleToTest], dict[str, float]]:
    """Each alert as promtool will evaluate it, and every selector the alerts read with its lookback."""
    in_files = read_rule_files([Path(path) for path in files])
    selectors: dict[str, float] = {}
    tests = []
    for name in names:
        file_rules = [rule for rule in in_files if rule.name == name]
        if not file_rules:
            raise UsageError(f"alert {name}: in none of the rule files ({', '.join(files)})")
        lookback = 0.0
        for rule in by_name[name]:
            for selector in selectors_of(rule.expr, f"rule {name}"):
                selectors[selector.text] = max(selectors.get(selector.text, 0.0), selector.lookback_seconds)
                lookback = max(lookback, selector.lookback_seconds)
        tests.append(_rule_to_test(name, by_name[name], file_rules, lookback, global_eval))
    return tests, selectors


def _check_bounds(counts: dict[str, int], grid: Grid, max_series: int, max_samples: int) -> None:
    total = sum(counts.values())
    if total > max_series:
        worst = max(counts, key=lambda text: counts[text])
        raise UsageError(
            f"the rules read {total} series (most: {worst} with {counts[worst]}), "
            f"more than --max-series {max_series}"
        )
    if total * grid.count > max_samples:
        raise UsageError(
            f"{total} series x {grid.count} steps of {grid.step:g}s = {total * grid.count} samples, "
            f"more than --max-samples {max_samples} (raise it, or export fewer alerts with --alert)"
        )


def _input_series(
    metrics: MetricsSource, selectors: Sequence[str], grid: Grid, max_series: int
) -> dict[str, str]:
    found: dict[str, str] = {}
    for text in selectors:
        for item in metrics.range(text, grid.start, grid.end, grid.step):
            found[series_text(item.labels)] = compress(
                steps_from_samples(item.points, grid.start, grid.step, grid.count)
            )
    if len(found) > max_series:  # series appeared between the count and the fetch
        raise UsageError(f"the rules read {len(found)} series, more than --max-series {max_series}")
    return found


def _assertions(
    metrics: MetricsSource, tests: Sequence[RuleToTest], grid: Grid
) -> tuple[list[Assertion], list[str]]:
    assertions: list[Assertion] = []
    notes: list[str] = []
    for rule in tests:
        history = _history(metrics, rule.name, grid.start, grid.end, grid.step, grid.count)
        found = assertions_for(history, rule, grid.step)
        if any(history.firing) and not any(assertion.alerts for assertion in found):
            notes.append(
                f"{rule.name} fired, but never for long enough to assert safely; no firing test for it"
            )
        if not found:
            notes.append(f"{rule.name}: no moment steady enough to assert on; no test for it")
        notes.extend(
            f"{rule.name}: annotation {annotation!r} uses templates beyond $labels; left out of "
            "exp_annotations - promtool compares them, so fill it in by hand"
            for annotation in unrenderable(rule)
        )
        assertions.extend(found)
    assertions.sort(key=lambda assertion: (assertion.eval_seconds, assertion.alert))
    return assertions, notes


def export_run(
    run_id: str,
    *,
    rule_files: Sequence[str] = (),
    alerts: Sequence[str] = (),
    max_series: int = DEFAULT_MAX_SERIES,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    metrics: MetricsSource | None = None,
) -> Export:
    """Build the promtool test file of a finished run (nothing written: see ``write_export``)."""
    from chaosrunner.gameday.debrief import default_metrics, scenario_of
    from chaosrunner.observe.series_export import intervals, series_count

    events = RunDir.find(run_id).events()
    scenario = scenario_of(events, run_id)
    url = scenario.target.prometheus
    if not url:
        raise UsageError(
            f"run {run_id!r}: its scenario names no Prometheus (target.prometheus), so no samples"
        )
    source = metrics or default_metrics(scenario)
    assert source is not None  # the scenario names a Prometheus
    run_start, run_end = _window(events, run_id)
    clocks = intervals(url)
    step = clocks.scrape_seconds
    run_rules, rules_source = _rules_of_run(events, url)
    by_name: dict[str, list[RunRule]] = {}
    for run_rule in run_rules:
        by_name.setdefault(run_rule.name, []).append(run_rule)

    names = _alerts_to_export(
        alerts, by_name, lambda: _alert_names_fired(source, run_start, run_end, step), run_id
    )
    files = list(rule_files) or sorted({rule.file for name in names for rule in by_name[name] if rule.file})
    if not files:
        raise UsageError("Prometheus reported no rule file for these alerts: name them with --rule-file")
    tests, selectors = _rules_to_test(names, by_name, files, clocks.evaluation_seconds)

    # Back by the longest range a rule reads, and a lead-in so "quiet before the fault" can be asserted.
    lead_in = LEAD_IN_INTERVALS * max(
        step, clocks.evaluation_seconds, *(rule.eval_interval for rule in tests)
    )
    start = math.floor((run_start - max(selectors.values(), default=0.0) - lead_in) / step) * step
    grid = Grid(start, step, math.floor((run_end - start) / step) + 1)

    # Bound before fetching: how many series, how many samples.
    _check_bounds(
        {text: series_count(url, text, grid.end, grid.end - grid.start) for text in selectors},
        grid,
        max_series,
        max_samples,
    )
    input_series = _input_series(source, list(selectors), grid, max_series)
    assertions, notes = _assertions(source, tests, grid)

    document = promtool_document(
        rule_files=files,
        evaluation_interval=clocks.evaluation_seconds,
        step=step,
        input_series=sorted(input_series.items()),
        assertions=assertions,
        name=f"run {run_id}: {scenario.metadata.title}",
    )
    header = [
        f"promtool rule test exported by chaosrunner from run {run_id} ({scenario.metadata.title})",
        "check it with: promtool test rules <this file>",
        f"time 0 = {_stamp(grid.start)} (first input sample); "
        f"the run: {_stamp(run_start)} to {_stamp(run_end)}",
        f"input: the series the rules read, from {url} every {step:g}s (its scrape interval)",
        rules_source,
        *[f"note: {note}" for note in notes],
    ]
    import yaml

    body = yaml.safe_dump(document, sort_keys=False, width=1_000_000, allow_unicode=True)
    text = "".join(f"# {_one_line(line)}\n" for line in header) + body
    samples = len(input_series) * grid.count
    return Export(text=text, alerts=names, series=len(input_series), samples=samples, notes=notes)


def _stamp(unix: float) -> str:
    return format_time(datetime.fromtimestamp(unix, UTC))


def _one_line(text: str) -> str:
    return re.sub(r"[\r\n]+", " ", text)


def _rule_to_test(
    name: str,
    run_rules: Sequence[RunRule],
    file_rules: Sequence[FileRule],
    lookback: float,
    global_eval: float,
) -> RuleToTest:
    annotations: dict[str, str] = {}
    for rule in file_rules:
        annotations.update(rule.annotations)
    intervals = [rule.interval_seconds for rule in file_rules if rule.interval_seconds]
    return RuleToTest(
        name=name,
        for_seconds=max([rule.for_seconds for rule in run_rules] + [rule.for_seconds for rule in file_rules]),
        lookback_seconds=lookback,
        eval_interval=max(intervals) if intervals else global_eval,
        annotations=annotations,
        rule_labels=frozenset(label for rule in file_rules for label in rule.labels),
    )


def write_export(export: Export, path: Path) -> Path:
    """Write the file 0600 (it holds label values from production), atomically."""
    from chaosrunner.private_files import write_private

    write_private(path, export.text)
    return path
