"""Container selection: what a Docker selector matches and what the safety rules keep out."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import BlastRadius, FaultRequest, NoParams
from chaosrunner.faults.docker.fake import FakeDocker, make_container
from chaosrunner.faults.docker.selection import (
    ContainerSelector,
    exclusion_reason,
    own_container_ids,
    select,
    select_and_choose,
)

CONTAINER_ID = "2e76c094ba88d6f911620d9b71899b822cef7cd0cf2f41a7d92e3af8b32506a9"
DOCKER_DATA = f"/var/tmp/chaosrunner-rig/docker/data/containers/{CONTAINER_ID}"


def _request(selector: ContainerSelector, **radius: object) -> FaultRequest:
    return FaultRequest(
        run_id="r1", name="hit", params=NoParams(), selector=selector, blast_radius=BlastRadius(**radius)
    )


@pytest.fixture
def fleet() -> FakeDocker:
    fake = FakeDocker()
    fake.add(make_container("api-1", labels={"tier": "web", "com.docker.compose.service": "api"}))
    fake.add(make_container("api-2", labels={"tier": "web", "com.docker.compose.service": "api"}))
    fake.add(make_container("api-db", labels={"tier": "db", "chaosrunner.protect": "true"}))
    fake.add(make_container("worker", labels={"tier": "web"}))
    fake.add(make_container("stopped-api", running=False, status="exited"))
    return fake


def test_an_empty_selector_is_refused_by_validation() -> None:
    with pytest.raises(ValidationError, match="would match every container"):
        ContainerSelector()


def test_a_broken_regex_is_refused_by_validation() -> None:
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        ContainerSelector(name_regex="api-(")


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (ContainerSelector(name="api-?"), ["api-1", "api-2"]),
        (ContainerSelector(name="api"), []),  # a glob matches the whole name
        (ContainerSelector(name_regex=r"api-\d"), ["api-1", "api-2"]),
        (ContainerSelector(name_regex="api"), []),  # a regex too: fullmatch, not search
        (ContainerSelector(labels={"tier": "web"}), ["api-1", "api-2", "worker"]),
        (ContainerSelector(labels={"tier": "web"}, name="w*"), ["worker"]),  # criteria combine (AND)
        (ContainerSelector(compose_service="api"), ["api-1", "api-2"]),
        (ContainerSelector(compose_service="api", name="*-2"), ["api-2"]),
    ],
)
def test_selectors_match_running_containers(
    fleet: FakeDocker, selector: ContainerSelector, expected: list[str]
) -> None:
    selection = select(fleet, selector, own_ids=set())
    assert [container.name for container in selection.eligible] == expected


def test_protected_containers_are_excluded_and_named(fleet: FakeDocker) -> None:
    selection = select(fleet, ContainerSelector(name="api-*"), own_ids=set())
    assert [c.name for c in selection.eligible] == ["api-1", "api-2"]
    assert [(c.name, reason) for c, reason in selection.excluded] == [
        ("api-db", "protected (label chaosrunner.protect=true)")
    ]


def test_a_selector_matching_only_protected_containers_refuses_the_plan(fleet: FakeDocker) -> None:
    with pytest.raises(PlanRefused, match=r"off limits: api-db: protected"):
        select_and_choose(fleet, _request(ContainerSelector(name="api-db")), own_ids=set())


def test_a_selector_matching_nothing_refuses_the_plan(fleet: FakeDocker) -> None:
    with pytest.raises(PlanRefused, match=r"matched no running container"):
        select_and_choose(fleet, _request(ContainerSelector(name="nothing-*")), own_ids=set())


def test_stopped_containers_are_never_candidates(fleet: FakeDocker) -> None:
    with pytest.raises(PlanRefused, match="matched no running container"):
        select_and_choose(fleet, _request(ContainerSelector(name="stopped-api")), own_ids=set())


def test_the_blast_radius_maximum_is_enforced_in_plan(fleet: FakeDocker) -> None:
    request = _request(ContainerSelector(labels={"tier": "web"}), mode="all", maximum=2)
    with pytest.raises(PlanRefused, match="above the blast radius maximum of 2"):
        select_and_choose(fleet, request, own_ids=set())


def test_percent_picks_a_share_of_the_eligible_containers(fleet: FakeDocker) -> None:
    request = _request(ContainerSelector(labels={"tier": "web"}), mode="percent", percent=50)
    targets, _ = select_and_choose(fleet, request, own_ids=set())
    assert len(targets) == 2  # ceil(3 * 50%)


@pytest.mark.parametrize(
    ("labels", "command", "own", "reason"),
    [
        ({"chaosrunner.protect": "yes"}, (), False, "protected"),
        ({"chaosrunner.protect": "TRUE "}, (), False, "protected"),
        ({"chaosrunner.protect": "false"}, (), False, None),
        ({"chaosrunner.holder": "true"}, (), False, "chaosrunner holder"),
        ({}, ("dockerd-entrypoint.sh", "dockerd"), False, "docker-in-docker"),
        ({}, ("/usr/local/bin/dockerd",), False, "docker-in-docker"),
        ({}, ("sleep", "600"), True, "runs chaosrunner itself"),
        ({}, ("sleep", "600"), False, None),
    ],
)
def test_safety_exclusions(
    labels: dict[str, str], command: tuple[str, ...], own: bool, reason: str | None
) -> None:
    target = make_container("x", labels=labels, command=command)
    found = exclusion_reason(target, {target.id} if own else set())
    assert (found is None) if reason is None else (reason in str(found))


def test_own_container_is_found_from_cgroup_or_hostname_mount() -> None:
    cgroup = f"9:name=systemd:/docker/{CONTAINER_ID}\n0::/docker/{CONTAINER_ID}\n"
    assert own_container_ids(cgroup, "") == {CONTAINER_ID}
    mountinfo = f"164 146 254:0 {DOCKER_DATA}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw\n"
    assert own_container_ids("0::/\n", mountinfo) == {CONTAINER_ID}


def test_on_the_host_other_containers_mounts_do_not_count_as_ours() -> None:
    # On the host, mountinfo lists every container's mounts; only /etc/hostname inside one counts.
    mountinfo = f"300 29 0:52 / {DOCKER_DATA}/mounts/shm rw - tmpfs shm rw\n"
    assert own_container_ids("4:memory:/process_api/d6eef243\n0::/\n", mountinfo) == set()


def test_the_chaos_monkey_picks_one_victim_among_opted_in_containers(fleet: FakeDocker) -> None:
    fleet.add(make_container("cart-1", labels={"chaosrunner.io/monkey": "enabled"}))
    fleet.add(make_container("cart-2", labels={"chaosrunner.io/monkey": "enabled"}))
    fleet.add(make_container("cart-3", labels={"chaosrunner.io/monkey": "disabled"}))
    picked = {
        select_and_choose(fleet, _request(ContainerSelector(random=True)), own_ids=set())[0][0].name
        for _ in range(40)
    }
    assert picked == {"cart-1", "cart-2"}  # random among the opted-in, never the others


def test_the_chaos_monkey_refuses_a_wider_blast_radius(fleet: FakeDocker) -> None:
    fleet.add(make_container("cart-1", labels={"chaosrunner.io/monkey": "enabled"}))
    with pytest.raises(PlanRefused, match="picks exactly one victim"):
        select_and_choose(fleet, _request(ContainerSelector(random=True), mode="all"), own_ids=set())


def test_without_opted_in_containers_the_monkey_has_no_victim(fleet: FakeDocker) -> None:
    with pytest.raises(PlanRefused, match="matched no running container"):
        select_and_choose(fleet, _request(ContainerSelector(random=True)), own_ids=set())
