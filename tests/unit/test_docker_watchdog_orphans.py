"""A watchdog whose injector died before recording it is still stood down by revert.

Otherwise it would wake at its deadline and revert a later run's fault on the
same container.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chaosrunner.faults import watchdog
from chaosrunner.faults.docker.lifecycle import ContainerPause
from chaosrunner.faults.holder import HolderRecord, find_by_label, is_alive


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))


def test_revert_from_the_planned_record_finds_the_orphaned_watchdog() -> None:
    fault = ContainerPause()
    planned = {
        "docker_host": None,
        "run_id": "orphan-run",
        "fault": "pause",
        "hold_seconds": 60,
        "containers": [],
    }
    label = fault.watchdog_label(planned)
    started = HolderRecord.from_dict(watchdog.arm(fault.kind, planned, time.time() + 60, label))
    assert [found.pid for found in find_by_label(label)] == [started.pid]
    fault.revert(planned)  # the planned record: no watchdog in it, as after a crash mid-inject
    deadline = time.monotonic() + 10
    while is_alive(started) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not is_alive(started) and find_by_label(label) == []
