"""The console's live view of a real gameday: real Prometheus (1 s scrape and rules), a real runner.

The test plays the system through the Pushgateway (the SLI drops at t0+1 s
and comes back at t0+6 s) and a real alert rule; the gameday watcher records
the alert and ends the faults once the SLI has held for its confirmation
window. A LiveView made at ``run_started``, as the run's server makes it,
publishes into a list. What the page would have seen is then checked against
the journal and against the debrief the report is made from.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrunner.engine.runner import Runner, RunOptions, RunStatus
from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from chaosrunner.gameday.debrief import debrief
from chaosrunner.gameday.live_view import LiveView
from chaosrunner.gameday.watch import GamedayWatcher
from chaosrunner.observe.prometheus import PrometheusHTTP
from chaosrunner.scenario.loader import load_scenario

MAX_DURATION = 120.0


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    ACTIVE_FLAGS.clear()


class Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[float, str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, name: str, data: dict[str, Any]) -> None:
        with self.lock:
            self.messages.append((time.monotonic(), name, data))

    def named(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [data for _, kind, data in self.messages if kind == name]


def test_a_live_gameday_as_the_console_sees_it(
    tmp_path: Path,
    prometheus_url: str,
    pushgateway: Any,
    prometheus_rules: Any,
    rig: Any,
    unique_name: str,
) -> None:
    sli = f'max(gameday_sli{{job="{unique_name}"}})'
    probe = f"ProbeFailing_{unique_name}"
    pushgateway.push("gameday_sli", 1.0, instance="sli")
    prometheus_rules.add(
        [
            {
                "name": f"{unique_name}-alerts",
                "interval": "1s",
                "rules": [{"alert": probe, "expr": f"{sli} < 0.9"}],
            }
        ]
    )
    rig.wait_for(lambda: rig.prom_query(prometheus_url, sli), timeout=20, what="the SLI in Prometheus")
    path = tmp_path / "live.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "metadata": {
                    "title": "Live view",
                    "owner": "tests",
                    "expected_severity": "P2",
                    "hypothesis": "h",
                },
                "target": {"prometheus": prometheus_url},
                "steady_state": [{"name": "sli", "expr": sli, "comparator": ">=", "threshold": 0.99}],
                "faults": [{"name": "flag", "kind": "inprocess.flag", "params": {"flag": unique_name}}],
                "abort_conditions": [{"name": "sli-gone", "expr": sli, "comparator": "<", "threshold": 0.1}],
                "detection": {"synthetic": [probe]},
                "mitigation": {"sli": sli, "comparator": ">=", "objective": 0.99, "confirm_for": "3s"},
                "gameday": {
                    "mode": "gameday",
                    "max_duration": f"{MAX_DURATION:g}s",
                    "check_interval": "500ms",
                    "ttd_target": "10s",
                    "ttm_target": "30s",
                },
            }
        )
    )
    scenario = load_scenario(path)
    metrics = PrometheusHTTP(prometheus_url)
    recorder = Recorder()
    made: list[LiveView] = []
    t0: list[float] = []

    def attach(event: dict[str, Any]) -> None:  # what the run's server does at run_started
        if event["type"] == "run_started":
            view = LiveView(runner, metrics, recorder)
            made.append(view)
            view.start()
        if event["type"] == "fault_injected" and not t0:
            t0.append(time.monotonic())
        for view in made:
            view(event)

    runner = Runner(scenario, str(path), metrics, RunOptions(handle_signals=False), [attach])
    watcher = GamedayWatcher(runner, metrics)
    runner.listeners.append(watcher)
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("result", runner.run()))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not t0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert t0, "the fault was never injected"
        time.sleep(max(0.0, t0[0] + 1.0 - time.monotonic()))
        pushgateway.push("gameday_sli", 0.5, instance="sli")  # users see the failure
        time.sleep(max(0.0, t0[0] + 6.0 - time.monotonic()))
        pushgateway.push("gameday_sli", 1.0, instance="sli")  # the team mitigated
        thread.join(90)
    finally:
        watcher.close()
    [view] = made
    # The last snapshot and measurement (after run_finished) may still be on their way.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (
        (view.last_measured or {}).get("ttr_s") and recorder.named("snapshot")[-1]["live"] is False
    ):
        time.sleep(0.1)
    view.close()
    result = outcome["result"]
    assert result.status is RunStatus.COMPLETED and not ACTIVE_FLAGS

    # Snapshots: about one a second, the contract's fields, ending with the one that says "not live".
    snapshots = recorder.named("snapshot")
    run_seconds = max(event["offset"] for event in runner.run_dir.events())  # type: ignore[union-attr]
    assert len(snapshots) >= run_seconds / 2
    assert all(snapshot["live"] for snapshot in snapshots[:-1]) and snapshots[-1]["live"] is False
    assert snapshots[-1]["phase"] == "finished"
    injecting = [snapshot for snapshot in snapshots if snapshot["phase"] == "injecting"]
    assert injecting and all(0 < snapshot["time_left_s"] <= MAX_DURATION for snapshot in injecting)
    lefts = [snapshot["time_left_s"] for snapshot in injecting]
    assert lefts == sorted(lefts, reverse=True)
    assert {snapshot["faults"][0]["state"] for snapshot in injecting} >= {"injected"}
    assert snapshots[-1]["faults"] == [{"name": "flag", "kind": "inprocess.flag", "state": "reverted"}]
    conditions = [snapshot["conditions"][0] for snapshot in injecting]
    assert {row["state"] for row in conditions} <= {"waiting", "ok"} and conditions[-1]["state"] == "ok"
    assert {row["value"] for row in conditions if row["value"] is not None} <= {0.5, 1.0}

    # The SLI as Prometheus scraped it, sample by sample; the series holds every sample taken.
    seen = [snapshot["sample"]["sli"] for snapshot in snapshots]
    assert 0.5 in seen and seen[-1] == 1.0
    series = view.series()
    assert len(series["sli"]) == len(snapshots) == len(series["steady"]["sli"])
    assert [value for _, value in series["sli"]] == seen
    times = [t for t, _ in series["sli"]]
    assert times == sorted(times) and all(math.isfinite(t) for t in times)

    # Live TTD and TTM as they were measured, and the debrief's own figures after the run.
    measured = recorder.named("measured")
    final = debrief(result.run_id).measurement
    assert final.ttd is not None and final.ttm is not None and final.ttr is not None
    detected = next(m for m in measured if m["ttd_s"] is not None)
    assert detected["ttd_layer"] == "synthetic"
    assert detected["ttd_s"] == pytest.approx(final.ttd.total_seconds(), abs=1.0)
    last = measured[-1]
    assert last["ttm_s"] == pytest.approx(final.ttm.total_seconds(), abs=1.0)
    assert last["ttr_s"] is not None
    assert all(a != b for a, b in itertools.pairwise(measured))  # only changes are published
    assert view.last_error is None or "range" not in view.last_error
