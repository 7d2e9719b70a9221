"""A revert that really fails, on a real fault, and what everyone is told about it.

A ``docker.container-pause`` fault reaches the rig's real dockerd through a
unix-socket forwarder (tests/support/socket_forwarder.py). The test cuts the
forwarder between inject and revert, so the revert fails against the real
daemon path exactly as it would when a daemon's socket goes away. Then:

- the run exits 1 and its journal, its console (plain lines) and its report
  say the fault is STILL INJECTED - and the container is indeed still paused;
- the Pushgateway keeps the run's group with ``chaosrunner_fault_active`` at 1,
  ``state="revert_failed"``, so dashboards keep showing the chaos;
- with the socket restored, ``chaosrunner recover`` unpauses the real container,
  journals it, and deletes the run's Pushgateway group.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_chaosrunner
from tests.support.socket_forwarder import SocketForwarder


@pytest.fixture
def forwarder(rig_env: dict[str, str]) -> Iterator[SocketForwarder]:
    upstream = rig_env["DOCKER_HOST"].removeprefix("unix://")
    folder = Path(tempfile.mkdtemp(prefix="crfwd", dir="/tmp"))  # short: unix socket paths max 107
    forwarder = SocketForwarder(folder / "docker.sock", upstream).start()
    yield forwarder
    forwarder.cut()
    with contextlib.suppress(OSError):
        folder.rmdir()


def journal_events(state_dir: Path) -> tuple[str, list[dict[str, Any]]]:
    runs = list((state_dir / "runs").iterdir()) if (state_dir / "runs").is_dir() else []
    if len(runs) != 1:
        return "", []
    lines = (
        (runs[0] / "journal.jsonl").read_text().splitlines() if (runs[0] / "journal.jsonl").exists() else []
    )
    events = []
    for line in lines:
        with contextlib.suppress(ValueError):
            events.append(json.loads(line))
    return runs[0].name, events


def run_group(pushgateway_url: str, run_id: str, rig: Any) -> dict[str, Any] | None:
    groups = rig.http_json(f"{pushgateway_url}/api/v1/metrics")["data"]
    return next((group for group in groups if group["labels"].get("run") == run_id), None)


def fault_active(group: dict[str, Any]) -> list[tuple[dict[str, str], str]]:
    family = group.get("chaosrunner_fault_active", {})
    return [(metric["labels"], metric["value"]) for metric in family.get("metrics", [])]


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def test_a_revert_that_fails_leaves_the_fault_still_injected_until_recover(
    docker_client: Any,
    rig_env: dict[str, str],
    test_image: str,
    test_labels: dict[str, str],
    unique_name: str,
    forwarder: SocketForwarder,
    prometheus_url: str,
    pushgateway_url: str,
    rig: Any,
    tmp_path: Path,
) -> None:
    target = docker_client.containers.run(
        test_image, ["sleep", "600"], name=f"{unique_name}-web", labels=test_labels, detach=True
    )
    scenario = tmp_path / "pause.yaml"
    scenario.write_text(
        json.dumps(
            {
                "metadata": {
                    "title": f"revert fails {unique_name}",
                    "owner": "t",
                    "expected_severity": "P3",
                    "hypothesis": "h",
                },
                "target": {
                    "prometheus": prometheus_url,
                    "pushgateway": pushgateway_url,
                    "docker": {"host": forwarder.url},
                },
                # Long: the fault holds until the test aborts the run.
                "faults": [
                    {
                        "name": "pause",
                        "kind": "docker.container-pause",
                        "selector": {"name": target.name},
                        "duration": "5m",
                    }
                ],
                "gameday": {"max_duration": "10m", "check_interval": "500ms"},
            }
        )
    )
    state_dir = tmp_path / "state"
    env = {
        **os.environ,
        **rig_env,
        "CHAOSRUNNER_STATE_DIR": str(state_dir),
        "CHAOSRUNNER_REPORTS_DIR": str(tmp_path / "reports"),
    }
    runner = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "run", "--plain", str(scenario)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def injected_run() -> str:
            if runner.poll() is not None:
                pytest.fail(f"the run ended before injecting: {runner.communicate()}")
            run_id, events = journal_events(state_dir)
            return run_id if any(event["type"] == "fault_injected" for event in events) else ""

        run_id = wait_until(injected_run, 90, "the pause to be injected")
        target.reload()
        assert target.attrs["State"]["Paused"] is True
        injected = wait_until(
            lambda: (group := run_group(pushgateway_url, run_id, rig)) and fault_active(group),
            20,
            "the run's chaos window in the Pushgateway",
        )
        assert [(labels["state"], value) for labels, value in injected] == [("injected", "1")]

        forwarder.cut()  # the daemon's socket is gone: the revert cannot reach dockerd
        aborted = run_chaosrunner("abort", run_id, env=env)
        assert aborted.returncode == 0, aborted.stdout + aborted.stderr
        stdout, stderr = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()

    # exit code, console, journal: STILL INJECTED
    assert runner.returncode == 1, stdout + stderr
    assert "REVERT FAILED pause: STILL INJECTED (ServiceUnreachable: dockerd at" in stdout
    assert "failed: STILL INJECTED: pause (revert failed); run `chaosrunner recover`" in stdout
    _, events = journal_events(state_dir)
    (failed,) = [event for event in events if event["type"] == "fault_revert_failed"]
    assert failed["fault"] == "pause" and failed["attempts"] == 5
    assert "fault_reverted" not in [event["type"] for event in events]
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "failed"
    target.reload()
    assert target.attrs["State"]["Paused"] is True  # really still injected

    # the report opens with it
    (report_md,) = (tmp_path / "reports").glob("*/report.md")
    text = report_md.read_text()
    assert "**STILL INJECTED.**" in text and "**pause** (docker.container-pause): its revert failed" in text
    (report_html,) = (tmp_path / "reports").glob("*/report.html")
    assert 'id="still-injected"' in report_html.read_text()

    # monitoring still shows the chaos: the group stays, the gauge at 1, state revert_failed
    group = run_group(pushgateway_url, run_id, rig)
    assert group is not None, "the run's Pushgateway group was deleted while the fault is still injected"
    assert [(labels["state"], value) for labels, value in fault_active(group)] == [("revert_failed", "1")]

    # later, with the daemon reachable again, recover reverts it and clears the chaos window
    forwarder.restore()
    recovered = run_chaosrunner("recover", env=env)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert f"{run_id}: reverted pause" in recovered.stdout
    target.reload()
    assert target.attrs["State"]["Paused"] is False and target.attrs["State"]["Running"] is True
    _, events = journal_events(state_dir)
    assert events[-1]["type"] == "fault_reverted" and events[-1]["by"] == "recover"
    wait_until(  # the Pushgateway applies a DELETE a moment after answering 202
        lambda: run_group(pushgateway_url, run_id, rig) is None, 15, "recover to delete the run's group"
    )
    again = run_chaosrunner("recover", env=env)
    assert "nothing to recover" in again.stdout
