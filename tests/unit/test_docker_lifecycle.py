"""Lifecycle faults against the fake at our seam: plan touches nothing, reverts are idempotent."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from chaosrunner.errors import PlanRefused
from chaosrunner.faults import watchdog
from chaosrunner.faults.base import FaultParams, FaultRequest
from chaosrunner.faults.docker.fake import FakeDocker, make_container
from chaosrunner.faults.docker.fault import DockerFault, DockerFaultParams
from chaosrunner.faults.docker.lifecycle import (
    ContainerKill,
    ContainerPause,
    ContainerRestart,
    ContainerStop,
    KillParams,
    StopParams,
    came_back,
)
from chaosrunner.faults.docker.selection import ContainerSelector
from chaosrunner.faults.docker.snapshot import ContainerInfo
from chaosrunner.faults.holder import HolderSession
from chaosrunner.faults.inprocess import ACTIVE_FLAGS


def _request(params: FaultParams, name: str = "web-*", duration: float | None = 30) -> FaultRequest:
    return FaultRequest(
        run_id="run-1",
        name="hit",
        params=params,
        selector=ContainerSelector(name=name),
        duration=timedelta(seconds=duration) if duration is not None else None,
    )


@pytest.fixture
def fake() -> FakeDocker:
    docker = FakeDocker()
    docker.add(make_container("web-1"))
    docker.add(make_container("web-2", restart_policy="always"))
    docker.add(make_container("web-held", paused=True, status="paused"))
    return docker


def _fault(kind: type[DockerFault], fake: FakeDocker) -> Any:
    return kind(fake.connector, set(), watchdogs=False)


def _state(fake: FakeDocker, name: str) -> ContainerInfo:
    return next(c for c in fake.containers.values() if c.name == name)


@pytest.mark.parametrize("kind", [ContainerKill, ContainerStop, ContainerPause, ContainerRestart])
def test_plan_changes_nothing_and_its_record_is_json(kind: type[DockerFault], fake: FakeDocker) -> None:
    params = KillParams(via="api") if kind is ContainerKill else kind.Params()
    plan = _fault(kind, fake).plan(_request(params, name="web-1"))
    assert fake.mutations() == []
    assert json.loads(json.dumps(plan.revert_record)) == plan.revert_record
    assert [t.name for t in plan.targets] == ["web-1"]
    assert plan.revert_record["containers"][0]["restart_policy"] == "no"


def test_a_paused_container_is_left_alone_by_every_lifecycle_fault(fake: FakeDocker) -> None:
    with pytest.raises(PlanRefused, match=r"web-held: is paused \(not by this fault"):
        _fault(ContainerPause, fake).plan(_request(DockerFaultParams(), name="web-held"))


def test_pause_inject_check_revert_twice(fake: FakeDocker) -> None:
    fault = _fault(ContainerPause, fake)
    record = fault.inject(fault.plan(_request(DockerFaultParams(), name="web-1")))
    assert _state(fake, "web-1").paused and fault.check(record)
    fault.revert(record)
    assert not _state(fake, "web-1").paused and not fault.check(record)
    fault.revert(record)  # no-op
    assert [call[0] for call in fake.mutations()] == ["pause", "unpause"]


def test_revert_works_from_the_planned_record_after_a_half_done_inject(fake: FakeDocker) -> None:
    fault = _fault(ContainerStop, fake)
    plan = fault.plan(_request(StopParams(), name="web-*"))
    fake.stop(plan.targets[0].id, 1)  # inject died after stopping the first container
    fault.revert(plan.revert_record)
    assert all(_state(fake, name).running for name in ("web-1", "web-2"))


def test_stop_passes_the_grace_period_and_revert_starts(fake: FakeDocker) -> None:
    fault = _fault(ContainerStop, fake)
    record = fault.inject(fault.plan(_request(StopParams(grace_period="3s"), name="web-1")))
    assert ("stop", (_state(fake, "web-1").id, 3)) in fake.calls
    assert fault.check(record)
    fault.revert(record)
    fault.revert(record)
    assert _state(fake, "web-1").running and not fault.check(record)
    assert [call[0] for call in fake.mutations()] == ["stop", "start"]


def test_kill_via_api_is_reverted_by_a_start_even_with_a_restart_policy(fake: FakeDocker) -> None:
    # docker kill counts as a manual stop: no restart policy will bring it back, so revert does.
    fault = _fault(ContainerKill, fake)
    record = fault.inject(fault.plan(_request(KillParams(via="api", signal="TERM"), name="web-2")))
    assert ("kill", (_state(fake, "web-2").id, "SIGTERM")) in fake.calls
    assert record["containers"][0]["restart_policy"] == "always" and "hit_at" in record["containers"][0]
    fault.revert(record)
    assert _state(fake, "web-2").running


def test_kill_start_on_revert_false_leaves_the_container_to_the_team(fake: FakeDocker) -> None:
    fault = _fault(ContainerKill, fake)
    record = fault.inject(fault.plan(_request(KillParams(via="api", start_on_revert=False), name="web-1")))
    fault.revert(record)
    assert not _state(fake, "web-1").running and fault.check(record)


def test_kill_via_process_with_a_restart_policy_leaves_the_comeback_to_docker(fake: FakeDocker) -> None:
    fault = _fault(ContainerKill, fake)
    entry = {"id": _state(fake, "web-2").id, "name": "web-2", "restart_policy": "always"}
    record = {"docker_host": None, "via": "process", "start_on_revert": True, "containers": [entry]}
    fake.kill(entry["id"], "SIGKILL")  # as if the crash happened and the policy failed to restart it
    fault.revert(record)
    assert not _state(fake, "web-2").running  # left down: that IS the finding
    assert fault.check(record)


def test_kill_via_process_is_refused_when_this_host_cannot_see_the_container(fake: FakeDocker) -> None:
    with pytest.raises(PlanRefused, match=r"which this host cannot see.*Use via: api"):
        _fault(ContainerKill, fake).plan(_request(KillParams(), name="web-1"))


@pytest.mark.parametrize(("given", "stored"), [("KILL", "SIGKILL"), ("sigterm", "SIGTERM"), (9, "SIGKILL")])
def test_signals_are_normalised(given: object, stored: str) -> None:
    assert KillParams(signal=given).signal == stored


@pytest.mark.parametrize("bad", ["SIGNOPE", "999", ""])
def test_unknown_signals_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        KillParams(signal=bad)


def test_came_back_tells_a_restart_policy_from_a_manual_start() -> None:
    entry = {
        "id": "c1",
        "name": "web-2",
        "restart_policy": "always",
        "hit_at": "2030-01-01T00:00:10.000Z",
        "started_at": "2030-01-01T00:00:00.000000001Z",
        "restart_count": 0,
    }
    back = make_container("web-2", started_at="2030-01-01T00:00:10.750000000Z", restart_count=1)
    result = came_back(entry, back)
    assert result["came_back"] and result["came_back_by"] == "restart policy"
    assert result["seconds_down"] == 0.75
    assert came_back(entry, make_container("web-2", running=False))["came_back"] is False
    manual = came_back(entry, make_container("web-2", started_at="2030-01-01T00:01:00Z", restart_count=0))
    assert manual["came_back_by"] == "a start (by hand or by revert)"
    assert came_back(entry, None)["exists"] is False


def test_restart_arms_no_watchdog_and_is_over_once_running(fake: FakeDocker) -> None:
    fault = ContainerRestart(fake.connector, set())  # watchdogs on: restart must not arm one
    record = fault.inject(fault.plan(_request(ContainerRestart.Params(), name="web-1")))
    assert watchdog.WATCHDOG_KEY not in record
    assert not fault.check(record)
    assert record["containers"][0]["started_at"] == "2030-01-01T00:00:00.000000001Z"


def test_the_record_holds_the_watchdog_fuse_from_duration_and_grace(fake: FakeDocker) -> None:
    plan = _fault(ContainerPause, fake).plan(_request(DockerFaultParams(deadman_grace="15s"), name="web-1"))
    assert plan.revert_record["hold_seconds"] == 45
    unbounded = _fault(ContainerPause, fake).plan(_request(DockerFaultParams(), name="web-1", duration=None))
    assert unbounded.revert_record["hold_seconds"] == 3630


class _QuietSession(HolderSession):
    """A holder session that does not write 'ready' to this process's stdout."""

    def ready(self) -> None:
        return None


def test_the_watchdog_reverts_at_its_deadline() -> None:
    ACTIVE_FLAGS.add("watchdog-unit")
    session = _QuietSession(deadline=time.time() + 0.05, label="t")
    watchdog.hold({"kind": "inprocess.flag", "record": {"flag": "watchdog-unit"}}, session)
    assert "watchdog-unit" not in ACTIVE_FLAGS


def test_a_disarmed_watchdog_does_not_revert() -> None:
    ACTIVE_FLAGS.add("watchdog-disarmed")
    session = _QuietSession(deadline=time.time() + 60, label="t")
    session.stopping.set()  # SIGTERM from disarm
    watchdog.hold({"kind": "inprocess.flag", "record": {"flag": "watchdog-disarmed"}}, session)
    assert "watchdog-disarmed" in ACTIVE_FLAGS
    ACTIVE_FLAGS.discard("watchdog-disarmed")


def test_deadline_without_a_duration_is_bounded() -> None:
    assert watchdog.deadline_after(None, timedelta(seconds=30), now=1000.0) == 1000.0 + 3630
    assert watchdog.deadline_after(timedelta(seconds=10), timedelta(seconds=5), now=0.0) == 15.0
