"""Network faults against the fake at our seam: faithful reconnects, honest refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults.base import FaultRequest
from chaosrunner.faults.docker.fake import FakeDocker, make_container
from chaosrunner.faults.docker.network import (
    BlackholeParams,
    DisconnectParams,
    NetworkBlackhole,
    NetworkDisconnect,
    blackhole_unsuitable,
    resolve_destination,
)
from chaosrunner.faults.docker.selection import ContainerSelector
from chaosrunner.faults.docker.snapshot import NetworkAttachment

SHOP = NetworkAttachment(
    network="shop",
    network_id="net-shop",
    aliases=("api", "checkout"),
    ip_address="172.22.0.50",
    static_ipv4="172.22.0.50",
    links=("db:database",),
)


@pytest.fixture
def fake() -> FakeDocker:
    docker = FakeDocker()
    docker.add_network("net-shop", "shop")
    docker.add_network("net-host", "host", driver="host")
    docker.add(make_container("api-1", networks={"shop": SHOP}))
    docker.add(
        make_container(
            "db-1",
            networks={
                "shop": NetworkAttachment("shop", "net-shop", aliases=("db",), ip_address="172.22.0.9")
            },
        )
    )
    docker.add(make_container("loner"))
    return docker


def _request(params: object, name: str) -> FaultRequest:
    return FaultRequest(
        run_id="run-1",
        name="cut",
        params=params,
        selector=ContainerSelector(name=name),
        duration=timedelta(seconds=30),
    )


def _disconnect(fake: FakeDocker) -> NetworkDisconnect:
    return NetworkDisconnect(fake.connector, set(), watchdogs=False)


def test_disconnect_plan_records_aliases_static_ip_and_links_and_touches_nothing(fake: FakeDocker) -> None:
    plan = _disconnect(fake).plan(_request(DisconnectParams(network="shop"), "api-1"))
    assert fake.mutations() == []
    (entry,) = plan.revert_record["containers"]
    assert entry["attachment"]["aliases"] == ["api", "checkout"]
    assert entry["attachment"]["static_ipv4"] == "172.22.0.50"
    assert entry["attachment"]["links"] == ["db:database"]
    assert plan.revert_record["network_id"] == "net-shop"


def test_disconnect_then_revert_reconnects_with_the_same_attachment_once(fake: FakeDocker) -> None:
    fault = _disconnect(fake)
    record = fault.inject(fault.plan(_request(DisconnectParams(network="shop"), "api-1")))
    api = next(c for c in fake.containers.values() if c.name == "api-1")
    assert "shop" not in fake.containers[api.id].networks and fault.check(record)
    fault.revert(record)
    fault.revert(record)
    connects = [call for call in fake.mutations() if call[0] == "connect"]
    assert len(connects) == 1
    attachment = connects[0][1][2]
    assert isinstance(attachment, NetworkAttachment)
    assert (attachment.aliases, attachment.static_ipv4, attachment.links) == (
        ("api", "checkout"),
        "172.22.0.50",
        ("db:database",),
    )
    assert not fault.check(record)


def test_disconnect_refuses_an_unknown_network_and_unattached_containers(fake: FakeDocker) -> None:
    with pytest.raises(PlanRefused, match="there is no Docker network 'nope'"):
        _disconnect(fake).plan(_request(DisconnectParams(network="nope"), "api-1"))
    with pytest.raises(PlanRefused, match="loner: is not connected to network shop"):
        _disconnect(fake).plan(_request(DisconnectParams(network="shop"), "loner"))
    with pytest.raises(PlanRefused, match="host driver"):
        _disconnect(fake).plan(_request(DisconnectParams(network="host"), "api-1"))


def test_revert_says_so_when_the_network_was_removed(fake: FakeDocker) -> None:
    fault = _disconnect(fake)
    record = fault.inject(fault.plan(_request(DisconnectParams(network="shop"), "api-1")))
    del fake.networks["net-shop"]
    with pytest.raises(FaultError, match="network 'shop' no longer exists; api-1 cannot be reconnected"):
        fault.revert(record)


def test_blackhole_params_validation() -> None:
    assert BlackholeParams(destination="db", ports=[5432]).protocol == "tcp"
    with pytest.raises(ValidationError, match="ports need protocol tcp or udp"):
        BlackholeParams(destination="db", ports=[53], protocol="all")
    with pytest.raises(ValidationError):
        BlackholeParams(destination="db", ports=[70000])
    with pytest.raises(ValidationError):
        BlackholeParams(destination="")


def test_destinations_resolve_from_literals_peers_aliases_and_dns(fake: FakeDocker) -> None:
    api = next(c for c in fake.containers.values() if c.name == "api-1")
    assert resolve_destination(fake, "10.0.0.0/8", api) == ["10.0.0.0/8"]
    assert resolve_destination(fake, "10.1.2.3", api) == ["10.1.2.3/32"]
    assert resolve_destination(fake, "db-1", api) == ["172.22.0.9/32"]  # container name
    assert resolve_destination(fake, "db", api) == ["172.22.0.9/32"]  # its alias (a Compose service name)
    assert resolve_destination(fake, "localhost", api)  # host DNS as the last resort
    assert resolve_destination(fake, "no-such-host.invalid", api) == []


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"network_mode": "host"}, "host's network namespace"),
        (
            {"network_mode": "container:abcdef0123456789"},
            "shares the network namespace of container abcdef012345",
        ),
        ({}, "which this host cannot see"),
    ],
)
def test_blackhole_refuses_containers_it_must_not_or_cannot_enter(changes: dict, reason: str) -> None:
    assert reason in str(blackhole_unsuitable(make_container("x", **changes)))


def test_blackhole_plan_refused_for_a_remote_looking_daemon(fake: FakeDocker) -> None:
    fault = NetworkBlackhole(fake.connector, set(), watchdogs=False)
    with pytest.raises(PlanRefused, match=r"api-1: has pid \d+, which this host cannot see"):
        fault.plan(_request(BlackholeParams(destination="db", ports=[5432]), "api-1"))
    assert fake.mutations() == []
