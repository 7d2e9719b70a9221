"""The stressor program, run here on the host, and the stress plan against the fake seam.

The stressor is the same file that runs inside containers, so its dead-man's
switch (it ends by itself at its deadline; workers die with their parent) is
tested here for real, without Docker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import FaultRequest
from chaosrunner.faults.docker import stressor
from chaosrunner.faults.docker.client import ExecResult
from chaosrunner.faults.docker.fake import ExecHandler, FakeDocker, make_container
from chaosrunner.faults.docker.selection import ContainerSelector
from chaosrunner.faults.docker.stress import (
    CpuStress,
    CpuStressParams,
    MemoryStress,
    MemoryStressParams,
    stress_marker,
    stressor_argv,
)

STRESSOR = Path(stressor.__file__)


@pytest.fixture
def marker() -> Iterator[str]:
    name = f"chaosrunner-stress:unit:{uuid.uuid4().hex[:8]}"
    yield name
    _run(name, "stop")  # never leave a burning process behind


def _run(marker: str, mode: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-c", STRESSOR.read_text(), marker, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return json.loads(result.stdout)


def _start(marker: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", STRESSOR.read_text(), marker, *args])


def _wait_for(predicate: Callable[[], bool], seconds: float) -> float:
    started = time.monotonic()
    while not predicate() and time.monotonic() - started < seconds:
        time.sleep(0.05)
    return time.monotonic() - started


def test_cpu_stress_ends_by_itself_at_its_deadline(marker: str) -> None:
    # Long enough that every `find` (a Python start each) lands inside the stress on a busy
    # machine; how close to its deadline it ends is bench/unit_timings.py's figure.
    seconds = 3.0
    started = time.monotonic()
    process = _start(marker, "cpu", str(seconds), "2", "50")
    found: list[dict[str, Any]] = []

    def all_three_running() -> bool:
        found[:] = _run(marker, "find")
        return len(found) == 3

    _wait_for(all_three_running, 30)
    assert sorted(p["role"] for p in found) == ["main", "worker", "worker"]
    process.wait(timeout=30)  # nobody stops it: it ends by itself
    assert time.monotonic() - started >= seconds  # not before its deadline
    assert _run(marker, "find") == []


def test_stop_ends_the_stress_early_and_finds_nothing_left(marker: str) -> None:
    process = _start(marker, "cpu", "60", "1", "100")
    _wait_for(lambda: len(_run(marker, "find")) == 2, 10)
    started = time.monotonic()
    assert _run(marker, "stop") == {"stopped": 2, "killed": 0}
    process.wait(timeout=5)
    assert time.monotonic() - started < 5
    assert _run(marker, "find") == []
    assert _run(marker, "stop") == {"stopped": 0, "killed": 0}  # idempotent


def test_workers_die_with_their_parent_when_it_is_killed_abruptly(marker: str) -> None:
    process = _start(marker, "cpu", "60", "2", "100")
    _wait_for(lambda: len(_run(marker, "find")) == 3, 10)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=5)
    assert _wait_for(lambda: _run(marker, "find") == [], 5) < 5


def test_memory_stress_holds_resident_memory(marker: str) -> None:
    process = _start(marker, "memory", "30", "64")

    def resident_kb() -> int:
        return sum(p["rss_kb"] for p in _run(marker, "find"))

    _wait_for(lambda: resident_kb() >= 64 * 1024, 15)
    assert resident_kb() >= 64 * 1024
    _run(marker, "stop")
    process.wait(timeout=5)


def test_the_exec_command_is_an_argument_list_with_the_marker_on_its_own() -> None:
    marker = stress_marker("run 1; rm -rf /", "burn")
    assert marker == "chaosrunner-stress:run_1_rm_-rf_:burn"
    argv = stressor_argv("python3", marker, "cpu", "30.000", "2", "100")
    assert argv[:2] == ["python3", "-c"] and argv[3:] == [marker, "cpu", "30.000", "2", "100"]
    assert "def stress_cpu" in argv[2]


def _python_in(version: str | None) -> ExecHandler:
    def handler(container_id: str, argv: Sequence[str]) -> ExecResult:
        if version is None or argv[0] != "python3":
            return ExecResult(127, "", "executable file not found")
        return ExecResult(0, version + "\n", "")

    return handler


def _request(params: object) -> FaultRequest:
    return FaultRequest(
        run_id="r1",
        name="burn",
        params=params,
        selector=ContainerSelector(name="app"),
        duration=timedelta(seconds=20),
    )


def test_plan_refuses_a_container_without_python() -> None:
    fake = FakeDocker(exec_handler=_python_in(None))
    fake.add(make_container("app"))
    with pytest.raises(
        PlanRefused, match=r"needs python3 or python >= 3\.7 in the container, and app has none"
    ):
        CpuStress(fake.connector, set()).plan(_request(CpuStressParams()))


def test_plan_refuses_a_too_old_python() -> None:
    fake = FakeDocker(exec_handler=_python_in("3.6"))
    fake.add(make_container("app"))
    with pytest.raises(PlanRefused, match="app has none"):
        MemoryStress(fake.connector, set()).plan(_request(MemoryStressParams(megabytes=64)))


def test_plan_records_interpreter_marker_and_deadline_and_only_probes() -> None:
    fake = FakeDocker(exec_handler=_python_in("3.11"))
    fake.add(make_container("app"))
    plan = CpuStress(fake.connector, set()).plan(_request(CpuStressParams(workers=2, load=40)))
    record = plan.revert_record
    assert record["containers"][0]["python"] == "python3"
    assert record["marker"] == "chaosrunner-stress:r1:burn"
    assert record["stress_args"] == ["2", "40"] and record["hold_seconds"] == 50
    assert fake.mutations() == [] and not [c for c in fake.calls if c[0] == "exec_detached"]
    assert "burn 2 worker(s) at 40% CPU in app for at most 50s" in plan.summary
