"""``kubernetes.pod-kill`` and ``kubernetes.container-kill``: replicas die, controllers bring them back.

``pod-kill``
    Deletes the chosen pods (``mode: delete``, with the grace period given or
    each pod's own), or asks the eviction API (``mode: evict``), which
    honours PodDisruptionBudgets: an eviction a budget refuses (HTTP 429) is
    retried for ``eviction_retry`` and then recorded as refused - the budget
    did its job, which is a finding, not an error; only when *no* pod could be
    killed does inject fail. Deletions run on a bounded thread pool
    (``concurrency``), each with the pod's uid as a precondition, so a
    StatefulSet's replacement (same name, new uid) is never hit by mistake.
    Then, with ``measure_recovery``, inject follows each owner until it is
    fully available again (``workloads.measure_recovery``) and returns the
    times in the revert record, which the journal keeps (``fault_injected``);
    ``killed_at`` in the record is the moment of the first kill, the real
    start of the fault.
``container-kill``
    Signals one container's first process (SIGKILL by default) from a node
    pod with ``hostPID`` (``agents``): a container's PID 1 ignores a SIGKILL
    sent from inside its own PID namespace, so ``kubectl exec ... kill 1``
    cannot do it. The kubelet restarts the container by the pod's restart
    policy; with ``measure_recovery`` inject waits for the restart and
    records how long it took.

Nothing to undo for either: revert only removes a leftover agent pod, and is
a no-op otherwise. ``check`` is true while an owner (pod-kill) or a killed
container (container-kill) has not recovered.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field

from chaosrunner.durations import Duration, format_duration
from chaosrunner.errors import FaultError
from chaosrunner.faults.base import (
    IN_EFFECT_SINCE,
    FaultParams,
    FaultPlan,
    FaultRequest,
    RevertRecord,
    TargetRef,
)
from chaosrunner.faults.kubernetes import agents, ownership
from chaosrunner.faults.kubernetes.agents import AgentParams, AgentRef, Placement, agent_argv
from chaosrunner.faults.kubernetes.api import Conflict, KubeApi, KubeStatus, NotFound, Obj, TooManyRequests
from chaosrunner.faults.kubernetes.fault import KubernetesFault
from chaosrunner.faults.kubernetes.selection import (
    OwnerRef,
    PodInfo,
    PodSelector,
    names,
    pods_for,
    running,
    workload_of,
)
from chaosrunner.faults.kubernetes.workloads import PLURALS, fully_available, measure_recovery
from chaosrunner.faults.registry import register

EVICTION_V1_FROM = (1, 22)
"""policy/v1 Eviction from 1.22; policy/v1beta1 before."""
EVICTION_RETRY_PAUSE = 0.5


class KillMode(StrEnum):
    DELETE = "delete"
    EVICT = "evict"


class RecoveryParams(FaultParams):
    measure_recovery: bool = Field(
        True,
        description="after killing, wait until the owners are fully available again and journal the time",
    )
    recovery_timeout: Duration = Field(
        timedelta(minutes=5),
        description="stop waiting for the recovery after this long (recorded as unrecovered)",
    )


class PodKillParams(RecoveryParams):
    mode: KillMode = Field(
        KillMode.DELETE,
        description="delete (DELETE the pod) or evict (the eviction API, honouring PodDisruptionBudgets)",
    )
    grace_period: Duration | None = Field(
        None, description="termination grace period given to each pod (0s: at once); default: the pod's own"
    )
    concurrency: int = Field(10, ge=1, le=32, description="pods deleted at the same time, at most")
    eviction_retry: Duration = Field(
        timedelta(0), description="evict mode: retry evictions a PodDisruptionBudget refuses for this long"
    )


def eviction_body(namespace: str, name: str, uid: str, grace: int | None, version: tuple[int, int]) -> Obj:
    options: Obj = {"preconditions": {"uid": uid}}
    if grace is not None:
        options["gracePeriodSeconds"] = grace
    return {
        "apiVersion": "policy/v1" if version >= EVICTION_V1_FROM else "policy/v1beta1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
        "deleteOptions": options,
    }


def kill_pod(
    api: KubeApi,
    namespace: str,
    pod: dict[str, Any],
    *,
    mode: str,
    grace: int | None,
    version: tuple[int, int],
    retry_for: float = 0.0,
) -> dict[str, Any]:
    """Delete or evict one pod; returns what happened (killed, gone, refused, failed) and when."""
    began = time.monotonic()
    give_up = began + retry_for
    while True:
        try:
            if mode == KillMode.EVICT:
                body = eviction_body(namespace, pod["name"], pod["uid"], grace, version)
                api.create("pods", body, namespace, name=pod["name"], subresource="eviction")
            elif not api.delete("pods", pod["name"], namespace, grace_seconds=grace, uid=pod["uid"]):
                return {**pod, "outcome": "gone", "detail": "already deleted"}
            return {**pod, "outcome": "killed", "at": time.time(), "took": round(time.monotonic() - began, 3)}
        except NotFound:
            return {**pod, "outcome": "gone", "detail": "already deleted"}
        except Conflict:
            return {**pod, "outcome": "gone", "detail": "replaced by a new pod of the same name"}
        except TooManyRequests as exc:
            if time.monotonic() >= give_up:
                return {**pod, "outcome": "refused", "detail": f"refused by a PodDisruptionBudget: {exc}"}
            time.sleep(EVICTION_RETRY_PAUSE)
        except KubeStatus as exc:  # forbidden, a namespace being deleted ...: one pod's failure, recorded
            return {**pod, "outcome": "failed", "detail": str(exc)}


@register
class PodKill(KubernetesFault):
    kind = "kubernetes.pod-kill"
    summary = (
        "Delete (or evict, honouring PodDisruptionBudgets) pods and journal how long their owners take to be "
        "fully available again; nothing to revert."
    )
    Params = PodKillParams
    Selector = PodSelector

    def plan(self, request: FaultRequest) -> FaultPlan:
        params = request.params
        assert isinstance(params, PodKillParams) and isinstance(request.selector, PodSelector)
        target = self.target_of(request)
        with self.kube(target) as api:
            chosen = pods_for(api, request, running)
            owners = {pod.uid: workload_of(api, pod) for pod in chosen.targets}
            version = api.server_version()
        grace = None if params.grace_period is None else int(params.grace_period.total_seconds())
        record = self.spine(
            request,
            target,
            namespace=chosen.namespace,
            version=list(version),
            mode=params.mode.value,
            grace_seconds=grace,
            concurrency=params.concurrency,
            eviction_retry=params.eviction_retry.total_seconds(),
            measure_recovery=params.measure_recovery,
            recovery_timeout=params.recovery_timeout.total_seconds(),
            pods=[_pod_entry(pod, owners[pod.uid]) for pod in chosen.targets],
        )
        how = "evict" if params.mode is KillMode.EVICT else "delete"
        given = (
            f" with a {format_duration(params.grace_period)} grace period"
            if params.grace_period is not None
            else ""
        )
        summary = f"{how} {names(chosen.targets)} in {chosen.namespace}{given}{chosen.note()}"
        targets = [TargetRef(id=pod.uid, name=pod.ref) for pod in chosen.targets]
        return self.plan_for(request, targets, record, summary)

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = dict(plan.revert_record)
        namespace = record["namespace"]
        version = (record["version"][0], record["version"][1])
        with self.kube(record["connection"]) as api:
            workers = max(1, min(int(record["concurrency"]), len(record["pods"])))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pod-kill") as pool:
                # Open the pool's connections (TLS handshakes) before the first kill, not during.
                list(pool.map(lambda _: api.get("namespaces", namespace), range(workers)))
                started, killed_at = time.monotonic(), time.time()
                outcomes = list(
                    pool.map(
                        lambda pod: kill_pod(
                            api,
                            namespace,
                            pod,
                            mode=record["mode"],
                            grace=record["grace_seconds"],
                            version=version,
                            retry_for=float(record["eviction_retry"]),
                        ),
                        record["pods"],
                    )
                )
            record["deletion_seconds"] = round(time.monotonic() - started, 3)
            record["killed_at"] = killed_at
            record[IN_EFFECT_SINCE] = killed_at
            record["outcomes"] = outcomes
            killed = [outcome for outcome in outcomes if outcome["outcome"] == "killed"]
            if not killed:
                reasons = "; ".join(f"{o['name']}: {o.get('detail', o['outcome'])}" for o in outcomes)
                raise FaultError(f"no pod was killed ({reasons})")
            if record["measure_recovery"]:
                record["recovery"] = self._recovery(api, killed, started, float(record["recovery_timeout"]))
        return record

    @staticmethod
    def _recovery(
        api: KubeApi, killed: list[dict[str, Any]], started: float, timeout: float
    ) -> list[dict[str, Any]]:
        owners: dict[str, OwnerRef] = {}
        for pod in killed:
            if pod.get("owner"):
                owner = OwnerRef(**pod["owner"])
                owners[owner.key] = owner
        uids = {pod["uid"] for pod in killed}
        if not owners:
            return []
        with ThreadPoolExecutor(max_workers=len(owners), thread_name_prefix="recovery") as pool:
            measured = pool.map(
                lambda owner: measure_recovery(api, owner, uids, started, timeout), owners.values()
            )
            return [recovery.as_dict() for recovery in measured]

    def revert(self, record: RevertRecord) -> None:
        """A killed pod cannot be brought back by us: its controller does that. Nothing to undo."""

    def check(self, record: RevertRecord) -> bool:
        owners = {pod["owner"]["name"]: pod["owner"] for pod in record.get("pods", []) if pod.get("owner")}
        if not record.get("outcomes"):
            return False
        with self.kube(record["connection"]) as api:
            for owner in owners.values():
                plural = PLURALS.get(owner["kind"])
                if plural is None:
                    continue
                try:
                    if not fully_available(owner["kind"], api.get(plural, owner["name"], owner["namespace"])):
                        return True
                except NotFound:
                    continue
        return False


def _pod_entry(pod: PodInfo, owner: OwnerRef | None) -> dict[str, Any]:
    return {"name": pod.name, "uid": pod.uid, "owner": owner.as_dict() if owner else None}


# ============================================================================= container-kill


class Signal(StrEnum):
    KILL = "KILL"
    TERM = "TERM"
    INT = "INT"


class ContainerKillParams(AgentParams, RecoveryParams):
    container: str | None = Field(
        None, min_length=1, description="name of the container to kill; default: the pod's first container"
    )
    signal: Signal = Field(
        Signal.KILL, description="signal sent to the container's first process: KILL, TERM or INT"
    )


def container_ready(pod: Obj, container: str, restarts_before: int) -> bool:
    for entry in (pod.get("status") or {}).get("containerStatuses") or []:
        if entry.get("name") == container:
            return (
                int(entry.get("restartCount", 0)) > restarts_before
                and "running" in (entry.get("state") or {})
                and bool(entry.get("ready"))
            )
    return False


@register
class ContainerKill(KubernetesFault):
    kind = "kubernetes.container-kill"
    summary = (
        "Kill one container of pods (its first process, from a hostPID agent pod on the node); the kubelet "
        "restarts it and the restart time is journaled; nothing to revert."
    )
    Params = ContainerKillParams
    Selector = PodSelector

    def plan(self, request: FaultRequest) -> FaultPlan:
        params = request.params
        assert isinstance(params, ContainerKillParams) and isinstance(request.selector, PodSelector)

        def suitable(pod: PodInfo) -> str | None:
            why = running(pod)
            name = params.container or (pod.container_names() or [""])[0]
            if why is None and name not in pod.containers:
                why = f"has no running container {name!r}"
            return why

        target = self.target_of(request)
        with self.kube(target) as api:
            chosen = pods_for(api, request, suitable)
        entries = []
        for pod in chosen.targets:
            name = params.container or pod.container_names()[0]
            agent = AgentRef(
                Placement.NODE,
                pod.namespace,
                ownership.object_name("kill", request.run_id, request.name, pod.uid),
                agents.AGENT_CONTAINER,
            )
            entries.append(
                {
                    "pod": pod.name,
                    "uid": pod.uid,
                    "node": pod.node,
                    "container": name,
                    "container_id": pod.containers[name],
                    "restarts": pod.restarts.get(name, 0),
                    "agent": agent.as_dict(),
                }
            )
        record = self.spine(
            request,
            target,
            namespace=chosen.namespace,
            signal=params.signal.value,
            image=params.agent_image,
            pull_policy=params.image_pull_policy.value,
            start_timeout=params.agent_start_timeout.total_seconds(),
            measure_recovery=params.measure_recovery,
            recovery_timeout=params.recovery_timeout.total_seconds(),
            targets=entries,
        )
        shown = ", ".join(f"{entry['pod']} [{entry['container']}]" for entry in entries)
        summary = f"send SIG{params.signal.value} to {shown} in {chosen.namespace}{chosen.note()}"
        targets = [TargetRef(id=pod.uid, name=pod.ref) for pod in chosen.targets]
        return self.plan_for(request, targets, record, summary)

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = dict(plan.revert_record)
        labels = ownership.created_labels(record["run_id"], record["fault"])
        done = []
        with self.kube(record["connection"]) as api:
            for entry in record["targets"]:
                ref = AgentRef.from_dict(entry["agent"])
                argv = agent_argv(
                    "kill",
                    f"kill:{entry['uid']}",
                    {"container_id": entry["container_id"], "signal": record["signal"]},
                )
                manifest = agents.node_pod_manifest(
                    ref.pod,
                    ref.namespace,
                    entry["node"],
                    record["image"],
                    record["pull_policy"],
                    argv,
                    labels,
                    float(record["start_timeout"]) + 60,
                    capabilities=("KILL",),
                )
                agents.launch_node_pod(api, manifest)
                try:
                    event = agents.wait_for(api, ref, {"killed"}, float(record["start_timeout"]))
                finally:
                    agents.delete_pod(api, ref, grace_seconds=0)
                result = {
                    **entry,
                    "killed_at": float(event.get("at") or time.time()),
                    "pid": event.get("pid"),
                }
                if record["measure_recovery"]:
                    result["restarted_after"] = self._restart_time(api, record, entry, result["killed_at"])
                done.append(result)
        first_kill = min((entry["killed_at"] for entry in done), default=None)
        return {**record, "targets": done, IN_EFFECT_SINCE: first_kill}

    @staticmethod
    def _restart_time(
        api: KubeApi, record: RevertRecord, entry: dict[str, Any], killed_at: float
    ) -> float | None:
        deadline = time.monotonic() + float(record["recovery_timeout"])
        fields = f"metadata.name={entry['pod']}"
        while time.monotonic() < deadline:
            for event in api.watch(
                "pods", record["namespace"], fields=fields, timeout=deadline - time.monotonic()
            ):
                if event.type == "DELETED":
                    return None  # the pod went away: there is no restart to wait for
                if event.type != "ERROR" and container_ready(
                    event.object, entry["container"], entry["restarts"]
                ):
                    return round(time.time() - killed_at, 3)
                if time.monotonic() >= deadline:
                    break
        return None

    def revert(self, record: RevertRecord) -> None:
        """The kubelet restarts the container; we only remove an agent pod a crash may have left."""
        with self.kube(record["connection"]) as api:
            for entry in record["targets"]:
                agents.delete_pod(api, AgentRef.from_dict(entry["agent"]), grace_seconds=0)

    def check(self, record: RevertRecord) -> bool:
        with self.kube(record["connection"]) as api:
            for entry in record["targets"]:
                if "killed_at" not in entry:
                    continue
                try:
                    pod = api.get("pods", entry["pod"], record["namespace"])
                except NotFound:
                    continue
                if not container_ready(pod, entry["container"], entry["restarts"]):
                    return True
        return False
