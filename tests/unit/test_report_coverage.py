"""Detection per run (report.detection) and coverage across runs (report.coverage), from exact data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chaosrunner.engine.alert_rules import alert_rules_fields
from chaosrunner.errors import ServiceUnreachable
from chaosrunner.observe.metrics import AlertRule
from chaosrunner.observe.scripted import ScriptedMetrics
from chaosrunner.report.coverage import coverage
from chaosrunner.report.coverage_render import html_page
from chaosrunner.report.json_schema import render_json
from chaosrunner.report.model import build_report
from chaosrunner.report.sample import sample_run

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def sample_document() -> dict[str, Any]:
    debrief, metrics = sample_run()
    return json.loads(render_json(build_report(debrief, metrics, now=NOW)))


def test_each_rule_gets_its_verdict_and_time_from_t0() -> None:
    detection = sample_document()["detection"]
    assert detection["source"] == "prometheus" and len(detection["rules"]) == 5
    found = {alert["alert"]: alert for alert in detection["alerts"]}
    assert {name: alert["verdict"] for name, alert in found.items()} == {
        "CheckoutProbeFailing": "caught",
        "CheckoutDbConnectionsHigh": "gap",
        "CheckoutPodRestarting": "noise",
        "DiskAlmostFull": "pre_existing",
        "CertificateExpiring": "untested",
    }
    assert found["CheckoutProbeFailing"]["first_firing_seconds_after_t0"] == 20.0
    assert found["CheckoutPodRestarting"]["first_firing_seconds_after_t0"] == 45.0
    assert found["DiskAlmostFull"]["fired"] is False and found["DiskAlmostFull"]["pre_existing"] is True
    assert found["CheckoutDbConnectionsHigh"]["layer"] == "infrastructure"


def test_rules_that_cannot_be_read_leave_the_event_unavailable_and_never_raise() -> None:
    debrief, _ = sample_run()
    metrics = ScriptedMetrics()
    metrics.rules = [AlertRule("A", "g", None, "up == 0", 5.0, {"team": "x"})]
    fields = alert_rules_fields(debrief.scenario, metrics)
    assert fields["source"] == "prometheus" and fields["rules"][0]["layer"] == "monitoring"
    assert fields["rules"][0]["for_seconds"] == 5.0
    metrics.outage()
    down = alert_rules_fields(debrief.scenario, metrics)
    assert down["source"] == "unavailable" and "outage" in down["error"] and down["rules"] == []
    assert alert_rules_fields(debrief.scenario, None)["source"] == "unavailable"
    with pytest.raises(ServiceUnreachable):
        metrics.alert_rules()


def _run(title: str, outcomes: dict[str, tuple[bool, bool, float | None, bool]], ttd: float | None) -> dict:
    """A minimal report document: outcomes are alert -> (expected, fired, seconds, pre_existing)."""
    return {
        "scenario": {"title": title, "faults": [{"kind": "docker.container-pause"}]},
        "timings": {
            "t0": "2026-01-01T00:00:00.000Z",
            "ttd": {"seconds": ttd, "target_seconds": 30.0, "met": True},
        },
        "detection": {
            "alerts": [
                {
                    "alert": name,
                    "layer": "synthetic" if expected else "monitoring",
                    "expected": expected,
                    "fired": fired,
                    "pre_existing": pre,
                    "first_firing_seconds_after_t0": seconds,
                }
                for name, (expected, fired, seconds, pre) in outcomes.items()
            ]
        },
    }


def test_coverage_counts_runs_medians_precision_and_recall() -> None:
    runs = [
        _run("pause", {"Probe": (True, True, 4.0, False), "Cpu": (False, True, 9.0, False)}, 4.0),
        _run("pause", {"Probe": (True, True, 8.0, False), "Cpu": (False, False, None, True)}, 8.0),
        _run("pause", {"Probe": (True, False, None, False), "Cpu": (False, False, None, False)}, None),
        _run("kill", {"Probe": (False, True, 2.0, False), "Cpu": (True, False, None, False)}, 2.0),
        {"scenario": {"title": "old"}, "timings": {"t0": "x"}},  # a report from before detection
        {**_run("pause", {}, None), "timings": {"t0": None}},  # refused: never injected
    ]
    found = coverage(runs)
    assert found.runs == 4 and found.skipped == {"no_detection": 1, "not_injected": 1}
    probe = found.cell("pause", "Probe")
    assert probe is not None
    assert (probe.fired, probe.runs, probe.ttd_seconds, probe.best_ttd_seconds, probe.verdict) == (
        2,
        3,
        6.0,
        4.0,
        "caught",
    )
    cpu = found.cell("pause", "Cpu")
    assert cpu is not None and (cpu.runs, cpu.pre_existing, cpu.fired, cpu.verdict) == (2, 1, 1, "noise")
    kill_cpu = found.cell("kill", "Cpu")
    assert kill_cpu is not None and kill_cpu.verdict == "gap"
    alerts = {alert.alert: alert for alert in found.alerts}
    # Probe fired in 3 runs, 2 of them expected; expected in 3 runs, fired in 2 of those.
    assert (alerts["Probe"].precision, alerts["Probe"].recall) == (round(2 / 3, 4), round(2 / 3, 4))
    assert (alerts["Cpu"].precision, alerts["Cpu"].recall, alerts["Cpu"].verdict) == (0.0, 0.0, "gap")
    pause = next(s for s in found.scenarios if s.scenario == "pause")
    assert (pause.best_ttd_seconds, pause.median_ttd_seconds, pause.layers_caught) == (
        4.0,
        6.0,
        ["synthetic"],
    )
    rows = found.as_json()["rows"]
    assert {"scenario", "alert", "expected", "fired", "runs", "ttd_seconds"} <= set(rows[0])


def test_the_html_page_escapes_every_text_and_has_no_script() -> None:
    evil = '<script>alert("x")</script>'
    page = html_page(coverage([_run(evil, {evil: (True, True, 1.0, False)}, 1.0)]))
    assert "<script" not in page and "&lt;script&gt;" in page
