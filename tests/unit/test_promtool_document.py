"""Choosing when to assert, and what an alert looks like, in the exported promtool test."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaosrunner.errors import UsageError
from chaosrunner.report.promtool.document import (
    AlertHistory,
    RuleToTest,
    assertions_for,
    choose_times,
    promtool_document,
    promtool_duration,
    render_annotation,
    series_text,
    unrenderable,
)
from chaosrunner.report.promtool.rule_files import read_rule_file

LABELS = (("job", "api"), ("severity", "page"))


def history(states: str) -> AlertHistory:
    """``.`` quiet, ``p`` pending, ``F`` firing, one character per grid step."""
    return AlertHistory(
        firing=[frozenset({LABELS}) if state == "F" else frozenset() for state in states],
        active=[state != "." for state in states],
    )


def rule(for_seconds: float = 0.0, lookback: float = 0.0, eval_interval: float = 1.0) -> RuleToTest:
    return RuleToTest(
        "HighErrors", for_seconds, lookback, eval_interval, {"summary": "errors on {{ $labels.job }}"}
    )


def test_assertions_sit_where_the_state_held_two_intervals_either_side() -> None:
    states = "........ppFFFFFFF..."
    assert choose_times(history(states), rule(for_seconds=2), step=1.0) == (12, 5)


def test_a_firing_blip_shorter_than_the_margin_is_not_asserted() -> None:
    assert choose_times(history("......FF.........."), rule(), step=1.0) == (None, 3)


def test_no_assertion_before_the_rule_has_its_lookback_and_for() -> None:
    # Firing from the start: promtool needs 10 s of data plus the 2 s for before it can fire.
    firing_at, quiet_at = choose_times(history("F" * 30), rule(for_seconds=2, lookback=10), step=1.0)
    assert firing_at == 14 and quiet_at is None


def test_assertions_only_fall_on_the_groups_evaluation_grid() -> None:
    firing_at, _ = choose_times(history("." * 20 + "F" * 40), rule(eval_interval=15.0), step=5.0)
    assert firing_at is not None and (firing_at * 5.0) % 15.0 == 0


def test_firing_assertion_carries_labels_and_rendered_annotations() -> None:
    found = assertions_for(history("........ppFFFFFFF..."), rule(for_seconds=2), step=1.0)
    assert [(a.eval_seconds, a.alerts, a.annotations) for a in found] == [
        (5.0, [], []),
        (12.0, [{"job": "api", "severity": "page"}], [{"summary": "errors on api"}]),
    ]


def test_templates_see_the_expressions_labels_not_the_ones_the_rule_adds() -> None:
    adds_severity = RuleToTest("HighErrors", 0, 0, 1, {"summary": "{{ $labels.job }}/{{ $labels.severity }}"})
    adds_severity = RuleToTest(**{**adds_severity.__dict__, "rule_labels": frozenset({"severity"})})
    [_, firing] = assertions_for(history("........FFFFFFF..."), adds_severity, step=1.0)
    assert firing.annotations == [{"summary": "api/"}]


def test_annotations_beyond_labels_are_reported_not_guessed() -> None:
    assert render_annotation("{{ $labels.job }} at {{ $value }}", {"job": "api"}) is None
    assert render_annotation("{{.Labels.job}} down", {"job": "api"}) == "api down"
    value_rule = RuleToTest(
        "X", 0, 0, 1, {"summary": "{{ $value | humanize }}", "runbook": "https://runbooks/x"}
    )
    assert unrenderable(value_rule) == ["summary"]


def test_the_document_is_what_promtool_reads() -> None:
    found = assertions_for(history("........ppFFFFFFF..."), rule(for_seconds=2), step=1.0)
    document = promtool_document(
        rule_files=["/etc/prometheus/rules/api.yml"],
        evaluation_interval=1.0,
        step=1.0,
        input_series=[(series_text({"__name__": "errors", "job": "api"}), "0+0x7 5+0x11")],
        assertions=found,
        name="run x",
    )
    reread = yaml.safe_load(yaml.safe_dump(document))
    assert reread["evaluation_interval"] == "1s"
    assert reread["tests"][0]["input_series"] == [{"series": 'errors{job="api"}', "values": "0+0x7 5+0x11"}]
    assert reread["tests"][0]["alert_rule_test"][1] == {
        "eval_time": "12s",
        "alertname": "HighErrors",
        "exp_alerts": [
            {
                "exp_labels": {"job": "api", "severity": "page"},
                "exp_annotations": {"summary": "errors on api"},
            }
        ],
    }


@pytest.mark.parametrize(
    ("seconds", "text"), [(12.0, "12s"), (90.0, "90s"), (1.5, "1500ms"), (0.25, "250ms")]
)
def test_durations_have_no_fractions(seconds: float, text: str) -> None:
    assert promtool_duration(seconds) == text


def test_rule_files_give_for_interval_and_annotations(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(
        "groups:\n- name: api\n  interval: 30s\n  rules:\n"
        "  - record: job:errors:rate5m\n    expr: rate(errors[5m])\n"
        "  - alert: HighErrors\n    expr: job:errors:rate5m > 1\n    for: 2m\n"
        "    annotations:\n      summary: errors\n"
    )
    [found] = read_rule_file(path)
    assert (found.name, found.for_seconds, found.interval_seconds, found.annotations) == (
        "HighErrors",
        120.0,
        30.0,
        {"summary": "errors"},
    )


def test_a_broken_rule_file_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text("groups:\n- name: api\n  rules: [\n")
    with pytest.raises(UsageError, match=r"rules.yml:\d+: not valid YAML"):
        read_rule_file(path)
    with pytest.raises(UsageError, match="cannot read it"):
        read_rule_file(tmp_path / "absent.yml")
