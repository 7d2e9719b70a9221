"""The one door to the Docker Engine: every call the Docker faults make, and its errors.

This is the only module that imports the docker SDK (``.importlinter`` enforces
it). It does three things:

- wraps each Engine call the faults need in a method with a plain signature,
  answering with our snapshots (``ContainerInfo``, ``NetworkInfo``) instead of
  SDK objects, so the faults and their unit tests never see a raw dict;
- maps the SDK's exceptions onto our tree at the boundary: an unreachable
  daemon is ``ServiceUnreachable`` (exit 3, "start the daemon"), a vanished
  container is ``ContainerGone`` and a refused state change (pause a paused
  container) is ``DockerConflict`` - both ``FaultError``s that the idempotent
  reverts catch on purpose - and anything else a ``FaultError`` naming the call;
- defines ``DockerApi``, the seam: the faults take any object with these
  methods, so unit tests hand them a fake of *our* interface, never of the SDK.

The SDK is imported inside ``open_client`` so that importing the backend (to
list kinds, to validate a scenario) costs nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chaosrunner.errors import FaultError, ServiceUnreachable
from chaosrunner.faults.docker.snapshot import ContainerInfo, NetworkAttachment, NetworkInfo

REQUEST_TIMEOUT = 60
"""Seconds one Engine API call may take; a stop with a long grace period is its own timeout."""


class ContainerGone(FaultError):
    """The container (or network) does not exist (any more)."""


class DockerConflict(FaultError):
    """The Engine refused a state change that does not fit the current state (HTTP 409)."""


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


class DockerApi(Protocol):
    """What the Docker faults ask of the Engine; ``DockerClient`` is the real one."""

    @property
    def host(self) -> str: ...

    def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]: ...

    def inspect(self, container_id: str) -> ContainerInfo | None: ...

    def kill(self, container_id: str, signal: str) -> None: ...

    def stop(self, container_id: str, timeout: int) -> None: ...

    def start(self, container_id: str) -> None: ...

    def restart(self, container_id: str, timeout: int) -> None: ...

    def pause(self, container_id: str) -> None: ...

    def unpause(self, container_id: str) -> None: ...

    def network(self, name_or_id: str) -> NetworkInfo | None: ...

    def disconnect(self, network_id: str, container_id: str) -> None: ...

    def connect(self, network_id: str, container_id: str, attachment: NetworkAttachment) -> None: ...

    def exec(self, container_id: str, argv: Sequence[str]) -> ExecResult: ...

    def exec_detached(self, container_id: str, argv: Sequence[str]) -> str: ...

    def exec_state(self, exec_id: str) -> tuple[bool, int | None]: ...

    def close(self) -> None: ...


def describe_host(host: str | None) -> str:
    """The daemon address for messages: the scenario's, else DOCKER_HOST, else the default."""
    return host or os.environ.get("DOCKER_HOST") or "the local Docker socket (unix:///var/run/docker.sock)"


def open_client(host: str | None) -> DockerApi:
    """Connect to dockerd at ``host`` (None: DOCKER_HOST and the DOCKER_* variables)."""
    import docker

    where = describe_host(host)
    try:
        if host:
            sdk = docker.DockerClient(base_url=host, timeout=REQUEST_TIMEOUT)
        else:
            sdk = docker.from_env(timeout=REQUEST_TIMEOUT)
        sdk.ping()
    except Exception as exc:
        raise ServiceUnreachable(f"dockerd at {where} did not answer: {_reason(exc)}") from exc
    return DockerClient(sdk, where)


