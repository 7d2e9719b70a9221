"""The runner's state machine on the in-process fault and the scripted metrics.

Fast and exact: these pin down ordering (write-ahead), pre-emption and every
exit path. tests/integration/test_engine.py runs the same paths on real faults
and a real Prometheus.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.engine import killswitch
from chaosrunner.engine.runner import Runner, RunOptions, RunStatus
from chaosrunner.errors import KillSwitchEngaged, PlanRefused, ServiceUnreachable, SteadyStateNotMet
from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from chaosrunner.observe.scripted import ScriptedMetrics
from chaosrunner.scenario.loader import load_scenario
from tests.unit.scenario_factory import write_scenario

ERRORS = "sum(rate(errors_total[1m]))"


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    ACTIVE_FLAGS.clear()


def scenario_file(tmp_path: Path, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "metadata": {"title": "t", "owner": "o", "expected_severity": "P2", "hypothesis": "h"},
        "target": {"prometheus": "http://127.0.0.1:1"},
        "steady_state": [{"name": "healthy", "expr": "up", "comparator": "==", "threshold": 1}],
        "faults": [
            {"name": "first", "kind": "inprocess.flag", "params": {"flag": "first"}, "duration": "1s"},
            {
                "name": "second",
                "kind": "inprocess.flag",
                "params": {"flag": "second"},
                "start": "200ms",
                "duration": "1s",
            },
        ],
        "abort_conditions": [
            {"name": "errors", "expr": ERRORS, "comparator": ">", "threshold": 5, "for": "0s"},
        ],
        "gameday": {"check_interval": "100ms", "max_duration": "1m", "steady_state_timeout": "1s"},
    }
    data.update(overrides)
    return write_scenario(tmp_path, data)


def make_runner(path: Path, metrics: ScriptedMetrics | None, **options: Any) -> tuple[Runner, list[dict]]:
    events: list[dict] = []
    runner = Runner(
        load_scenario(path), str(path), metrics, RunOptions(handle_signals=False, **options), [events.append]
    )
    return runner, events


def healthy_metrics() -> ScriptedMetrics:
    return ScriptedMetrics({"up": 1, ERRORS: 0})


def types(events: list[dict], fault: str | None = None) -> list[str]:
    return [event["type"] for event in events if fault is None or event.get("fault") == fault]


def test_a_clean_run_injects_reverts_and_journals_write_ahead(tmp_path: Path) -> None:
    runner, events = make_runner(scenario_file(tmp_path), healthy_metrics())
    result = runner.run()
    assert (result.status, result.exit_code) == (RunStatus.COMPLETED, 0)
    assert types(events, "first") == [
        "fault_planned",
        "fault_injecting",
        "fault_injected",
        "fault_reverting",
        "fault_reverted",
    ]
    injecting = next(e for e in events if e["type"] == "fault_injecting" and e["fault"] == "first")
    assert injecting["revert_record"] == {"flag": "first", "inject_delay": 0.0, "revert_delay": 0.0}
    assert not ACTIVE_FLAGS
    on_disk = [line for line in result.journal_path.read_text().splitlines() if line]
    assert len(on_disk) == len(events)  # everything shown was journaled
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "completed"


def breach_when_injected(metrics: ScriptedMetrics, fault: str, value: float) -> Any:
    """A listener that sets the error rate the moment ``fault`` is in place (no timers to race)."""

    def listener(event: dict) -> None:
        if event["type"] == "fault_injected" and event["fault"] == fault:
            metrics.set(ERRORS, value)

    return listener


def long_faults() -> list[dict[str, Any]]:
    """Both faults held for a minute: a run that ends sooner was ended by something else."""
    return [
        {"name": "first", "kind": "inprocess.flag", "params": {"flag": "first"}, "duration": "1m"},
        {"name": "second", "kind": "inprocess.flag", "params": {"flag": "second"}, "duration": "1m"},
    ]


def test_an_abort_condition_reverts_everything_at_once(tmp_path: Path) -> None:
    # How fast the abort is, is bench/unit_timings.py's figure; here, that it is the abort
    # that ends the run: the faults would hold for a minute, the bound is generous seconds.
    metrics = healthy_metrics()
    path = scenario_file(tmp_path, faults=long_faults())
    runner, events = make_runner(path, metrics)
    runner.listeners.append(breach_when_injected(metrics, "second", 50))
    started = time.monotonic()
    result = runner.run()
    assert result.status is RunStatus.ABORTED and result.exit_code == 1
    assert time.monotonic() - started < 30
    assert (
        types(events, "first")[-2:] == types(events, "second")[-2:] == ["fault_reverting", "fault_reverted"]
    )
    abort = next(e for e in events if e["type"] == "abort")
    assert abort["cause"] == "condition" and "errors: 50 > 5" in abort["detail"]
    assert not ACTIVE_FLAGS
    assert types(events).count("fault_reverted") == 2


def test_for_duration_must_elapse_before_aborting(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        abort_conditions=[
            {"name": "errors", "expr": ERRORS, "comparator": ">", "threshold": 5, "for": "30s"}
        ],
    )
    metrics = healthy_metrics()
    runner, events = make_runner(path, metrics)
    runner.listeners.append(breach_when_injected(metrics, "first", 9))
    result = runner.run()
    # Breached from the first injection to the end of the faults (about 1.2s, however slow the
    # machine, far short of the condition's 30s): pending, never firing.
    states = [e["state"] for e in events if e["type"] == "condition"]
    assert "pending" in states and "firing" not in states
    assert result.status is RunStatus.COMPLETED


def test_prometheus_outage_fails_closed_after_the_grace(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path, gameday={"check_interval": "100ms", "unreachable_grace": "300ms", "max_duration": "1m"}
    )
    metrics = healthy_metrics()
    runner, events = make_runner(path, metrics)
    threading.Timer(0.2, metrics.outage).start()
    result = runner.run()
    assert result.status is RunStatus.ABORTED
    abort = next(e for e in events if e["type"] == "abort")
    assert abort["cause"] == "prometheus_unreachable"
    assert [e["state"] for e in events if e["type"] == "prometheus"] == ["unreachable"]
    assert not ACTIVE_FLAGS
    assert "verifying" not in [e.get("phase") for e in events]  # blind: nothing to verify with


def test_an_abort_does_not_wait_for_a_slow_inject(tmp_path: Path) -> None:
    faults = [
        {
            "name": "slow",
            "kind": "inprocess.flag",
            "params": {"flag": "slow", "inject_delay": "1500ms"},
            "duration": "10s",
        }
    ]
    metrics = healthy_metrics()
    runner, events = make_runner(scenario_file(tmp_path, faults=faults), metrics)
    threading.Timer(0.3, metrics.set, args=(ERRORS, 50)).start()
    result = runner.run()
    assert result.status is RunStatus.ABORTED
    order = types(events, "slow")
    # reverting began while inject was still sleeping, and the late inject was reverted again
    assert order.index("fault_reverting") < order.index("fault_injected")
    assert order[-1] == "fault_reverted"
    assert not ACTIVE_FLAGS


def test_a_failed_inject_aborts_and_is_reverted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chaosrunner.faults import inprocess

    def broken_inject(self: Any, plan: Any) -> dict:
        raise RuntimeError("backend exploded")

    monkeypatch.setattr(inprocess.FlagFault, "inject", broken_inject)
    runner, events = make_runner(scenario_file(tmp_path), healthy_metrics())
    result = runner.run()
    assert result.status is RunStatus.ABORTED
    abort = next(e for e in events if e["type"] == "abort")
    assert abort["cause"] == "fault_error" and "backend exploded" in abort["detail"]
    assert "fault_reverted" in types(events, "first")  # a failed inject may have half-happened


def test_max_duration_aborts(tmp_path: Path) -> None:
    faults = [{"name": "open", "kind": "inprocess.flag", "params": {"flag": "open"}}]
    path = scenario_file(
        tmp_path,
        faults=faults,
        gameday={"mode": "gameday", "max_duration": "500ms", "check_interval": "100ms"},
    )
    runner, events = make_runner(path, healthy_metrics())
    result = runner.run()
    assert result.status is RunStatus.ABORTED
    assert next(e for e in events if e["type"] == "abort")["cause"] == "max_duration"
    assert not ACTIVE_FLAGS


def test_the_kill_switch_stops_a_live_run_and_refuses_new_ones(tmp_path: Path) -> None:
    runner, events = make_runner(scenario_file(tmp_path), healthy_metrics())
    threading.Timer(0.3, killswitch.engage, args=("test",)).start()
    result = runner.run()
    assert result.status is RunStatus.ABORTED
    assert next(e for e in events if e["type"] == "abort")["cause"] == "kill_switch"
    with pytest.raises(KillSwitchEngaged, match="abort --release"):
        make_runner(scenario_file(tmp_path), healthy_metrics())[0].run()
    assert killswitch.release()
    assert make_runner(scenario_file(tmp_path), healthy_metrics())[0].run().status is RunStatus.COMPLETED


def test_an_operator_abort_request_stops_one_run(tmp_path: Path) -> None:
    runner, events = make_runner(scenario_file(tmp_path), healthy_metrics())

    def ask() -> None:
        while runner.run_dir is None:
            time.sleep(0.01)
        runner.run_dir.request_abort("aborted by operator: test")

    threading.Thread(target=ask).start()
    result = runner.run()
    assert result.status is RunStatus.ABORTED
    assert next(e for e in events if e["type"] == "abort")["detail"] == "aborted by operator: test"


def test_unhealthy_steady_state_refuses_before_touching_anything(tmp_path: Path) -> None:
    runner, events = make_runner(scenario_file(tmp_path), ScriptedMetrics({"up": 0, ERRORS: 0}))
    with pytest.raises(SteadyStateNotMet, match="does not hold before injecting"):
        runner.run()
    assert "fault_injecting" not in types(events)
    assert events[-1]["status"] == "refused" and events[-1]["exit_code"] == 3


def test_a_steady_state_that_does_not_return_is_a_deviation(tmp_path: Path) -> None:
    metrics = healthy_metrics()
    runner, _ = make_runner(scenario_file(tmp_path), metrics)
    threading.Timer(0.5, metrics.set, args=("up", 0)).start()
    result = runner.run()
    assert result.status is RunStatus.DEVIATED and result.exit_code == 1
    assert "did not return" in result.detail


def test_prometheus_unreachable_at_preflight_is_an_environment_error(tmp_path: Path) -> None:
    metrics = healthy_metrics()
    metrics.outage()
    runner, events = make_runner(scenario_file(tmp_path), metrics)
    with pytest.raises(ServiceUnreachable):
        runner.run()
    assert events[-1]["exit_code"] == 3


def test_production_targets_are_refused_without_the_flag(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, target={"prometheus": "http://127.0.0.1:1", "production": True})
    with pytest.raises(PlanRefused, match="allow-production"):
        make_runner(path, healthy_metrics())[0].run()
    assert make_runner(path, healthy_metrics(), allow_production=True)[0].run().status is RunStatus.COMPLETED


def test_a_broken_listener_never_stops_the_run(tmp_path: Path) -> None:
    runner, events = make_runner(scenario_file(tmp_path), healthy_metrics())

    def explode(event: dict) -> None:
        raise RuntimeError("display broke")

    runner.listeners.insert(0, explode)
    assert runner.run().status is RunStatus.COMPLETED
    assert "fault_reverted" in types(events)


def test_a_journal_that_breaks_mid_run_never_stops_the_reverts(tmp_path: Path) -> None:
    import shutil

    metrics = healthy_metrics()
    runner, events = make_runner(scenario_file(tmp_path), metrics)

    def break_disk_then_abort() -> None:
        assert runner.run_dir is not None
        shutil.rmtree(runner.run_dir.path)  # every later journal write fails
        metrics.set(ERRORS, 50)

    threading.Timer(0.4, break_disk_then_abort).start()
    result = runner.run()
    assert not ACTIVE_FLAGS  # reverted although nothing could be journaled
    assert result.status is RunStatus.FAILED and "journal could not be written" in result.detail
    assert "fault_reverted" in types(events)  # listeners still saw it


def test_a_crashing_abort_monitor_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chaosrunner.engine import monitor

    calls = {"n": 0}
    original = monitor.AbortMonitor._evaluate_conditions

    def crash_on_third(self: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("monitor bug")
        original(self)

    monkeypatch.setattr(monitor.AbortMonitor, "_evaluate_conditions", crash_on_third)
    runner, events = make_runner(scenario_file(tmp_path), healthy_metrics())
    result = runner.run()
    assert result.status is RunStatus.ABORTED
    abort = next(e for e in events if e["type"] == "abort")
    assert abort["cause"] == "error" and "monitor bug" in abort["detail"]
    assert not ACTIVE_FLAGS


def test_a_faults_aftermath_is_journaled_once_after_its_revert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaosrunner.faults import inprocess

    seen_active: list[bool] = []

    def outcome(self: Any, record: dict) -> list[dict]:
        seen_active.append(record["flag"] in ACTIVE_FLAGS)
        return [{"name": record["flag"], "summary": f"{record['flag']} came back"}]

    monkeypatch.setattr(inprocess.FlagFault, "outcome", outcome, raising=False)
    runner, events = make_runner(scenario_file(tmp_path), healthy_metrics())
    assert runner.run().status is RunStatus.COMPLETED
    assert types(events, "first")[-2:] == ["fault_reverted", "fault_outcome"]
    (aftermath,) = [e for e in events if e["type"] == "fault_outcome" and e["fault"] == "first"]
    assert aftermath["targets"] == [{"name": "first", "summary": "first came back"}]
    assert seen_active == [False, False]  # read after each revert, never while in place


def test_an_unreadable_aftermath_is_journaled_and_never_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaosrunner.faults import inprocess

    def outcome(self: Any, record: dict) -> list[dict]:
        raise ConnectionError("daemon went away")

    monkeypatch.setattr(inprocess.FlagFault, "outcome", outcome, raising=False)
    runner, events = make_runner(scenario_file(tmp_path), healthy_metrics())
    assert runner.run().status is RunStatus.COMPLETED
    errors = [e["error"] for e in events if e["type"] == "fault_outcome"]
    assert errors == ["daemon went away", "daemon went away"]
    assert not ACTIVE_FLAGS


def test_a_fault_that_took_effect_before_inject_returned_says_when(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaosrunner.engine.journal import in_effect_since, parse_time
    from chaosrunner.faults import inprocess
    from chaosrunner.faults.base import IN_EFFECT_SINCE

    original = inprocess.FlagFault.inject

    def slow_inject(self: Any, plan: Any) -> dict:
        record = original(self, plan)
        took_effect = time.time()
        time.sleep(0.3)  # e.g. pod-kill waiting for the recovery it measures
        return {**record, IN_EFFECT_SINCE: took_effect}

    monkeypatch.setattr(inprocess.FlagFault, "inject", slow_inject)
    runner, events = make_runner(scenario_file(tmp_path), healthy_metrics())
    assert runner.run().status is RunStatus.COMPLETED
    injected = next(e for e in events if e["type"] == "fault_injected")
    lag = (parse_time(injected["time"]) - in_effect_since(injected)).total_seconds()
    assert 0.3 <= lag < 1.0
