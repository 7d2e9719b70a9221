"""Holders end their fault on SIGTERM and, with nobody asking, at their deadline."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from chaosrunner.errors import FaultError
from chaosrunner.faults.holder import HolderRecord, is_alive, process_start_ticks, spawn, stop

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _importable_tests(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))


def _wait_until_gone(record: HolderRecord, seconds: float) -> float:
    """Seconds until the holder exited (a zombie child counts as exited)."""
    started = time.monotonic()
    while is_alive(record) and time.monotonic() - started < seconds:
        time.sleep(0.02)
    return time.monotonic() - started


def test_stop_ends_the_fault_and_is_idempotent(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    record = spawn(
        "tests.unit.sample_holder", {"marker": str(marker)}, deadline=time.time() + 60, label="t-stop"
    )
    assert marker.exists() and is_alive(record)
    stop(record)
    assert not marker.exists() and not is_alive(record)
    stop(record)  # a second revert is a no-op


def test_the_deadline_ends_the_fault_without_anyone_asking(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    record = spawn(
        "tests.unit.sample_holder", {"marker": str(marker)}, deadline=time.time() + 1.0, label="t-dms"
    )
    assert marker.exists()
    waited = _wait_until_gone(record, 10)
    assert not is_alive(record) and not marker.exists()
    assert waited < 3


def test_a_holder_is_not_killed_by_the_terminals_ctrl_c(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    record = spawn(
        "tests.unit.sample_holder", {"marker": str(marker)}, deadline=time.time() + 60, label="t-sess"
    )
    assert os.getpgid(record.pid) != os.getpgid(0)  # its own session: SIGINT to our group misses it
    stop(record)


def test_a_recycled_pid_is_not_mistaken_for_the_holder() -> None:
    # A process that now has the holder's old pid, but started at another time: the record's
    # start ticks are all that tell them apart, so the same record with the right ticks is alive.
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        ticks = process_start_ticks(bystander.pid)
        assert ticks is not None
        assert is_alive(HolderRecord(pid=bystander.pid, start_ticks=ticks, deadline=0, label="x", log=""))
        recycled = HolderRecord(pid=bystander.pid, start_ticks=ticks - 1, deadline=0, label="x", log="")
        assert not is_alive(recycled)
        stop(recycled, timeout=1.0)  # must not signal the bystander
        with pytest.raises(subprocess.TimeoutExpired):
            bystander.wait(timeout=0.5)  # still running: neither SIGTERM nor SIGKILL reached it
    finally:
        bystander.kill()
        bystander.wait()


def test_a_holder_that_fails_reports_its_output(tmp_path: Path) -> None:
    with pytest.raises(FaultError, match=r"exited before it was ready.*asked to fail"):
        spawn(
            "tests.unit.sample_holder",
            {"marker": str(tmp_path / "m"), "fail": True},
            deadline=time.time() + 5,
            label="t-fail",
        )


def test_records_round_trip_as_json_data(tmp_path: Path) -> None:
    record = spawn(
        "tests.unit.sample_holder", {"marker": str(tmp_path / "m")}, deadline=time.time() + 30, label="t-json"
    )
    assert HolderRecord.from_dict(record.as_dict()) == record
    assert not is_alive(replace(record, start_ticks=record.start_ticks + 1))
    stop(HolderRecord.from_dict(record.as_dict()))


def test_an_orphan_holder_is_found_by_its_label(tmp_path: Path) -> None:
    from chaosrunner.faults.holder import find_by_label, request_stop

    marker = tmp_path / "marker"
    record = spawn(
        "tests.unit.sample_holder", {"marker": str(marker)}, deadline=time.time() + 60, label="t-find"
    )
    [found] = find_by_label("t-find")
    assert (found.pid, found.start_ticks) == (record.pid, record.start_ticks)
    assert find_by_label("t-nobody") == []
    request_stop(found)  # returns at once; the holder ends its fault by itself
    _wait_until_gone(record, 10)
    assert not marker.exists() and find_by_label("t-find") == []