def _reason(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip() or type(exc).__name__


class DockerClient:
    """``DockerApi`` over the docker SDK; every method maps the SDK's errors."""

    def __init__(self, sdk: Any, host: str) -> None:
        self._sdk = sdk
        self._host = host

    @property
    def host(self) -> str:
        return self._host

    @contextlib.contextmanager
    def _mapped(self, action: str) -> Iterator[None]:
        import docker.errors
        import requests.exceptions

        try:
            yield
        except docker.errors.NotFound as exc:
            raise ContainerGone(f"{action}: {_reason(exc)}") from exc
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise DockerConflict(f"{action}: {_reason(exc)}") from exc
            raise FaultError(f"dockerd at {self._host} refused to {action}: {_reason(exc)}") from exc
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            raise ServiceUnreachable(f"dockerd at {self._host} failed to {action}: {_reason(exc)}") from exc

    def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """Running containers (paused ones included) carrying every label in ``labels``."""
        filters: dict[str, Any] = {"status": ["running", "paused"]}
        if labels:
            filters["label"] = [f"{key}={value}" for key, value in labels.items()]
        with self._mapped("list containers"):
            found = self._sdk.containers.list(filters=filters, ignore_removed=True)
        return [ContainerInfo.from_inspect(container.attrs) for container in found]

    def inspect(self, container_id: str) -> ContainerInfo | None:
        try:
            with self._mapped(f"inspect container {container_id[:12]}"):
                attrs = self._sdk.api.inspect_container(container_id)
        except ContainerGone:
            return None
        return ContainerInfo.from_inspect(attrs)

    def kill(self, container_id: str, signal: str) -> None:
        with self._mapped(f"send {signal} to container {container_id[:12]}"):
            self._sdk.api.kill(container_id, signal=signal)

    def stop(self, container_id: str, timeout: int) -> None:
        with self._mapped(f"stop container {container_id[:12]}"):
            self._sdk.api.stop(container_id, timeout=timeout)

    def start(self, container_id: str) -> None:
        with self._mapped(f"start container {container_id[:12]}"):
            self._sdk.api.start(container_id)

    def restart(self, container_id: str, timeout: int) -> None:
        with self._mapped(f"restart container {container_id[:12]}"):
            self._sdk.api.restart(container_id, timeout=timeout)

    def pause(self, container_id: str) -> None:
        with self._mapped(f"pause container {container_id[:12]}"):
            self._sdk.api.pause(container_id)

    def unpause(self, container_id: str) -> None:
        with self._mapped(f"unpause container {container_id[:12]}"):
            self._sdk.api.unpause(container_id)

    def network(self, name_or_id: str) -> NetworkInfo | None:
        try:
            with self._mapped(f"inspect network {name_or_id}"):
                attrs = self._sdk.api.inspect_network(name_or_id)
        except ContainerGone:
            return None
        return NetworkInfo.from_inspect(attrs)

    def disconnect(self, network_id: str, container_id: str) -> None:
        with self._mapped(f"disconnect container {container_id[:12]} from network {network_id[:12]}"):
            self._sdk.api.disconnect_container_from_network(container_id, network_id)

    def connect(self, network_id: str, container_id: str, attachment: NetworkAttachment) -> None:
        # Inspect spells links "name:alias"; the SDK wants (name, alias) pairs.
        links = [tuple(link.split(":", 1)) if ":" in link else (link, link) for link in attachment.links]
        with self._mapped(f"connect container {container_id[:12]} to network {attachment.network}"):
            self._sdk.api.connect_container_to_network(
                container_id,
                network_id,
                ipv4_address=attachment.static_ipv4,
                ipv6_address=attachment.static_ipv6,
                aliases=list(attachment.aliases) or None,
                links=links or None,
                driver_opt=dict(attachment.driver_opts) or None,
            )

    def exec(self, container_id: str, argv: Sequence[str]) -> ExecResult:
        with self._mapped(f"exec {argv[0]!r} in container {container_id[:12]}"):
            exit_code, (stdout, stderr) = self._sdk.containers.get(container_id).exec_run(
                list(argv), demux=True
            )
        return ExecResult(
            exit_code=int(exit_code if exit_code is not None else -1),
            stdout=(stdout or b"").decode(errors="replace"),
            stderr=(stderr or b"").decode(errors="replace"),
        )

    def exec_detached(self, container_id: str, argv: Sequence[str]) -> str:
        """Start ``argv`` in the container without waiting; returns the exec id."""
        with self._mapped(f"exec {argv[0]!r} in container {container_id[:12]}"):
            created = self._sdk.api.exec_create(container_id, list(argv), stdout=False, stderr=False)
            self._sdk.api.exec_start(created["Id"], detach=True)
        return str(created["Id"])

    def exec_state(self, exec_id: str) -> tuple[bool, int | None]:
        """(still running, exit code once it ended) of a detached exec."""
        with self._mapped(f"inspect exec {exec_id[:12]}"):
            state = self._sdk.api.exec_inspect(exec_id)
        return bool(state.get("Running")), state.get("ExitCode")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._sdk.close()
