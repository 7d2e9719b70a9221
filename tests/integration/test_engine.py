"""The engine against a real Prometheus and Pushgateway.

Abort conditions read metrics pushed through the rig's Pushgateway and
scraped every second; fail-closed is tested on a private Prometheus that the
test kills; chaos windows are read back from Prometheus as a dashboard would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrunner.engine.runner import Runner, RunOptions, RunStatus
from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from chaosrunner.observe.prometheus import PrometheusHTTP
from chaosrunner.observe.pushgateway import ChaosWindowPublisher
from chaosrunner.scenario.loader import load_scenario
from tests.support.private_prometheus import PrivatePrometheus


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    ACTIVE_FLAGS.clear()


@pytest.fixture
def private_prometheus(pushgateway_url: str) -> Iterator[PrivatePrometheus]:
    prometheus = PrivatePrometheus(pushgateway_url)
    prometheus.start()
    yield prometheus
    prometheus.close()


def scenario(tmp_path: Path, prometheus_url: str, job: str, **gameday: Any) -> Path:
    data = {
        "metadata": {
            "title": f"engine {job}",
            "owner": "tests",
            "expected_severity": "P3",
            "hypothesis": "h",
        },
        "target": {"prometheus": prometheus_url},
        "faults": [
            {"name": "alpha", "kind": "inprocess.flag", "params": {"flag": f"{job}-a"}, "duration": "20s"},
            {"name": "beta", "kind": "inprocess.flag", "params": {"flag": f"{job}-b"}, "duration": "20s"},
        ],
        "abort_conditions": [
            {
                "name": "errors",
                "expr": f'max(chaosrunner_test_errors{{job="{job}"}})',
                "comparator": ">",
                "threshold": 5,
            }
        ],
        "gameday": {"max_duration": "1m", **gameday},
    }
    path = tmp_path / f"{job}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def run_in_thread(runner: Runner) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = runner.run()
        except Exception as error:
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def injected(events: list[dict], count: int = 2) -> bool:
    return sum(event["type"] == "fault_injected" for event in events) >= count


def test_a_metric_crossing_its_threshold_aborts_the_run(
    tmp_path: Path, prometheus_url: str, pushgateway: Any, unique_name: str, rig: Any
) -> None:
    pushgateway.push("chaosrunner_test_errors", 0)
    assert rig.wait_for(
        lambda: rig.prom_query(prometheus_url, f'chaosrunner_test_errors{{job="{pushgateway.job}"}}'),
        timeout=20,
    )
    path = scenario(tmp_path, prometheus_url, pushgateway.job)
    events: list[dict] = []
    runner = Runner(
        load_scenario(path),
        str(path),
        PrometheusHTTP(prometheus_url),
        RunOptions(handle_signals=False),
        [events.append],
    )
    thread, outcome = run_in_thread(runner)
    assert wait_until(lambda: injected(events), 10)
    pushgateway.push("chaosrunner_test_errors", 42)
    thread.join(30)
    result = outcome["result"]
    assert result.status is RunStatus.ABORTED
    abort = next(event for event in events if event["type"] == "abort")
    assert abort["cause"] == "condition" and "errors: 42 > 5" in abort["detail"]
    assert not ACTIVE_FLAGS
    # How fast is bench/abort_reaction.py's question; here: the abort came from the crossing.
    assert abort["offset"] > next(e["offset"] for e in events if e["type"] == "fault_injected")


def test_a_dead_prometheus_fails_closed(
    tmp_path: Path, private_prometheus: PrivatePrometheus, pushgateway: Any
) -> None:
    pushgateway.push("chaosrunner_test_errors", 0)
    assert wait_until(
        lambda: (
            PrometheusHTTP(private_prometheus.url)
            .instant(f'chaosrunner_test_errors{{job="{pushgateway.job}"}}')
            .values
        ),
        20,
    )
    path = scenario(tmp_path, private_prometheus.url, pushgateway.job)
    events: list[dict] = []
    runner = Runner(
        load_scenario(path),
        str(path),
        PrometheusHTTP(private_prometheus.url),
        RunOptions(handle_signals=False),
        [events.append],
    )
    thread, outcome = run_in_thread(runner)
    assert wait_until(lambda: injected(events), 10)
    private_prometheus.kill()
    thread.join(30)
    assert outcome["result"].status is RunStatus.ABORTED
    assert next(event for event in events if event["type"] == "abort")["cause"] == "prometheus_unreachable"
    assert not ACTIVE_FLAGS
    # bench/fail_closed.py prints how fast; here: it aborted because Prometheus went away.


def test_chaos_windows_are_visible_in_prometheus_and_cleared_after(
    tmp_path: Path, prometheus_url: str, pushgateway_url: str, pushgateway: Any, rig: Any
) -> None:
    pushgateway.push("chaosrunner_test_errors", 0)
    path = scenario(tmp_path, prometheus_url, pushgateway.job)
    document = load_scenario(path)
    publisher = ChaosWindowPublisher(pushgateway_url, document.metadata.title)
    events: list[dict] = []
    runner = Runner(
        document,
        str(path),
        PrometheusHTTP(prometheus_url),
        RunOptions(handle_signals=False),
        [events.append, publisher],
    )
    thread, outcome = run_in_thread(runner)
    assert wait_until(lambda: injected(events), 10)
    run_id = runner.run_dir.run_id if runner.run_dir else ""
    active = f'chaosrunner_fault_active{{run="{run_id}"}} == 1'
    assert rig.wait_for(lambda: len(rig.prom_query(prometheus_url, active)) == 2, timeout=15)
    phase = rig.prom_query(prometheus_url, f'chaosrunner_run_phase{{run="{run_id}"}} == 1')
    assert phase[0]["metric"]["phase"] == "injecting"
    pushgateway.push("chaosrunner_test_errors", 99)  # end the run
    thread.join(30)
    publisher.close()
    assert outcome["result"].status is RunStatus.ABORTED
    assert publisher.errors == []

    def run_group_gone() -> bool:  # the Pushgateway applies a DELETE after answering 202
        groups = rig.http_json(f"{pushgateway_url}/api/v1/metrics")["data"]
        return not [group for group in groups if group["labels"].get("run") == run_id]

    assert rig.wait_for(run_group_gone, timeout=10, what="the run's group to leave the Pushgateway")
