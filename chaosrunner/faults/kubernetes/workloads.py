"""Workloads: scaling a Deployment or StatefulSet, and timing how fast one recovers.

``kubernetes.deployment-scale``
    Sets ``spec.replicas`` (to 0, or any count) and restores the original on
    revert. The original count travels with the object: the same merge patch
    that changes the replicas adds the annotation
    ``chaosrunner.io/original-replicas`` and the run's label, guarded by the
    object's resourceVersion (a concurrent change makes the inject fail
    rather than record a stale original). Revert reads the annotation back,
    so it - and the sweep, with the journal lost - restores the count that
    was really there. Dead-man's switch: the watchdog (see ``fault``).
    A HorizontalPodAutoscaler that manages the workload will fight the fault;
    the docs say so.

Recovery measurement (``measure_recovery``, used by ``pod-kill``)
    After pods are killed, how long until their owner is *fully available*
    again: enough Ready replacement pods (Ready, not terminating, not one of
    the killed ones) for the desired count, and the owner's status agrees
    (``availableReplicas`` and friends, up to date with its generation). The
    pods are followed with a watch, so the moment is seen when it happens,
    not at the next poll; only the owner's status, which lags the pods by a
    controller sync, is then polled briefly.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import Field

from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults.base import FaultPlan, FaultRequest, RevertRecord, TargetRef, choose_targets
from chaosrunner.faults.kubernetes import ownership
from chaosrunner.faults.kubernetes.api import Conflict, Invalid, KubeApi, NotFound, Obj
from chaosrunner.faults.kubernetes.fault import KubeFaultParams, KubernetesFault
from chaosrunner.faults.kubernetes.selection import (
    OwnerRef,
    WorkloadSelector,
    check_namespace,
    selector_string,
)
from chaosrunner.faults.registry import register

OWNER_POLL = 0.1
RECOVERY_WATCH_SLICE = 5.0
OWNER_PATIENCE = 10.0
"""Seconds the owner's status may lag behind Ready replacement pods before we re-check the pods."""

PLURALS = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "ReplicaSet": "replicasets",
    "DaemonSet": "daemonsets",
}

# ============================================================================= recovery


