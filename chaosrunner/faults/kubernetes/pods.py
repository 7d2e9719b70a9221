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
    Then inject confirms every killed pod gone (``wait_gone``: its uid no
    longer in the API; ``gone_seconds`` and ``not_gone`` in the record) and,
    at the same time, with ``measure_recovery``, follows each owner until it is
    fully available again (``workloads.measure_recovery``) and returns the
    times in the revert record, which the journal keeps (``fault_injected``);
    ``killed_at`` in the record is the moment of the first kill, the real
    start of the fault.
    Both waits are bounded and stop on a halt (an abort: ``Fault.halt``), as
    does the retry of refused evictions, which says once per budget, as a
    warning line, that it is waiting.
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

import logging
import re
import threading
import time
from collections.abc import Callable
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
from chaosrunner.faults.kubernetes.gone import DeletionWatch, never, wait_gone
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

EVICTION_RETRY_PAUSE = 0.5

log = logging.getLogger(__name__)

_BUDGET_NAMED = re.compile(r"disruption budget (\S+)")


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
    concurrency: int = Field(10, ge=1, le=64, description="pods deleted at the same time, at most")
    eviction_retry: Duration = Field(
        timedelta(0), description="evict mode: retry evictions a PodDisruptionBudget refuses for this long"
    )
    gone_timeout: Duration = Field(
        timedelta(minutes=2),
        description="after the kills, wait this long at most for every killed pod to be gone (its uid "
        "no longer in the API); pods still there are recorded as not gone",
    )


def eviction_body(namespace: str, name: str, uid: str, grace: int | None, api_version: str) -> Obj:
    """An Eviction in the version the server's discovery offers (``KubeApi.policy().eviction``)."""
    options: Obj = {"preconditions": {"uid": uid}}
    if grace is not None:
        options["gracePeriodSeconds"] = grace
    return {
        "apiVersion": api_version,
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
        "deleteOptions": options,
    }


def refusing_budget(exc: KubeStatus) -> str | None:
    """The PodDisruptionBudget a 429 names in its causes ("The disruption budget web needs ...")."""
    for cause in exc.causes:
        found = _BUDGET_NAMED.search(cause)
        if found:
            return found.group(1)
    return None


class RefusalReporter:
    """Says once per budget, through this module's logger, that evictions wait on it.

    The retry loop of a drain (or an evicting pod-kill) can wait a minute on a
    PodDisruptionBudget; the line appears while it waits, not at the end.
    """

    def __init__(self, fault: str, retry_for: float) -> None:
        self.fault = fault
        self.retry_for = retry_for
        self._told: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, pod: dict[str, Any], budget: str | None) -> None:
        key = budget or ""
        with self._lock:
            if key in self._told:
                return
            self._told.add(key)
        by = f"PodDisruptionBudget {budget}" if budget else "a PodDisruptionBudget"
        log.warning(
            "fault %s: %s refuses evicting %s/%s; retrying for up to %gs (an abort stops it)",
            self.fault,
            by,
            pod.get("namespace", ""),
            pod["name"],
            self.retry_for,
        )


def kill_pod(
    api: KubeApi,
    namespace: str,
    pod: dict[str, Any],
    *,
    mode: str,
    grace: int | None,
    eviction_version: str,
    retry_for: float = 0.0,
    halted: Callable[[], bool] = never,
    on_refused: Callable[[dict[str, Any], str | None], None] | None = None,
) -> dict[str, Any]:
    """Delete or evict one pod; returns what happened (killed, gone, refused, failed, halted) and when.

    ``halted`` is asked before every request: once true, no further request is sent.
    """
    began = time.monotonic()
    give_up = began + retry_for
    budget: str | None = None
    while True:
        if halted():
            return {**pod, "outcome": "halted", "detail": "the fault was halted (abort or revert) first"}
        try:
            if mode == KillMode.EVICT:
                body = eviction_body(namespace, pod["name"], pod["uid"], grace, eviction_version)
                api.create("pods", body, namespace, name=pod["name"], subresource="eviction")
            elif not api.delete("pods", pod["name"], namespace, grace_seconds=grace, uid=pod["uid"]):
                return {**pod, "outcome": "gone", "detail": "already deleted"}
            killed = {
                **pod,
                "outcome": "killed",
                "at": time.time(),
                "took": round(time.monotonic() - began, 3),
            }
            if budget is not None:  # refused at first, retried until the budget allowed it
                killed["held_by"] = budget or None
            return killed
        except NotFound:
            return {**pod, "outcome": "gone", "detail": "already deleted"}
        except Conflict:
            return {**pod, "outcome": "gone", "detail": "replaced by a new pod of the same name"}
        except TooManyRequests as exc:
            first = budget is None
            budget = refusing_budget(exc) or budget or ""
            if first and on_refused is not None and retry_for > 0:
                on_refused(pod, budget or None)
            if time.monotonic() >= give_up:
                by = f"PodDisruptionBudget {budget}" if budget else "a PodDisruptionBudget"
                return {
                    **pod,
                    "outcome": "refused",
                    "budget": budget or None,
                    "waited": round(time.monotonic() - began, 3),
                    "detail": f"refused by {by}: {exc}",
                }
            pause_until = min(give_up, time.monotonic() + EVICTION_RETRY_PAUSE)
            while time.monotonic() < pause_until and not halted():
                time.sleep(0.05)
        except KubeStatus as exc:  # forbidden, a namespace being deleted ...: one pod's failure, recorded
            return {**pod, "outcome": "failed", "detail": str(exc)}


