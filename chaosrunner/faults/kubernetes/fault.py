"""What every Kubernetes fault shares: the cluster connection, the record spine, the watchdog.

Every Kubernetes revert record starts the same way, so ``revert`` and
``check`` work from the record alone, in any process, after any crash::

    {"connection": {"kubeconfig": "/path", "context": "staging", "in_cluster": false},
     "run_id": "...", "fault": "...",
     "hold_seconds": 90.0,               # duration + deadman_grace
     ...what this kind needs to undo...,
     "watchdog": {holder record} | absent}

No token or certificate is ever in it (see ``target``).

Faults that change state nothing in the cluster will undo by itself (a
cordon, a scale-down, a NetworkPolicy) arm a *watchdog* before the change: the
Docker backend's holder process that calls this kind's ``revert`` at the
deadline if chaosrunner has not (``chaosrunner.faults.watchdog``; it is
generic, keyed by kind). It lives on the machine that runs chaosrunner.
Faults that run a process in the cluster (agents, holders) need none: the
process ends itself at its deadline, and pods carry ``activeDeadlineSeconds``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import Field

from chaosrunner.durations import Duration
from chaosrunner.faults.base import Fault, FaultParams, FaultPlan, FaultRequest, RevertRecord, TargetRef
from chaosrunner.faults.kubernetes import ownership
from chaosrunner.faults.kubernetes.api import KubeApi
from chaosrunner.faults.kubernetes.client import open_api
from chaosrunner.faults.kubernetes.target import KubeTarget, resolve

Connector = Callable[[KubeTarget], KubeApi]
"""Opens a KubeApi for a cluster; unit tests pass a fake's factory."""

UNBOUNDED_HOLD = timedelta(hours=1)
"""How long a fault without a duration (gameday mode) may outlive chaosrunner."""


class KubeFaultParams(FaultParams):
    """Params every Kubernetes fault shares: its dead-man's switch."""

    deadman_grace: Duration = Field(
        timedelta(seconds=30),
        description=(
            "dead-man's switch: if chaosrunner has not reverted the fault this long after its duration "
            "(because it died), the fault ends by itself; without a duration, 1h plus this"
        ),
    )


class KubernetesFault(Fault):
    """Base of the Kubernetes kinds: one connection per record, the record spine, the watchdog."""

    arms_watchdog: ClassVar[bool] = False

    def __init__(self, connect: Connector = open_api, *, watchdogs: bool = True) -> None:
        self._connect = connect
        self._watchdogs = watchdogs

    @contextlib.contextmanager
    def kube(self, target: KubeTarget | Mapping[str, Any]) -> Iterator[KubeApi]:
        api = self._connect(target if isinstance(target, KubeTarget) else KubeTarget.from_record(target))
        try:
            yield api
        finally:
            api.close()

    @staticmethod
    def target_of(request: FaultRequest) -> KubeTarget:
        return resolve(request.connections.kubernetes)

    @staticmethod
    def hold_seconds(request: FaultRequest) -> float:
        grace = getattr(request.params, "deadman_grace", timedelta(0))
        return (
            (request.hold_for if request.hold_for is not None else UNBOUNDED_HOLD) + grace
        ).total_seconds()

    def spine(self, request: FaultRequest, target: KubeTarget, **extra: Any) -> RevertRecord:
        return {
            "connection": target.as_record(),
            "run_id": request.run_id,
            "fault": request.name,
            "hold_seconds": self.hold_seconds(request),
            **extra,
        }

    def plan_for(
        self, request: FaultRequest, targets: list[TargetRef], record: RevertRecord, summary: str
    ) -> FaultPlan:
        return FaultPlan(
            fault=request.name, kind=self.kind, targets=targets, revert_record=record, summary=summary
        )

    # ---------------------------------------------------------------- watchdog

    def arm_watchdog(self, record: RevertRecord) -> RevertRecord:
        """The record with a running watchdog; call BEFORE the side effect so it covers it."""
        from chaosrunner.faults import watchdog

        if not (self.arms_watchdog and self._watchdogs) or record.get(watchdog.WATCHDOG_KEY):
            return dict(record)
        label = ownership.label_value(
            f"k8s-{self.kind.split('.', 1)[1]}-{record['run_id']}-{record['fault']}"
        )
        deadline = watchdog.deadline_after(timedelta(seconds=record["hold_seconds"]), timedelta(0))
        return {**record, watchdog.WATCHDOG_KEY: watchdog.arm(self.kind, record, deadline, label)}

    @staticmethod
    def disarm_watchdog(record: RevertRecord) -> None:
        from chaosrunner.faults import watchdog

        watchdog.disarm(record)