def desired_count(kind: str, obj: Obj) -> int:
    if kind == "DaemonSet":
        return int((obj.get("status") or {}).get("desiredNumberScheduled") or 0)
    replicas = (obj.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def fully_available(kind: str, obj: Obj) -> bool:
    """The owner's own status says every desired replica is up, current and available."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False
    want = desired_count(kind, obj)
    if kind == "DaemonSet":
        return int(status.get("numberAvailable") or 0) >= want and not status.get("numberUnavailable")
    ready = int(status.get("readyReplicas") or 0)
    total = int(status.get("replicas") or 0)
    if kind == "StatefulSet":
        return ready >= want and total == want
    available = int(status.get("availableReplicas") or 0)
    if kind == "Deployment":
        return (
            available >= want
            and ready >= want
            and total == want
            and int(status.get("updatedReplicas") or 0) >= want
        )
    return available >= want and ready >= want


def pod_ready(pod: Obj) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@dataclass
class Recovery:
    owner: str
    desired: int
    recovered: bool = False
    seconds: float | None = None
    """From the first kill to the owner fully available again."""
    replacements: list[str] = field(default_factory=list)
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_recovery(
    api: KubeApi,
    owner: OwnerRef,
    killed_uids: set[str],
    started: float,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    halted: Callable[[], bool] = lambda: False,
) -> Recovery:
    """Follow the owner's pods until it is fully available again, or ``timeout`` from ``started``.

    Watches last ``RECOVERY_WATCH_SLICE`` at most, so a halt (an abort) ends the wait soon.
    """
    plural = PLURALS.get(owner.kind)
    if plural is None:
        return Recovery(owner.key, 0, detail=f"{owner.kind} is not a workload chaosrunner can follow")
    try:
        obj = api.get(plural, owner.name, owner.namespace)
    except NotFound:
        return Recovery(owner.key, 0, detail="the owner no longer exists")
    recovery = Recovery(owner.key, desired_count(owner.kind, obj))
    labels = selector_string((obj.get("spec") or {}).get("selector") or {})
    deadline = started + timeout
    pods: dict[str, Obj] = {}
    while clock() < deadline and not halted():
        pods.clear()  # a watch without a resourceVersion replays every pod first: the state anew
        slice_ = max(1.0, min(RECOVERY_WATCH_SLICE, deadline - clock()))
        for event in api.watch("pods", owner.namespace, labels=labels, timeout=slice_):
            if event.type == "ERROR":
                break  # the watch expired (410 Gone): start a fresh one
            uid = str((event.object.get("metadata") or {}).get("uid"))
            if event.type == "DELETED":
                pods.pop(uid, None)
            else:
                pods[uid] = event.object
            if _enough(pods, killed_uids, recovery.desired) or clock() >= deadline:
                break
        if not _enough(pods, killed_uids, recovery.desired):
            continue
        if _owner_catches_up(api, plural, owner, deadline, clock):
            recovery.recovered = True
            recovery.seconds = round(clock() - started, 3)
            recovery.replacements = sorted(
                str(pod["metadata"]["name"])
                for uid, pod in pods.items()
                if uid not in killed_uids and pod_ready(pod)
            )
            return recovery
    recovery.detail = (
        "halted before it was fully available" if halted() else f"not fully available after {timeout:g}s"
    )
    return recovery


def _enough(pods: dict[str, Obj], killed: set[str], desired: int) -> bool:
    return sum(1 for uid, pod in pods.items() if uid not in killed and pod_ready(pod)) >= desired


def _owner_catches_up(
    api: KubeApi, plural: str, owner: OwnerRef, deadline: float, clock: Callable[[], float]
) -> bool:
    give_up = min(deadline, clock() + OWNER_PATIENCE)
    while True:
        try:
            if fully_available(owner.kind, api.get(plural, owner.name, owner.namespace)):
                return True
        except NotFound:
            return False
        if clock() >= give_up:
            return False
        time.sleep(OWNER_POLL)


# ============================================================================= deployment-scale


class WorkloadKind(StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFULSET = "StatefulSet"


class ScaleParams(KubeFaultParams):
    replicas: int = Field(
        0, ge=0, le=10_000, description="replica count while the fault lasts (0: scale to zero)"
    )
    workload: WorkloadKind = Field(WorkloadKind.DEPLOYMENT, description="Deployment or StatefulSet")


@register
class DeploymentScale(KubernetesFault):
    kind = "kubernetes.deployment-scale"
    summary = (
        "Scale Deployments (or StatefulSets) to a replica count; revert restores the original count, "
        "kept in an annotation on the object."
    )
    Params = ScaleParams
    Selector = WorkloadSelector
    arms_watchdog = True

    def plan(self, request: FaultRequest) -> FaultPlan:
        params, selector = request.params, request.selector
        assert isinstance(params, ScaleParams) and isinstance(selector, WorkloadSelector)
        connection = request.connections.kubernetes
        namespace = selector.namespace or connection.namespace
        plural = PLURALS[params.workload.value]
        target = self.target_of(request)
        with self.kube(target) as api:
            check_namespace(api, request.name, namespace, connection.allowed_namespaces)
            try:
                found = api.list(
                    plural, namespace, labels=selector.label_query(), fields=selector.field_selector
                )
            except Invalid as exc:
                raise PlanRefused(
                    f"fault {request.name!r}: the API server refused the selector: {exc}"
                ) from exc
        candidates, excluded = [], []
        for obj in found:
            meta = obj["metadata"]
            if selector.name and not fnmatch.fnmatchcase(meta["name"], selector.name):
                continue
            if ownership.is_protected(obj):
                excluded.append(f"{meta['name']} is labelled {ownership.PROTECT}=true")
            elif ownership.ORIGINAL_REPLICAS in ownership.annotations_of(obj):
                run = ownership.labels_of(obj).get(ownership.RUN_ID, "?")
                excluded.append(f"{meta['name']} is already scaled by chaosrunner run {run}")
            else:
                candidates.append(obj)
        candidates.sort(key=lambda obj: obj["metadata"]["name"])
        chosen = choose_targets(request.name, candidates, request.blast_radius)
        workloads = [
            {
                "name": obj["metadata"]["name"],
                "uid": obj["metadata"]["uid"],
                "original": desired_count(params.workload.value, obj),
            }
            for obj in chosen
        ]
        record = self.spine(
            request, target, namespace=namespace, plural=plural, replicas=params.replicas, workloads=workloads
        )
        shown = ", ".join(f"{w['name']} ({w['original']} -> {params.replicas})" for w in workloads)
        note = f" (left alone: {'; '.join(excluded)})" if excluded else ""
        summary = f"scale {params.workload.value} {shown} in {namespace}{note}"
        targets = [TargetRef(id=w["uid"], name=f"{namespace}/{w['name']}") for w in workloads]
        return self.plan_for(request, targets, record, summary)

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = self.arm_watchdog(plan.revert_record)
        namespace, plural = record["namespace"], record["plural"]
        scaled = []
        with self.kube(record["connection"]) as api:
            for workload in record["workloads"]:
                try:
                    obj = api.get(plural, workload["name"], namespace)
                except NotFound:
                    continue
                meta = obj["metadata"]
                if meta["uid"] != workload["uid"]:
                    continue  # deleted and re-created since the plan: not the planned object
                annotations = ownership.annotations_of(obj)
                if ownership.ORIGINAL_REPLICAS in annotations:
                    # Already ours (an inject retried after a crash): keep the original it recorded.
                    scaled.append({**workload, "original": int(annotations[ownership.ORIGINAL_REPLICAS])})
                    continue
                original = desired_count("Deployment", obj)
                patch = {
                    "metadata": {
                        "resourceVersion": meta["resourceVersion"],
                        "labels": {ownership.RUN_ID: ownership.label_value(record["run_id"])},
                        "annotations": {ownership.ORIGINAL_REPLICAS: str(original)},
                    },
                    "spec": {"replicas": record["replicas"]},
                }
                try:
                    api.patch(plural, workload["name"], patch, namespace)
                except Conflict as exc:
                    raise FaultError(
                        f"{plural} {namespace}/{workload['name']} changed while being scaled; retry the run"
                    ) from exc
                scaled.append({**workload, "original": original})
        return {**record, "workloads": scaled}

    def revert(self, record: RevertRecord) -> None:
        self.disarm_watchdog(record)
        with self.kube(record["connection"]) as api:
            for workload in record["workloads"]:
                restore(api, record["plural"], record["namespace"], workload["name"], record["run_id"])

    def check(self, record: RevertRecord) -> bool:
        with self.kube(record["connection"]) as api:
            for workload in record["workloads"]:
                try:
                    obj = api.get(record["plural"], workload["name"], record["namespace"])
                except NotFound:
                    continue
                if _scaled_by(obj, record["run_id"]):
                    return True
        return False


def _scaled_by(obj: Obj, run_id: str) -> bool:
    return ownership.ORIGINAL_REPLICAS in ownership.annotations_of(obj) and ownership.labels_of(obj).get(
        ownership.RUN_ID
    ) == ownership.label_value(run_id)


def restore(api: KubeApi, plural: str, namespace: str, name: str, run_id: str) -> bool:
    """Put back the replica count in the object's annotation, if ``run_id`` scaled it. Idempotent."""
    try:
        obj = api.get(plural, name, namespace)
    except NotFound:
        return False
    if not _scaled_by(obj, run_id):
        return False
    original = int(ownership.annotations_of(obj)[ownership.ORIGINAL_REPLICAS])
    patch = {
        "metadata": {
            "labels": {ownership.RUN_ID: None},
            "annotations": {ownership.ORIGINAL_REPLICAS: None},
        },
        "spec": {"replicas": original},
    }
    try:
        api.patch(plural, name, patch, namespace)
    except NotFound:
        return False
    return True
