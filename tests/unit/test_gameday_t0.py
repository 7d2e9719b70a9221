"""t0 is when the failure took effect, even when inject returned later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from chaosrunner.gameday.measure import measure
from chaosrunner.scenario.loader import load_scenario
from tests.unit.scenario_factory import write_scenario

T = datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC)


def stamp(seconds: float) -> str:
    return (T + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def events(*, in_effect_since: float | None) -> list[dict]:
    injected = {"type": "fault_injected", "time": stamp(5), "fault": "kill", "kind": "k"}
    if in_effect_since is not None:
        injected["in_effect_since"] = stamp(in_effect_since)
    return [
        {"type": "run_started", "time": stamp(0)},
        injected,
        {"type": "responder", "time": stamp(12), "event": "detected", "at": stamp(12), "by": "ana"},
        {"type": "run_finished", "time": stamp(30)},
    ]


def test_ttd_counts_from_when_the_fault_took_effect(tmp_path: Path) -> None:
    scenario = load_scenario(write_scenario(tmp_path))
    late = measure(events(in_effect_since=0.5), scenario, None)
    assert late.t0 == T + timedelta(seconds=0.5)
    assert late.ttd == timedelta(seconds=11.5)


def test_without_the_field_t0_is_the_injected_events_time(tmp_path: Path) -> None:
    scenario = load_scenario(write_scenario(tmp_path))
    plain = measure(events(in_effect_since=None), scenario, None)
    assert plain.t0 == T + timedelta(seconds=5)
    assert plain.ttd == timedelta(seconds=7)
