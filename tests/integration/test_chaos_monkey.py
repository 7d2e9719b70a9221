"""Chaos Monkey on real dockerd: one random victim, only among containers that opted in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from chaosrunner.faults.base import BlastRadius, FaultRequest
from chaosrunner.faults.docker.lifecycle import ContainerKill, KillParams
from chaosrunner.faults.docker.selection import ContainerSelector


@pytest.fixture
def fleet(docker_client: Any, test_image: str, unique_name: str) -> Iterator[list[Any]]:
    containers = []
    for index, opted_in in enumerate([True, True, False]):
        labels = {"org.chaosrunner.test": unique_name, "fleet": unique_name}
        if opted_in:
            labels["chaosrunner.io/monkey"] = "enabled"
        containers.append(
            docker_client.containers.run(
                test_image,
                ["python3", "-c", "import time; time.sleep(10**9)"],
                name=f"{unique_name}-{index}",
                labels=labels,
                detach=True,
                restart_policy={"Name": "always"},
            )
        )
    yield containers
    for container in containers:
        container.remove(force=True)


def test_the_monkey_kills_exactly_one_opted_in_container(fleet: list[Any], unique_name: str) -> None:
    fault = ContainerKill()
    request = FaultRequest(
        run_id="monkey",
        name="monkey",
        params=KillParams(),
        selector=ContainerSelector(random=True, labels={"fleet": unique_name}),
        blast_radius=BlastRadius(),
    )
    plan = fault.plan(request)
    [victim] = plan.targets
    assert victim.name in {fleet[0].name, fleet[1].name}  # never the container that did not opt in
    record = fault.inject(plan)
    try:
        deadline = time.monotonic() + 20
        while True:  # the victim crashed and its restart policy brought it back
            for container in fleet:
                container.reload()
            restarts = {container.name: container.attrs["RestartCount"] for container in fleet}
            if restarts[victim.name] >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert restarts[victim.name] >= 1
        assert sum(restarts.values()) == restarts[victim.name]  # nobody else was touched
    finally:
        fault.revert(record)
