"""Parsing docker inspect into snapshots, and the adapter's error at an absent daemon."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chaosrunner.errors import ServiceUnreachable
from chaosrunner.faults.docker.client import open_client
from chaosrunner.faults.docker.snapshot import (
    ContainerInfo,
    NetworkAttachment,
    NetworkInfo,
    parse_docker_time,
)

CONTAINER_ID = "7eb3345a5b797ff398261097933994c8e92f3137c6ff46c3c99dcfeec3c9abda"

# Trimmed from a real `docker inspect` on Engine 20.10 (the rig's daemon).
INSPECT = {
    "Id": CONTAINER_ID,
    "Name": "/checkout-api-1",
    "Path": "sleep",
    "Args": ["600"],
    "RestartCount": 2,
    "State": {
        "Status": "running",
        "Running": True,
        "Paused": False,
        "Restarting": False,
        "Pid": 29293,
        "ExitCode": 0,
        "StartedAt": "2026-11-27T04:35:22.69628402Z",
        "FinishedAt": "0001-01-01T00:00:00Z",
    },
    "HostConfig": {"NetworkMode": "default", "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}},
    "Config": {"Labels": {"com.docker.compose.service": "api"}},
    "NetworkSettings": {
        "Networks": {
            "bridge": {"IPAMConfig": None, "Aliases": None, "NetworkID": "0215", "IPAddress": "172.17.0.2"},
            "shop": {
                "IPAMConfig": {"IPv4Address": "172.22.0.50"},
                "Links": ["db:database"],
                "Aliases": ["api", "checkout", CONTAINER_ID[:12]],
                "NetworkID": "047a",
                "IPAddress": "172.22.0.50",
                "DriverOpts": {},
            },
        }
    },
}


def test_inspect_is_parsed_into_the_facts_faults_use() -> None:
    info = ContainerInfo.from_inspect(INSPECT)
    assert info.name == "checkout-api-1"
    assert (info.running, info.paused, info.pid) == (True, False, 29293)
    assert (info.restart_policy, info.restart_max_retries, info.restart_count) == ("on-failure", 3, 2)
    assert info.has_restart_policy
    assert info.command == ("sleep", "600")
    assert info.labels == {"com.docker.compose.service": "api"}


def test_network_attachments_keep_what_a_reconnect_needs_without_the_automatic_alias() -> None:
    shop = ContainerInfo.from_inspect(INSPECT).networks["shop"]
    assert shop.aliases == ("api", "checkout")
    assert shop.static_ipv4 == "172.22.0.50"
    assert shop.links == ("db:database",)
    assert NetworkAttachment.from_record(shop.as_record()) == shop
    bridge = ContainerInfo.from_inspect(INSPECT).networks["bridge"]
    assert bridge.static_ipv4 is None and bridge.aliases == ()


def test_network_mode_container_is_recognised() -> None:
    attrs = {**INSPECT, "HostConfig": {"NetworkMode": "container:abc123"}}
    assert ContainerInfo.from_inspect(attrs).shares_network_of == "abc123"
    assert ContainerInfo.from_inspect(INSPECT).shares_network_of is None


def test_network_inspect_lists_members_with_bare_addresses() -> None:
    network = NetworkInfo.from_inspect(
        {
            "Id": "047a",
            "Name": "shop",
            "Driver": "bridge",
            "Containers": {CONTAINER_ID: {"Name": "checkout-api-1", "IPv4Address": "172.22.0.2/16"}},
        }
    )
    assert network.members[0].ipv4 == "172.22.0.2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T04:35:22.69628402Z", datetime(2026, 11, 27, 4, 35, 22, 696284, tzinfo=UTC)),
        ("2026-11-27T04:35:22Z", datetime(2026, 11, 27, 4, 35, 22, tzinfo=UTC)),
        ("2026-11-27T05:35:22.5+01:00", datetime(2026, 11, 27, 4, 35, 22, 500000, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
    ],
)
def test_docker_times_with_nanoseconds_parse(text: str, expected: datetime | None) -> None:
    assert parse_docker_time(text) == expected


def test_an_absent_daemon_is_service_unreachable_naming_the_address() -> None:
    with pytest.raises(
        ServiceUnreachable, match=r"dockerd at unix:///nonexistent/docker.sock did not answer"
    ):
        open_client("unix:///nonexistent/docker.sock")
