"""What we know about a container: a typed snapshot of ``docker inspect``.

The Docker API answers with deeply nested dicts whose keys differ between
Engine versions (``Aliases`` lists the short id on 20.10, ``DNSNames`` appears
in 25). Every Docker fault reads the same handful of facts - is it running,
paused, which restart policy, which pid, which networks with which aliases -
so they are parsed once, here, into frozen dataclasses. The rest of the
backend (and its unit tests) work with these and never with raw dicts, which
is also what lets a fake at our seam stand in for dockerd.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_DOCKER_TIME = re.compile(
    r"^(?P<whole>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)?$"
)

NO_RESTART_POLICIES = frozenset({"", "no"})
"""Restart-policy names meaning Docker will not bring a dead container back."""


@dataclass(frozen=True)
class NetworkAttachment:
    """One network a container is connected to, with what reconnecting needs."""

    network: str
    network_id: str
    aliases: tuple[str, ...] = ()
    """Aliases the user asked for (Docker's automatic short-id alias removed)."""
    ip_address: str = ""
    static_ipv4: str | None = None
    static_ipv6: str | None = None
    links: tuple[str, ...] = ()
    driver_opts: dict[str, str] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "network_id": self.network_id,
            "aliases": list(self.aliases),
            "ip_address": self.ip_address,
            "static_ipv4": self.static_ipv4,
            "static_ipv6": self.static_ipv6,
            "links": list(self.links),
            "driver_opts": dict(self.driver_opts),
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> NetworkAttachment:
        return cls(
            network=data["network"],
            network_id=data.get("network_id", ""),
            aliases=tuple(data.get("aliases") or ()),
            ip_address=data.get("ip_address", ""),
            static_ipv4=data.get("static_ipv4"),
            static_ipv6=data.get("static_ipv6"),
            links=tuple(data.get("links") or ()),
            driver_opts=dict(data.get("driver_opts") or {}),
        )


@dataclass(frozen=True)
class ContainerInfo:
    """The facts the Docker faults decide on, taken at one moment."""

    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    status: str = "running"
    running: bool = True
    paused: bool = False
    restarting: bool = False
    pid: int = 0
    started_at: str = ""
    finished_at: str = ""
    exit_code: int = 0
    restart_policy: str = ""
    restart_max_retries: int = 0
    restart_count: int = 0
    network_mode: str = "default"
    networks: dict[str, NetworkAttachment] = field(default_factory=dict)
    command: tuple[str, ...] = ()

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def has_restart_policy(self) -> bool:
        return self.restart_policy not in NO_RESTART_POLICIES

    @property
    def shares_network_of(self) -> str | None:
        """The container whose network namespace this one joined (``--network container:X``)."""
        mode = self.network_mode
        return mode.split(":", 1)[1] if mode.startswith("container:") else None

    @classmethod
    def from_inspect(cls, attrs: dict[str, Any]) -> ContainerInfo:
        """Parse the answer of ``GET /containers/{id}/json``."""
        state = attrs.get("State") or {}
        host_config = attrs.get("HostConfig") or {}
        policy = host_config.get("RestartPolicy") or {}
        container_id = attrs["Id"]
        config = attrs.get("Config") or {}
        raw_networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
        return cls(
            id=container_id,
            name=str(attrs.get("Name", "")).lstrip("/"),
            labels=dict(config.get("Labels") or {}),
            status=str(state.get("Status", "")),
            running=bool(state.get("Running")),
            paused=bool(state.get("Paused")),
            restarting=bool(state.get("Restarting")),
            pid=int(state.get("Pid") or 0),
            started_at=str(state.get("StartedAt", "")),
            finished_at=str(state.get("FinishedAt", "")),
            exit_code=int(state.get("ExitCode") or 0),
            restart_policy=str(policy.get("Name") or ""),
            restart_max_retries=int(policy.get("MaximumRetryCount") or 0),
            restart_count=int(attrs.get("RestartCount") or 0),
            network_mode=str(host_config.get("NetworkMode") or "default"),
            networks={name: _attachment(name, raw or {}, container_id) for name, raw in raw_networks.items()},
            command=(str(attrs.get("Path", "")), *(str(arg) for arg in attrs.get("Args") or ())),
        )


def _attachment(name: str, raw: dict[str, Any], container_id: str) -> NetworkAttachment:
    ipam = raw.get("IPAMConfig") or {}
    # Docker adds the short id as an alias by itself on every (re)connect; recording it
    # would make a reconnect look like it asked for something the user never did.
    aliases = tuple(alias for alias in raw.get("Aliases") or () if alias != container_id[:12])
    return NetworkAttachment(
        network=name,
        network_id=str(raw.get("NetworkID") or ""),
        aliases=aliases,
        ip_address=str(raw.get("IPAddress") or ""),
        static_ipv4=ipam.get("IPv4Address") or None,
        static_ipv6=ipam.get("IPv6Address") or None,
        links=tuple(raw.get("Links") or ()),
        driver_opts=dict(raw.get("DriverOpts") or {}),
    )


def parse_docker_time(text: str) -> datetime | None:
    """Docker's RFC 3339 times carry nanoseconds; ``0001-01-01...`` means never."""
    if not text or text.startswith("0001-01-01"):
        return None
    match = _DOCKER_TIME.match(text)
    if match is None:
        return None
    # Python parses at most microseconds: cut the nanoseconds before parsing.
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    zone = match["zone"] if match["zone"] not in (None, "Z") else "+00:00"
    return datetime.fromisoformat(f"{match['whole']}.{fraction}{zone}").astimezone(UTC)


def utc_now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class NetworkMember:
    container_id: str
    name: str
    ipv4: str = ""
    ipv6: str = ""


@dataclass(frozen=True)
class NetworkInfo:
    """A Docker network and the containers attached to it."""

    id: str
    name: str
    driver: str = "bridge"
    members: tuple[NetworkMember, ...] = ()

    @classmethod
    def from_inspect(cls, attrs: dict[str, Any]) -> NetworkInfo:
        members = tuple(
            NetworkMember(
                container_id=container_id,
                name=str(raw.get("Name", "")),
                ipv4=str(raw.get("IPv4Address") or "").split("/")[0],
                ipv6=str(raw.get("IPv6Address") or "").split("/")[0],
            )
            for container_id, raw in (attrs.get("Containers") or {}).items()
        )
        return cls(
            id=attrs["Id"],
            name=str(attrs.get("Name", "")),
            driver=str(attrs.get("Driver", "")),
            members=members,
        )
