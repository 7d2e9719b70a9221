"""Process faults against real processes on this machine.

The victims are python children that tick a counter file every 20 ms, so a
pause shows as a counter that stops moving (and state ``T`` in /proc), and a
resume as one that moves again. The dead-man's-switch test SIGKILLs the process
that injected the pause and times how long after its deadline the watchdog
resumed the victim.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults import holder
from chaosrunner.faults.base import BlastRadius, FaultRequest
from chaosrunner.faults.process import procfs
from chaosrunner.faults.process.kill import ProcessKill
from chaosrunner.faults.process.pause import ProcessPause
from chaosrunner.faults.process.selection import ProcessSelector
from tests.support.injector import inject_and_die

TICKER = """
import pathlib, signal, sys, time
counter = pathlib.Path(sys.argv[1])
if len(sys.argv) > 3 and sys.argv[3] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
n = 0
while True:
    n += 1
    counter.write_text(str(n))
    time.sleep(0.02)
"""


class Victim:
    def __init__(self, process: subprocess.Popen[bytes], tag: str, counter: Path) -> None:
        self.process = process
        self.tag = tag
        self.counter = counter

    @property
    def pid(self) -> int:
        return self.process.pid

    def state(self) -> str | None:
        info = procfs.read_process(self.pid)
        return info.state if info else None

    def ticks(self) -> int:
        try:
            return int(self.counter.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def moving(self, within: float = 5.0) -> bool:
        """The counter advances within ``within`` seconds (generous: CI machines are busy)."""
        before = self.ticks()
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if self.ticks() > before:
                return True
        return False


@pytest.fixture()
def spawn_victim(tmp_path: Path, unique_name: str) -> Iterator[Callable[..., Victim]]:
    victims: list[Victim] = []

    def start(*extra: str) -> Victim:
        tag = f"{unique_name}-victim-{len(victims)}"
        counter = tmp_path / f"{tag}.count"
        process = subprocess.Popen([sys.executable, "-c", TICKER, str(counter), tag, *extra])
        victim = Victim(process, tag, counter)
        victims.append(victim)
        deadline = time.monotonic() + 10
        while victim.ticks() == 0:
            assert time.monotonic() < deadline, "victim did not start"
            time.sleep(0.02)
        return victim

    yield start
    for victim in victims:
        if victim.process.poll() is None:
            os.kill(victim.pid, signal.SIGCONT)
            victim.process.kill()
        victim.process.wait()


@pytest.fixture(autouse=True)
def _state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))


def request(
    kind: type[ProcessKill] | type[ProcessPause], selector: dict[str, Any], **params: Any
) -> FaultRequest:
    return FaultRequest(
        run_id="crt",
        name=kind.kind.split(".")[1],
        params=kind.Params(**params),
        selector=ProcessSelector(**selector),
        duration=timedelta(seconds=30),
    )


# ----------------------------------------------------------------------------- pause


def test_pause_stops_the_process_and_revert_resumes_it(spawn_victim: Callable[..., Victim]) -> None:
    victim = spawn_victim()
    bystander = spawn_victim()
    fault = ProcessPause()
    record = fault.inject(fault.plan(request(ProcessPause, {"cmdline": victim.tag + "$"})))
    try:
        assert victim.state() == "T" and not victim.moving(within=0.5)
        assert bystander.moving()  # only the selected process is touched
        assert fault.check(record)
        assert holder.is_alive(holder.HolderRecord.from_dict(record["holder"]))
    finally:
        fault.revert(record)
    assert victim.state() != "T" and victim.moving()
    assert not fault.check(record)
    assert not holder.is_alive(holder.HolderRecord.from_dict(record["holder"]))
    fault.revert(record)  # a second revert is a no-op
    assert victim.moving()


def test_revert_resumes_even_when_the_watchdog_was_killed(spawn_victim: Callable[..., Victim]) -> None:
    victim = spawn_victim()
    fault = ProcessPause()
    record = fault.inject(fault.plan(request(ProcessPause, {"cmdline": victim.tag})))
    os.kill(record["holder"]["pid"], signal.SIGKILL)  # the watchdog cannot SIGCONT any more
    time.sleep(0.2)
    assert victim.state() == "T"
    fault.revert(record)
    assert victim.moving()


def test_the_watchdog_resumes_at_its_deadline_when_the_injector_is_killed(
    spawn_victim: Callable[..., Victim], record_property: Any
) -> None:
    victim = spawn_victim()
    record = inject_and_die(
        ProcessPause,
        run_id="crt-dms",
        name="pause",
        params={"grace": "1s"},
        selector={"cmdline": victim.tag},
        duration=2.0,
    )
    deadline = float(record["deadline"])
    while time.time() < deadline - 0.3:
        assert victim.state() == "T", "resumed before the deadline"
        time.sleep(0.05)
    while victim.state() == "T":
        assert time.time() < deadline + 10, "the watchdog did not resume the process"
        time.sleep(0.01)
    lag = time.time() - deadline
    record_property("resumed_after_deadline_s", round(lag, 3))
    print(f"\nprocess.pause: resumed {lag:.3f}s after the deadline")
    assert -0.3 < lag < 2.0
    assert victim.moving()
    ProcessPause().revert(record)  # recover after the switch fired: a no-op


# ----------------------------------------------------------------------------- kill


def test_kill_ends_the_process_and_records_when(spawn_victim: Callable[..., Victim]) -> None:
    victim = spawn_victim()
    fault = ProcessKill()
    record = fault.inject(fault.plan(request(ProcessKill, {"cmdline": victim.tag}, signal="SIGTERM")))
    assert victim.process.wait(5) == -signal.SIGTERM
    (hit,) = record["victims"]
    assert hit["pid"] == victim.pid and hit["signalled"] and hit["exited"] and hit["exited_after"] < 5
    assert fault.check(record)  # gone, and nothing replaced it
    fault.revert(record)
    fault.revert(record)
    replacement = spawn_victim()  # "the supervisor restarted it": same selector, new process
    record["selector"]["cmdline"] = f"{victim.tag}|{replacement.tag}"
    assert not fault.check(record)


def test_a_process_that_ignores_the_signal_is_recorded_as_still_running(
    spawn_victim: Callable[..., Victim], tmp_path: Path
) -> None:
    victim = spawn_victim("ignore-term")
    pid_file = tmp_path / "ticker.pid"
    pid_file.write_text(f"{victim.pid}\n")
    fault = ProcessKill()
    record = fault.inject(
        fault.plan(request(ProcessKill, {"pid_file": str(pid_file)}, signal="SIGTERM", confirm_exit="500ms"))
    )
    (hit,) = record["victims"]
    assert hit["signalled"] and not hit["exited"]
    assert victim.moving() and not fault.check(record)


def test_a_recycled_pid_in_a_record_is_never_signalled(spawn_victim: Callable[..., Victim]) -> None:
    victim = spawn_victim()
    fault = ProcessKill()
    plan = fault.plan(request(ProcessKill, {"cmdline": victim.tag}, signal="SIGKILL"))
    plan.revert_record["victims"][0]["start_ticks"] += 1  # as if the pid now belonged to someone else
    with pytest.raises(FaultError, match="none of the targets was still running"):
        fault.inject(plan)
    assert victim.moving()


def test_chaosrunner_and_its_holders_are_never_targets(spawn_victim: Callable[..., Victim]) -> None:
    victim = spawn_victim()
    pause = ProcessPause()
    record = pause.inject(pause.plan(request(ProcessPause, {"cmdline": victim.tag})))
    try:
        with pytest.raises(PlanRefused, match="holder"):
            ProcessKill().plan(
                request(ProcessKill, {"cmdline": rf"chaosrunner\.faults\.holder .*{victim.tag}"})
            )
        with pytest.raises(PlanRefused, match="chaosrunner itself"):
            ProcessKill().plan(request(ProcessKill, {"pid_file": _pid_file(os.getppid())}))
        with pytest.raises(PlanRefused, match="pid 1"):
            ProcessKill().plan(request(ProcessKill, {"pid_file": _pid_file(1)}))
    finally:
        pause.revert(record)


@pytest.mark.skipif(os.getuid() != 0, reason="starting a process as another user needs root")
def test_other_users_processes_need_allow_other_users() -> None:
    # nobody cannot run this python (it lives under /root): a sleep with a unique length is the victim.
    length = f"600.{random.randrange(10**8):08d}"
    sleeper = subprocess.Popen(["sleep", length], user=65534)
    try:
        selector = {"cmdline": rf"^sleep {re.escape(length)}$"}
        with pytest.raises(PlanRefused, match="owned by uid 65534"):
            ProcessPause().plan(request(ProcessPause, selector))
        plan = ProcessKill().plan(
            request(ProcessKill, {**selector, "allow_other_users": True}, signal="SIGKILL")
        )
        ProcessKill().inject(plan)
        assert sleeper.wait(5) == -signal.SIGKILL
    finally:
        sleeper.kill()
        sleeper.wait()


def test_blast_radius_all_hits_every_match(spawn_victim: Callable[..., Victim], unique_name: str) -> None:
    victims = [spawn_victim(), spawn_victim()]
    fault = ProcessPause()
    selector = {"cmdline": f"{unique_name}-victim-[01]$"}
    req = request(ProcessPause, selector).model_copy(
        update={"blast_radius": BlastRadius(mode="all", maximum=2)}
    )
    record = fault.inject(fault.plan(req))
    try:
        assert [v.state() for v in victims] == ["T", "T"]
    finally:
        fault.revert(record)
    assert all(v.moving() for v in victims)


def _pid_file(pid: int) -> str:
    path = Path(os.environ["CHAOSRUNNER_STATE_DIR"]) / f"{pid}.pid"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid}\n")
    return str(path)
