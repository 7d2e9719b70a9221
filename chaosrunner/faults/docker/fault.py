"""What every Docker fault shares: the daemon connection, the record layout, the watchdog.

Every Docker revert record has the same spine, so ``revert`` and ``check`` work
from the record alone, in any process, after any crash::

    {"docker_host": "unix:///..." | null,  # null: DOCKER_HOST / the local socket
     "run_id": "...", "fault": "...",
     "hold_seconds": 90.0,                 # duration + grace: the watchdog's fuse
     "containers": [{"id": ..., "name": ..., <what this kind needs to undo>}],
     "watchdog": {holder record} | absent}  # added by inject

Secrets never appear in it: a TLS-protected daemon is reached through the
DOCKER_* environment variables, which the watchdog inherits.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import Field

from chaosrunner.durations import Duration
from chaosrunner.faults import watchdog
from chaosrunner.faults.base import Fault, FaultParams, FaultPlan, FaultRequest, RevertRecord, TargetRef
from chaosrunner.faults.docker.client import DockerApi, open_client
from chaosrunner.faults.docker.selection import ContainerSelector
from chaosrunner.faults.docker.snapshot import ContainerInfo
from chaosrunner.faults.holder import find_by_label

Connector = Callable[[str | None], DockerApi]
"""Opens a DockerApi for a daemon address; tests pass a fake's factory."""

_UNSAFE_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")


class DockerFaultParams(FaultParams):
    """Params every Docker fault with a dead-man's switch shares."""

    deadman_grace: Duration = Field(
        timedelta(seconds=30),
        description=(
            "dead-man's switch: if chaosrunner has not reverted the fault this long after its "
            "duration (because it died), the fault ends by itself; without a duration, 1h plus this"
        ),
    )


class DockerFault(Fault):
    """Base of the Docker kinds: container selection, connection per record, watchdog."""

    Selector = ContainerSelector
    arms_watchdog: ClassVar[bool] = True

    def __init__(
        self,
        connect: Connector = open_client,
        own_container_ids: set[str] | None = None,
        *,
        watchdogs: bool = True,
    ) -> None:
        self._connect = connect
        self._own_container_ids = own_container_ids
        self._watchdogs = watchdogs

    @contextlib.contextmanager
    def docker(self, host: str | None) -> Iterator[DockerApi]:
        api = self._connect(host)
        try:
            yield api
        finally:
            api.close()

    @staticmethod
    def host_of(request: FaultRequest) -> str | None:
        return request.connections.docker.host

    def record_for(
        self, request: FaultRequest, containers: list[dict[str, Any]], **extra: Any
    ) -> RevertRecord:
        grace = getattr(request.params, "deadman_grace", timedelta(0))
        hold = (request.hold_for if request.hold_for is not None else watchdog.UNBOUNDED_HOLD) + grace
        return {
            "docker_host": self.host_of(request),
            "run_id": request.run_id,
            "fault": request.name,
            "hold_seconds": hold.total_seconds(),
            "containers": containers,
            **extra,
        }

    def plan_for(
        self, request: FaultRequest, targets: list[ContainerInfo], record: RevertRecord, summary: str
    ) -> FaultPlan:
        return FaultPlan(
            fault=request.name,
            kind=self.kind,
            targets=[TargetRef(id=container.id, name=container.name) for container in targets],
            revert_record=record,
            summary=summary,
        )

    def watchdog_label(self, record: RevertRecord) -> str:
        """Known before the watchdog starts, so a revert can find it from the planned record."""
        label = _UNSAFE_LABEL.sub(
            "_", f"docker-{self.kind.split('.', 1)[1]}-{record['run_id']}-{record['fault']}"
        )
        return label[:120]

    def arm_watchdog(self, record: RevertRecord) -> RevertRecord:
        """The record with a running watchdog; call BEFORE the side effect, so it covers it."""
        if not (self.arms_watchdog and self._watchdogs) or record.get(watchdog.WATCHDOG_KEY):
            return dict(record)
        deadline = watchdog.deadline_after(timedelta(seconds=record["hold_seconds"]), timedelta(0))
        label = self.watchdog_label(record)
        return {**record, watchdog.WATCHDOG_KEY: watchdog.arm(self.kind, record, deadline, label)}

    def disarm_watchdog(self, record: RevertRecord) -> None:
        """Stand the watchdog down - found by its label when the injector died before recording it.

        An orphaned watchdog would otherwise wake at its deadline and revert a
        *later* run's fault on the same container.
        """
        if record.get(watchdog.WATCHDOG_KEY) or not self.arms_watchdog or "run_id" not in record:
            watchdog.disarm(record)
            return
        for orphan in find_by_label(self.watchdog_label(record)):
            watchdog.disarm({watchdog.WATCHDOG_KEY: orphan.as_dict()})


def exclusions_note(excluded: list[tuple[ContainerInfo, str]]) -> str:
    if not excluded:
        return ""
    return " (left alone: " + "; ".join(f"{container.name} {reason}" for container, reason in excluded) + ")"
