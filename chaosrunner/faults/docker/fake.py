"""An in-memory ``DockerApi``: the fake at our own seam, shipped like httpx's MockTransport.

Unit tests of the Docker faults (and of anything built on them) hand
``FakeDocker.connector`` to a fault instead of ``open_client``. It keeps
containers and networks as snapshots, changes them the way dockerd would
(kill stops, start gives a new start time, pause pauses, 409 on nonsense), and
logs every call so a test can assert that ``plan`` changed nothing. Execs are
answered by a function the test provides.

It is deliberately small: it fakes *our* interface, never the SDK's, and it is
never the only test of a backend - the integration tests use the real daemon.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from chaosrunner.faults.docker.client import ContainerGone, DockerApi, DockerConflict, ExecResult
from chaosrunner.faults.docker.snapshot import ContainerInfo, NetworkAttachment, NetworkInfo, NetworkMember

ExecHandler = Callable[[str, Sequence[str]], ExecResult]
MUTATING = frozenset({"kill", "stop", "start", "restart", "pause", "unpause", "disconnect", "connect"})


def _no_exec(container_id: str, argv: Sequence[str]) -> ExecResult:
    return ExecResult(127, "", f"exec: {argv[0]!r}: executable file not found in $PATH")


@dataclass
class FakeDocker:
    """Containers and networks in memory; ``calls`` lists (method, args) in order."""

    containers: dict[str, ContainerInfo] = field(default_factory=dict)
    networks: dict[str, NetworkInfo] = field(default_factory=dict)
    exec_handler: ExecHandler = _no_exec
    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    host: str = "fake://docker"
    _clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def connector(self, host: str | None) -> DockerApi:
        return self

    # ------------------------------------------------------------ building the world

    def add(self, container: ContainerInfo) -> ContainerInfo:
        self.containers[container.id] = container
        for attachment in container.networks.values():
            self._join(container, attachment)
        return container

    def add_network(self, network_id: str, name: str, driver: str = "bridge") -> NetworkInfo:
        network = NetworkInfo(id=network_id, name=name, driver=driver)
        self.networks[network_id] = network
        return network

    def mutations(self) -> list[tuple[str, tuple[object, ...]]]:
        return [call for call in self.calls if call[0] in MUTATING]

    # ------------------------------------------------------------ DockerApi

    def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        self.calls.append(("list_containers", (dict(labels),)))
        return [
            container
            for container in self.containers.values()
            if (container.running or container.paused)
            and all(container.labels.get(key) == value for key, value in labels.items())
        ]

    def inspect(self, container_id: str) -> ContainerInfo | None:
        self.calls.append(("inspect", (container_id,)))
        return self.containers.get(container_id)

    def kill(self, container_id: str, signal: str) -> None:
        self.calls.append(("kill", (container_id, signal)))
        self._set(container_id, must_run=True, running=False, status="exited", pid=0)

    def stop(self, container_id: str, timeout: int) -> None:
        self.calls.append(("stop", (container_id, timeout)))
        self._get(container_id)
        self._set(container_id, running=False, paused=False, status="exited", pid=0)

    def start(self, container_id: str) -> None:
        self.calls.append(("start", (container_id,)))
        if self._get(container_id).running:
            return  # dockerd answers 304 Not Modified: not an error
        self._set(container_id, running=True, status="running", started_at=self._tick(), pid=4242)

    def restart(self, container_id: str, timeout: int) -> None:
        self.calls.append(("restart", (container_id, timeout)))
        self._get(container_id)
        self._set(container_id, running=True, paused=False, status="running", started_at=self._tick())

    def pause(self, container_id: str) -> None:
        self.calls.append(("pause", (container_id,)))
        if self._get(container_id).paused:
            raise DockerConflict(f"container {container_id} is already paused")
        self._set(container_id, must_run=True, paused=True, status="paused")

    def unpause(self, container_id: str) -> None:
        self.calls.append(("unpause", (container_id,)))
        if not self._get(container_id).paused:
            raise DockerConflict(f"container {container_id} is not paused")
        self._set(container_id, paused=False, status="running")

    def network(self, name_or_id: str) -> NetworkInfo | None:
        self.calls.append(("network", (name_or_id,)))
        for network in self.networks.values():
            if name_or_id in (network.id, network.name):
                return network
        return None

    def disconnect(self, network_id: str, container_id: str) -> None:
        self.calls.append(("disconnect", (network_id, container_id)))
        container = self._get(container_id)
        network = self.networks[network_id]
        if network.name not in container.networks:
            raise ContainerGone(f"container {container_id} is not connected to network {network.name}")
        networks = {name: value for name, value in container.networks.items() if name != network.name}
        self.containers[container_id] = replace(container, networks=networks)
        members = tuple(member for member in network.members if member.container_id != container_id)
        self.networks[network_id] = replace(network, members=members)

    def connect(self, network_id: str, container_id: str, attachment: NetworkAttachment) -> None:
        self.calls.append(("connect", (network_id, container_id, attachment)))
        container = self._get(container_id)
        network = self.networks[network_id]
        if network.name in container.networks:
            raise DockerConflict(f"endpoint {container.name} already exists in network {network.name}")
        attached = replace(attachment, network=network.name, network_id=network_id)
        networks = {**container.networks, network.name: attached}
        self.containers[container_id] = replace(container, networks=networks)
        self._join(self.containers[container_id], attached)

    def exec(self, container_id: str, argv: Sequence[str]) -> ExecResult:
        self.calls.append(("exec", (container_id, tuple(argv))))
        self._get(container_id)
        return self.exec_handler(container_id, argv)

    def exec_detached(self, container_id: str, argv: Sequence[str]) -> str:
        self.calls.append(("exec_detached", (container_id, tuple(argv))))
        self.exec_handler(container_id, argv)
        return f"exec-{next(self._clock)}"

    def exec_state(self, exec_id: str) -> tuple[bool, int | None]:
        return True, None

    def close(self) -> None:
        self.calls.append(("close", ()))

    # ------------------------------------------------------------ internals

    def _get(self, container_id: str) -> ContainerInfo:
        container = self.containers.get(container_id)
        if container is None:
            raise ContainerGone(f"no such container: {container_id}")
        return container

    def _set(self, container_id: str, *, must_run: bool = False, **changes: object) -> None:
        container = self._get(container_id)
        if must_run and not container.running:
            raise DockerConflict(f"container {container_id} is not running")
        self.containers[container_id] = replace(container, **changes)  # type: ignore[arg-type]

    def _tick(self) -> str:
        moment = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=next(self._clock))
        return moment.isoformat().replace("+00:00", ".000000001Z")

    def _join(self, container: ContainerInfo, attachment: NetworkAttachment) -> None:
        for network_id, network in self.networks.items():
            if attachment.network in (network.name, network.id) or attachment.network_id == network_id:
                member = NetworkMember(container.id, container.name, attachment.ip_address)
                others = tuple(m for m in network.members if m.container_id != container.id)
                self.networks[network_id] = replace(network, members=(*others, member))


def make_container(
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    restart_policy: str = "no",
    networks: Mapping[str, NetworkAttachment] | None = None,
    **changes: object,
) -> ContainerInfo:
    """A running container snapshot with a stable fake id derived from its name."""
    container_id = (name.encode().hex() * 64)[:64]
    info = ContainerInfo(
        id=container_id,
        name=name,
        labels=dict(labels or {}),
        pid=999_999_999,
        started_at="2030-01-01T00:00:00.000000001Z",
        restart_policy=restart_policy,
        networks=dict(networks or {}),
    )
    return replace(info, **changes)  # type: ignore[arg-type]
