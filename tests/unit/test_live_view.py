"""The console's live view, at our own seams: a scripted Prometheus and a small stand-in runner.

The LiveView reads a runner (its view, faults and abort monitor), queries a
MetricsSource, reads the run's journal and hands messages to ``publish``.
Here the runner is a plain object holding the real pieces it reads (a
RunView, an AbortMonitor that is never started, a journal file), and
Prometheus is ``observe.scripted``; the real thing is in
tests/integration/test_live_view_run.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chaosrunner.engine.journal import Journal, JournalEvent, format_time
from chaosrunner.engine.monitor import AbortMonitor
from chaosrunner.engine.runner import RunView
from chaosrunner.errors import ServiceUnreachable
from chaosrunner.gameday.live_view import LiveView, Throttle, health_value, moves_figures
from chaosrunner.gameday.measure import measure
from chaosrunner.observe.metrics import Sample
from chaosrunner.observe.scripted import ScriptedMetrics
from chaosrunner.scenario.loader import scenario_from_data
from chaosrunner.scenario.models import Comparator, Scenario

SLI = "checkout:success_ratio"
STEADY = "min(up)"
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def make_scenario(**gameday: Any) -> Scenario:
    return scenario_from_data(
        {
            "metadata": {"title": "Live", "owner": "t", "expected_severity": "P2", "hypothesis": "h"},
            "steady_state": [{"name": "up", "expr": STEADY, "comparator": ">=", "threshold": 1}],
            "faults": [{"name": "flag", "kind": "inprocess.flag", "params": {"flag": "live"}}],
            "abort_conditions": [
                {"name": "errors", "expr": "errors", "comparator": ">", "threshold": 5},
                {"name": "latency", "expr": "latency", "comparator": ">", "threshold": 2},
            ],
            "mitigation": {"sli": SLI, "comparator": ">=", "objective": 0.99},
            "gameday": {"mode": "gameday", "max_duration": "10m", **gameday},
        },
        source="test",
    )


@dataclass
class Published:
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, name: str, data: dict[str, Any]) -> None:
        json.dumps(data, allow_nan=False)  # what the stream will do: every message must be strict JSON
        with self.lock:
            self.messages.append((name, data))

    def named(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [data for kind, data in self.messages if kind == name]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def fake_runner(tmp_path: Path, scenario: Scenario, metrics: ScriptedMetrics | None = None) -> Any:
    monitor = AbortMonitor(
        list(scenario.abort_conditions),
        metrics,
        interval=1.0,
        unreachable_grace=5.0,
        on_abort=lambda cause, detail: None,
        on_condition_change=lambda status: None,
        on_prometheus_change=lambda state, error: None,
        abort_requested=lambda: None,
    )
    fault = SimpleNamespace(name="flag", spec=scenario.faults[0], state=SimpleNamespace(value="injected"))
    return SimpleNamespace(
        scenario=scenario,
        view=RunView("20250301-120000-abcdef", "Live", phase="injecting", started=time.monotonic() - 42),
        faults=[fault],
        monitor=monitor,
        run_dir=SimpleNamespace(journal_path=tmp_path / "journal.jsonl"),
    )


def journal_line(path: Path, event_type: str, when: datetime, **fields: Any) -> JournalEvent:
    event = JournalEvent(type=event_type, time=format_time(when), offset=0.0, **fields)
    Journal(path).write(event)
    return event


@pytest.fixture
def scripted() -> ScriptedMetrics:
    return ScriptedMetrics({SLI: 0.5, STEADY: 1.0, "errors": 7.0, "latency": 0.1})


@pytest.fixture
def views() -> Iterator[list[LiveView]]:
    made: list[LiveView] = []
    yield made
    for view in made:
        view.close()


def test_a_snapshot_has_every_field_of_the_contract(tmp_path: Path, scripted: ScriptedMetrics) -> None:
    scenario = make_scenario()
    runner = fake_runner(tmp_path, scenario, scripted)
    view = LiveView(runner, scripted, Published())
    view({"type": "phase", "phase": "injecting"})
    # The monitor has evaluated once: errors breaches (pending until its `for`), latency is fine.
    runner.monitor.tick()
    runner.monitor.ticks = 1  # what the monitor's own loop counts after each tick

    snapshot = view.snapshot()

    assert set(snapshot) == {"phase", "elapsed_s", "time_left_s", "conditions", "faults", "sample", "live"}
    assert snapshot["phase"] == "injecting"
    assert 41 <= snapshot["elapsed_s"] <= 60
    assert 540 <= snapshot["time_left_s"] <= 600
    assert snapshot["conditions"] == [
        {"name": "errors", "value": 7.0, "state": "firing"},  # no `for`: firing at once
        {"name": "latency", "value": 0.1, "state": "ok"},
    ]
    assert snapshot["faults"] == [{"name": "flag", "kind": "inprocess.flag", "state": "injected"}]
    assert snapshot["sample"]["sli"] == 0.5 and snapshot["sample"]["steady"] == {"up": 1.0}
    assert abs(snapshot["sample"]["t"] - time.time()) < 60
    assert snapshot["live"] is True
    runner.view.phase = "reverting"  # the faults are ending: max_duration no longer bounds anything
    assert view.snapshot()["time_left_s"] is None
    view.close()


def test_before_injecting_and_before_the_monitor_runs_it_says_so(
    tmp_path: Path, scripted: ScriptedMetrics
) -> None:
    runner = fake_runner(tmp_path, make_scenario(), scripted)
    runner.view.phase = "preflight"
    view = LiveView(runner, scripted, Published())
    snapshot = view.snapshot()
    assert snapshot["time_left_s"] is None  # the clock to max_duration starts at "injecting"
    assert [row["state"] for row in snapshot["conditions"]] == ["waiting", "waiting"]
    runner.monitor = None  # a run that has not started its monitor at all
    assert [row["state"] for row in view.snapshot()["conditions"]] == ["waiting", "waiting"]
    view({"type": "run_finished", "status": "completed"})
    assert view.snapshot()["live"] is False
    view.close()


def test_samples_are_kept_for_late_pages_and_bounded(tmp_path: Path, scripted: ScriptedMetrics) -> None:
    view = LiveView(fake_runner(tmp_path, make_scenario(), scripted), scripted, Published(), max_points=5)
    for value in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        scripted.set(SLI, value)
        view.snapshot()
    series = view.series()
    assert [value for _, value in series["sli"]] == [0.3, 0.4, 0.5, 0.6, 0.7]  # the newest five
    assert [value for _, value in series["steady"]["up"]] == [1.0] * 5
    times = [t for t, _ in series["sli"]]
    assert times == sorted(times)
    view.close()


def test_a_prometheus_outage_is_a_gap_not_an_error_in_the_runner(
    tmp_path: Path, scripted: ScriptedMetrics
) -> None:
    view = LiveView(fake_runner(tmp_path, make_scenario(), scripted), scripted, Published())
    scripted.outage()
    snapshot = view.snapshot()
    assert snapshot["sample"]["sli"] is None and snapshot["sample"]["steady"] == {"up": None}
    assert view.last_error is not None and "scripted Prometheus outage" in view.last_error
    assert view.series()["sli"][-1][1] is None
    view.close()


def test_no_number_json_cannot_carry(tmp_path: Path, scripted: ScriptedMetrics) -> None:
    scripted.set(SLI, float("nan"))
    scripted.set(STEADY, float("inf"))
    published = Published()  # refuses NaN and infinity like a browser's JSON.parse
    view = LiveView(fake_runner(tmp_path, make_scenario(), scripted), scripted, published)
    snapshot = view.snapshot()
    assert snapshot["sample"]["sli"] is None and snapshot["sample"]["steady"] == {"up": None}
    published("snapshot", snapshot)
    view.close()


def test_a_health_value_shows_the_failing_series_first() -> None:
    several = Sample(values=(1.0, 0.2, 0.97), labels=({}, {}, {}))
    assert health_value(several, Comparator.GE, 0.99) == 0.2
    assert health_value(Sample(values=(1.0, 0.995)), Comparator.GE, 0.99) == 0.995  # closest to the objective
    assert health_value(Sample(), Comparator.GE, 0.99) is None


def test_only_events_that_can_move_a_figure_trigger_measurement() -> None:
    assert moves_figures({"type": "fault_injected"})
    assert moves_figures({"type": "alert"})
    assert moves_figures({"type": "responder", "event": "detected"})
    assert moves_figures({"type": "responder", "event": "mitigated"})
    assert moves_figures({"type": "faults_ending"})
    assert moves_figures({"type": "run_finished"})
    assert moves_figures({"type": "check", "name": "steady state returned", "ok": True})
    assert not moves_figures({"type": "responder", "event": "note"})
    assert not moves_figures({"type": "check", "name": "steady state up"})
    assert not moves_figures({"type": "condition"})


def test_the_throttle_spaces_goes_by_its_interval() -> None:
    now = [100.0]
    throttle = Throttle(2.0, clock=lambda: now[0])
    assert throttle.wait() == 0.0
    throttle.went()
    now[0] = 100.5
    assert throttle.wait() == pytest.approx(1.5)
    now[0] = 103.0
    assert throttle.wait() == 0.0


def test_live_ttd_is_the_debriefs_ttd_so_far(tmp_path: Path, views: list[LiveView]) -> None:
    scenario = make_scenario()
    runner = fake_runner(tmp_path, scenario)
    path = runner.run_dir.journal_path
    journal_line(path, "run_started", T0 - timedelta(seconds=5), run_id="r", scenario_title="Live")
    journal_line(path, "fault_injected", T0, fault="flag", kind="inprocess.flag")
    published = Published()
    view = LiveView(runner, None, published, measure_every=0.1)
    views.append(view)
    view.start()
    view({"type": "fault_injected"})
    wait_for(lambda: len(published.named("measured")) == 1)
    first = published.named("measured")[0]
    assert first == {"t0": format_time(T0), "ttd_s": None, "ttd_layer": None, "ttm_s": None, "ttr_s": None}

    at = format_time(T0 + timedelta(seconds=75))
    journal_line(
        path, "responder", T0 + timedelta(seconds=80), event="detected", at=at, by="alice", via="synthetic"
    )
    view({"type": "responder", "event": "detected"})
    wait_for(lambda: len(published.named("measured")) == 2)
    assert published.named("measured")[1]["ttd_s"] == 75.0
    assert published.named("measured")[1]["ttd_layer"] == "synthetic"
    assert view.last_measured == published.named("measured")[1]


def test_measurement_is_throttled_coalesced_and_published_only_on_change(
    tmp_path: Path, views: list[LiveView]
) -> None:
    runner = fake_runner(tmp_path, make_scenario())
    journal_line(runner.run_dir.journal_path, "fault_injected", T0, fault="flag", kind="inprocess.flag")
    calls: list[int] = []

    def counting(events: list[dict[str, Any]], scenario: Scenario, metrics: Any) -> Any:
        calls.append(len(events))
        return measure(events, scenario, metrics)

    published = Published()
    view = LiveView(runner, None, published, measure_every=60.0, measurer=counting)
    views.append(view)
    view.start()
    for _ in range(50):  # a burst of marks: one measurement now, the rest wait for the throttle
        view({"type": "responder", "event": "detected"})
    wait_for(lambda: len(calls) == 1)
    time.sleep(0.5)
    assert len(calls) == 1
    view({"type": "condition"})  # cannot move a figure: never measured for
    view({"type": "alert"})  # can: waits behind the throttle
    time.sleep(0.3)
    assert len(calls) == 1
    started = time.monotonic()
    view.close()  # the pending measurement goes out now, not after the 60 s throttle
    assert time.monotonic() - started < 5
    assert calls == [1, 1]  # and no journal line counted twice

    # A short throttle: the same figures twice publish once.
    calls.clear()
    quick = Published()
    again = LiveView(runner, None, quick, measure_every=0.05, measurer=counting)
    views.append(again)
    again.start()
    again({"type": "fault_injected"})
    wait_for(lambda: len(calls) == 1)
    again({"type": "run_finished"})
    wait_for(lambda: len(calls) == 2)
    time.sleep(0.2)
    assert len(quick.named("measured")) == 1


def test_a_failing_measurement_never_reaches_the_runner(tmp_path: Path, views: list[LiveView]) -> None:
    runner = fake_runner(tmp_path, make_scenario())

    def broken(*_: Any) -> Any:
        raise ServiceUnreachable("range query failed")

    view = LiveView(runner, None, Published(), measure_every=0.05, measurer=broken)
    views.append(view)
    view.start()
    view({"type": "fault_injected"})  # returns at once, whatever happens in the worker
    wait_for(lambda: view.last_error is not None)
    assert "range query failed" in str(view.last_error)
    assert view.last_measured is None


def test_snapshots_flow_every_second_until_the_run_finishes(
    tmp_path: Path, scripted: ScriptedMetrics, views: list[LiveView]
) -> None:
    published = Published()
    view = LiveView(fake_runner(tmp_path, make_scenario(), scripted), scripted, published, snapshot_every=0.1)
    views.append(view)
    view.start()
    wait_for(lambda: len(published.named("snapshot")) >= 3)
    view({"type": "run_finished"})
    wait_for(lambda: published.named("snapshot")[-1]["live"] is False)
    count = len(published.named("snapshot"))
    time.sleep(0.5)
    assert len(published.named("snapshot")) == count  # the "not live" snapshot is the last
    assert len(view.series()["sli"]) == count


def test_closing_right_after_the_run_finished_still_ends_with_its_last_figures(
    tmp_path: Path, scripted: ScriptedMetrics
) -> None:
    runner = fake_runner(tmp_path, make_scenario(), scripted)
    journal_line(runner.run_dir.journal_path, "fault_injected", T0, fault="flag", kind="inprocess.flag")
    published = Published()
    # Slow on purpose: nothing but closing can get the last snapshot and measurement out in time.
    view = LiveView(runner, scripted, published, snapshot_every=60.0, measure_every=60.0)
    view.start()
    view({"type": "fault_injected"})
    wait_for(lambda: len(published.named("measured")) == 1 and len(published.named("snapshot")) == 1)
    journal_line(
        runner.run_dir.journal_path,
        "responder",
        T0 + timedelta(seconds=12),
        event="detected",
        at=format_time(T0 + timedelta(seconds=12)),
        by="bob",
    )
    view({"type": "responder", "event": "detected"})
    view({"type": "run_finished"})  # what the server's session does next is close the view
    view.close()
    assert published.named("snapshot")[-1]["live"] is False
    assert published.named("measured")[-1]["ttd_s"] == 12.0


def test_close_is_prompt_with_prometheus_hanging_and_safe_twice(
    tmp_path: Path, views: list[LiveView]
) -> None:
    release = threading.Event()

    class Hanging(ScriptedMetrics):
        def instant(self, expr: str, timeout: float = 5.0) -> Sample:
            release.wait(30)  # ignores its timeout, as a stuck socket would
            return Sample()

    hanging = Hanging()
    published = Published()
    view = LiveView(fake_runner(tmp_path, make_scenario(), hanging), hanging, published, snapshot_every=0.1)
    view.start()
    wait_for(lambda: len(published.named("snapshot")) >= 1)  # bounded: a snapshot with gaps, not a hang
    assert published.named("snapshot")[0]["sample"]["sli"] is None
    started = time.monotonic()
    view.close()
    view.close()
    elapsed = time.monotonic() - started
    release.set()
    assert elapsed < 5
