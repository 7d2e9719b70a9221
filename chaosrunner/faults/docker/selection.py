"""Which containers a Docker fault may hit: the selector, and the safety rules.

A selector narrows the running containers of one daemon by name, labels and
Compose service; every criterion given must match (AND). An empty selector is
refused by validation: "every container on the host" is never what a scenario
means, and ``blast_radius: {mode: all}`` on it would be a disaster.

Whatever the selector says, some containers are never touched (they are
dropped from the candidates and listed in the plan, so nobody wonders why):

- labelled ``chaosrunner.protect=true`` (the owner's veto);
- labelled ``chaosrunner.holder=true`` (chaosrunner's own holders and helpers);
- the container chaosrunner itself runs in (found in /proc/self);
- a Docker daemon running in a container (docker-in-docker): breaking it
  breaks every container it runs, far beyond the blast radius.

The daemon on the host is never a candidate at all: selection only ever sees
containers. Then the blast radius picks among what is left (``choose_targets``,
which also refuses an empty match and enforces the maximum).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import BlastRadiusMode, FaultRequest, FaultSelector, choose_targets
from chaosrunner.faults.docker.client import DockerApi
from chaosrunner.faults.docker.snapshot import ContainerInfo

PROTECT_LABEL = "chaosrunner.protect"
HOLDER_LABEL = "chaosrunner.holder"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
MONKEY_LABEL = "chaosrunner.io/monkey"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
DAEMON_PROGRAMS = frozenset({"dockerd", "dockerd-entrypoint.sh", "containerd"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})
_CONTAINER_ID = re.compile(r"(?<![0-9a-f])([0-9a-f]{64})(?![0-9a-f])")


class ContainerSelector(FaultSelector):
    """Running containers of one daemon; every criterion given must match."""

    name: str | None = Field(
        None,
        min_length=1,
        description="glob on the container name, whole name (fnmatch: api-*, web-?); no leading slash",
    )
    name_regex: str | None = Field(
        None, min_length=1, description="Python regular expression that must match the WHOLE container name"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="labels the container must carry, each with exactly this value"
    )
    compose_service: str | None = Field(
        None, min_length=1, description="Compose service name (label com.docker.compose.service)"
    )
    compose_project: str | None = Field(
        None, min_length=1, description="Compose project name (label com.docker.compose.project)"
    )
    random: bool = Field(
        False,
        description="Chaos Monkey: one victim picked at random among containers that opted in with the "
        "label chaosrunner.io/monkey=enabled (combined with any other criterion given)",
    )

    @model_validator(mode="after")
    def _says_something(self) -> Self:
        if not (
            self.name
            or self.name_regex
            or self.labels
            or self.compose_service
            or self.compose_project
            or self.random
        ):
            raise ValueError(
                "a Docker selector needs at least one of name, name_regex, labels, compose_service, "
                "compose_project or random (an empty selector would match every container)"
            )
        if self.name_regex is not None:
            try:
                re.compile(self.name_regex)
            except re.error as exc:
                raise ValueError(f"name_regex is not a valid regular expression: {exc}") from exc
        return self

    def required_labels(self) -> dict[str, str]:
        """Label filters the daemon can apply itself (fewer containers to inspect)."""
        labels = dict(self.labels)
        if self.random:
            labels[MONKEY_LABEL] = "enabled"  # only containers that opted in to the monkey
        if self.compose_service:
            labels[COMPOSE_SERVICE_LABEL] = self.compose_service
        if self.compose_project:
            labels[COMPOSE_PROJECT_LABEL] = self.compose_project
        return labels

    def matches(self, container: ContainerInfo) -> bool:
        if any(container.labels.get(key) != value for key, value in self.required_labels().items()):
            return False
        if self.name is not None and not fnmatch.fnmatchcase(container.name, self.name):
            return False
        return self.name_regex is None or re.fullmatch(self.name_regex, container.name) is not None

    def describe(self) -> str:
        parts = [f"{key}={value!r}" for key, value in self.model_dump(exclude_defaults=True).items()]
        return ", ".join(parts)


def is_protected(container: ContainerInfo) -> bool:
    """``chaosrunner.protect`` set to anything but an explicit "false" protects (fail safe)."""
    value = container.labels.get(PROTECT_LABEL)
    return value is not None and value.strip().lower() not in _FALSE_WORDS


def own_container_ids(cgroup_text: str, mountinfo_text: str) -> set[str]:
    """Ids of the container this process runs in, as its /proc files reveal them.

    cgroup paths name the container (``/docker/<id>``, ``docker-<id>.scope``);
    under cgroup namespaces they do not, but Docker bind-mounts
    ``/etc/hostname`` from ``/var/lib/docker/containers/<id>/``. Only that mount
    point counts: on the host, mountinfo lists every container's mounts.
    """
    ids = set(_CONTAINER_ID.findall(cgroup_text))
    for line in mountinfo_text.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] in ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf"):
            ids.update(_CONTAINER_ID.findall(fields[3]))
    return ids


def read_own_container_ids() -> set[str]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    return own_container_ids(read("/proc/self/cgroup"), read("/proc/self/mountinfo"))


def exclusion_reason(container: ContainerInfo, own_ids: set[str]) -> str | None:
    """Why the safety rules forbid touching ``container``, or None when it may be hit."""
    if is_protected(container):
        return f"protected (label {PROTECT_LABEL}={container.labels[PROTECT_LABEL]})"
    if container.labels.get(HOLDER_LABEL, "").strip().lower() not in ("", *_FALSE_WORDS):
        return f"runs a chaosrunner holder (label {HOLDER_LABEL})"
    if container.id in own_ids:
        return "runs chaosrunner itself"
    if any(Path(part).name in DAEMON_PROGRAMS for part in container.command[:2]):
        return "runs a container daemon (docker-in-docker)"
    return None


@dataclass(frozen=True)
class Selection:
    """What the selector matched, split into what may be hit and what may not (and why)."""

    eligible: list[ContainerInfo]
    excluded: list[tuple[ContainerInfo, str]]

    def describe_exclusions(self) -> str:
        return "; ".join(f"{container.name}: {reason}" for container, reason in self.excluded)


def select(
    api: DockerApi,
    selector: ContainerSelector,
    own_ids: set[str] | None = None,
    unsuitable: Callable[[ContainerInfo], str | None] | None = None,
) -> Selection:
    """Match running containers, then drop those the safety rules (or the kind) forbid."""
    own = read_own_container_ids() if own_ids is None else own_ids
    eligible: list[ContainerInfo] = []
    excluded: list[tuple[ContainerInfo, str]] = []
    for container in api.list_containers(selector.required_labels()):
        if not selector.matches(container):
            continue
        reason = exclusion_reason(container, own) or (unsuitable(container) if unsuitable else None)
        if reason:
            excluded.append((container, reason))
        else:
            eligible.append(container)
    eligible.sort(key=lambda container: container.name)
    return Selection(eligible, excluded)


def choose(request: FaultRequest, selection: Selection) -> list[ContainerInfo]:
    """Apply the blast radius, refusing the plan with the reasons when nothing may be hit."""
    assert isinstance(request.selector, ContainerSelector)
    if not selection.eligible:
        if selection.excluded:
            raise PlanRefused(
                f"fault {request.name!r}: every container the selector matched is off limits: "
                f"{selection.describe_exclusions()}"
            )
        raise PlanRefused(
            f"fault {request.name!r}: the selector ({request.selector.describe()}) "
            "matched no running container"
        )
    if request.selector.random and request.blast_radius.mode is not BlastRadiusMode.ONE:
        raise PlanRefused(
            f"fault {request.name!r}: a random (Chaos Monkey) selector picks exactly one victim; "
            f"blast_radius mode {request.blast_radius.mode.value!r} contradicts it"
        )
    return choose_targets(request.name, selection.eligible, request.blast_radius)


def select_and_choose(
    api: DockerApi,
    request: FaultRequest,
    unsuitable: Callable[[ContainerInfo], str | None] | None = None,
    own_ids: set[str] | None = None,
) -> tuple[list[ContainerInfo], Selection]:
    if not isinstance(request.selector, ContainerSelector):
        raise PlanRefused(f"fault {request.name!r}: a Docker fault needs a container selector")
    selection = select(api, request.selector, own_ids, unsuitable)
    return choose(request, selection), selection


def names(containers: Sequence[ContainerInfo]) -> str:
    return ", ".join(container.name for container in containers)