def refusals(outcomes: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Budget name -> the pods it refused (``namespace/name``), for the record and the report."""
    refused: dict[str, list[str]] = {}
    for outcome in outcomes:
        if outcome["outcome"] == "refused":
            where = (
                f"{outcome['namespace']}/{outcome['name']}" if outcome.get("namespace") else outcome["name"]
            )
            refused.setdefault(outcome.get("budget") or "(unnamed)", []).append(where)
    return refused


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
            owners = owners_of(api, chosen.targets)
        grace = None if params.grace_period is None else int(params.grace_period.total_seconds())
        record = self.spine(
            request,
            target,
            namespace=chosen.namespace,
            labels=request.selector.label_query(),
            mode=params.mode.value,
            grace_seconds=grace,
            concurrency=params.concurrency,
            eviction_retry=params.eviction_retry.total_seconds(),
            gone_timeout=params.gone_timeout.total_seconds(),
            measure_recovery=params.measure_recovery,
            recovery_timeout=params.recovery_timeout.total_seconds(),
            candidates=chosen.candidates,
            nodes_hit=chosen.nodes_hit(),
            pods=[_pod_entry(pod, owners.get(pod.controller)) for pod in chosen.targets],
        )
        how = "evict" if params.mode is KillMode.EVICT else "delete"
        given = (
            f" with a {format_duration(params.grace_period)} grace period"
            if params.grace_period is not None
            else ""
        )
        summary = (
            f"{how} {names(chosen.targets)} in {chosen.namespace}{chosen.spread()}{given}{chosen.note()}"
        )
        targets = [TargetRef(id=pod.uid, name=pod.ref) for pod in chosen.targets]
        return self.plan_for(request, targets, record, summary)

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = dict(plan.revert_record)
        namespace = record["namespace"]
        # Deletions are watched from before the first kill: confirming them overlaps the kills.
        with (
            self.kube(record["connection"]) as api,
            DeletionWatch(api, namespace, record.get("labels")) as deletions,
        ):
            eviction_version = api.policy().eviction if record["mode"] == KillMode.EVICT else ""
            retry_for = float(record["eviction_retry"])
            reporter = RefusalReporter(record["fault"], retry_for)
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
                            eviction_version=eviction_version,
                            retry_for=retry_for,
                            halted=self.halted,
                            on_refused=reporter,
                        ),
                        record["pods"],
                    )
                )
            record["deletion_seconds"] = round(time.monotonic() - started, 3)
            record["killed_at"] = killed_at
            record[IN_EFFECT_SINCE] = killed_at
            record["outcomes"] = outcomes
            if any(outcome["outcome"] == "refused" for outcome in outcomes):
                record["refused"] = refusals(outcomes)
            killed = [outcome for outcome in outcomes if outcome["outcome"] == "killed"]
            if not killed:
                reasons = "; ".join(f"{o['name']}: {o.get('detail', o['outcome'])}" for o in outcomes)
                raise FaultError(f"no pod was killed ({reasons})")
            # The recovery is followed while the pods are confirmed gone, not after: its time is
            # read when the owner is whole again, so starting late would make it look slower.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recovery") as beside:
                recovery = (
                    beside.submit(self._recovery, api, killed, started, float(record["recovery_timeout"]))
                    if record["measure_recovery"]
                    else None
                )
                record.update(
                    wait_gone(
                        api,
                        namespace,
                        killed,
                        labels=record.get("labels"),
                        started=started,
                        timeout=float(record.get("gone_timeout", 120.0)),
                        halted=self.halted,
                        watched=deletions,
                    )
                )
                if recovery is not None:
                    record["recovery"] = recovery.result()
        return record

    def _recovery(
        self, api: KubeApi, killed: list[dict[str, Any]], started: float, timeout: float
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
                lambda owner: measure_recovery(api, owner, uids, started, timeout, halted=self.halted),
                owners.values(),
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
    return {"name": pod.name, "uid": pod.uid, "node": pod.node, "owner": owner.as_dict() if owner else None}


def owners_of(api: KubeApi, pods: list[PodInfo]) -> dict[tuple[str, str] | None, OwnerRef | None]:
    """Each distinct controller's workload, looked up once (1,000 pods of one Deployment: one GET)."""
    found: dict[tuple[str, str] | None, OwnerRef | None] = {}
    for pod in pods:
        if pod.controller not in found:
            found[pod.controller] = workload_of(api, pod)
    return found


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
