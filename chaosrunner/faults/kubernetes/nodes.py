"""``kubernetes.node-cordon`` and ``kubernetes.node-drain``: take nodes out of scheduling.

Cordon sets ``spec.unschedulable``; drain cordons and then evicts the node's
pods through the eviction API, so PodDisruptionBudgets are honoured (a refused
eviction is retried for ``eviction_timeout``, then recorded as refused, as
``kubectl drain`` would report it). While evictions wait on a budget, a
warning line names the budget and a pod it refuses (once per budget); the
record's ``refused`` maps each budget to the pods it still refused at the end,
and each outcome names its budget. Revert uncordons; evicted pods come back
through their controllers, wherever the scheduler puts them.

The mark travels with the node: the patch that cordons also sets the label
``chaosrunner.io/run-id`` and the annotation ``chaosrunner.io/cordoned-by``
(guarded by the node's resourceVersion), and revert uncordons only a node
that carries our annotation - never one an operator cordoned. The sweep finds
cordoned nodes by the label when the journal is lost. Dead-man's switch: the
watchdog (``fault``).

An abort during the wait: the engine calls ``halt()`` before reverting, and
the drain cordons no further node and sends no further eviction (a request
already in flight still lands); the record says ``halted``.

Safety, in ``plan``:

- nodes already unschedulable are left alone (they are not ours to uncordon);
- control-plane nodes are refused unless ``allow_control_plane``;
- ``keep_schedulable`` (default 1): refused when fewer schedulable nodes
  would remain;
- drain evicts only pods in namespaces the allowlist permits; pods elsewhere,
  DaemonSet and static pods, and bare pods (nothing would recreate them, unless
  ``evict_bare_pods``) stay and are named in the plan.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from pydantic import Field

from chaosrunner.durations import Duration
from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults.base import FaultPlan, FaultRequest, RevertRecord, TargetRef, choose_targets
from chaosrunner.faults.kubernetes import ownership
from chaosrunner.faults.kubernetes.api import Conflict, Invalid, KubeApi, NotFound, Obj
from chaosrunner.faults.kubernetes.fault import KubeFaultParams, KubernetesFault
from chaosrunner.faults.kubernetes.pods import KillMode, RefusalReporter, kill_pod, refusals
from chaosrunner.faults.kubernetes.selection import NodeSelector, PodInfo, namespace_allowed
from chaosrunner.faults.registry import register

log = logging.getLogger(__name__)

CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")


class CordonParams(KubeFaultParams):
    keep_schedulable: int = Field(
        1, ge=0, description="refuse the plan when fewer than this many schedulable nodes would remain"
    )
    allow_control_plane: bool = Field(False, description="allow control-plane nodes to be chosen")


class DrainParams(CordonParams):
    grace_period: Duration | None = Field(
        None, description="termination grace period for evicted pods; default: each pod's own"
    )
    concurrency: int = Field(5, ge=1, le=32, description="evictions in flight at once, at most")
    eviction_timeout: Duration = Field(
        timedelta(minutes=1), description="retry evictions a PodDisruptionBudget refuses for this long"
    )
    evict_bare_pods: bool = Field(
        False, description="also evict pods no controller owns (nothing will recreate them)"
    )


def is_control_plane(node: Obj) -> bool:
    return any(label in ownership.labels_of(node) for label in CONTROL_PLANE_LABELS)


def schedulable(node: Obj) -> bool:
    return not (node.get("spec") or {}).get("unschedulable")


def drain_refusal(pod: PodInfo, evict_bare: bool) -> str | None:
    """Why drain leaves this pod on the node (None: evict it)."""
    if pod.terminating or pod.phase in ("Succeeded", "Failed"):
        return "is already ending"
    if pod.mirror:
        return "is a static pod"
    if pod.controller and pod.controller[0] == "DaemonSet":
        return "belongs to a DaemonSet"
    if pod.ours:
        return "is chaosrunner's own"
    if pod.protected:
        return f"is labelled {ownership.PROTECT}=true"
    if pod.controller is None and not evict_bare:
        return "has no controller to recreate it (evict_bare_pods: true to evict it anyway)"
    return None


@register
class NodeCordon(KubernetesFault):
    kind = "kubernetes.node-cordon"
    summary = "Mark nodes unschedulable (cordon); revert uncordons the nodes it cordoned."
    Params = CordonParams
    Selector = NodeSelector
    arms_watchdog = True

    def plan(self, request: FaultRequest) -> FaultPlan:
        params = request.params
        assert isinstance(params, CordonParams)
        target = self.target_of(request)
        with self.kube(target) as api:
            chosen, excluded = self.choose_nodes(api, request, params)
            extra = self.plan_extra(api, request, chosen)
        record = self.spine(
            request,
            target,
            nodes=[{"name": node["metadata"]["name"], "uid": node["metadata"]["uid"]} for node in chosen],
            **extra,
        )
        shown = ", ".join(node["metadata"]["name"] for node in chosen)
        note = f" (left alone: {'; '.join(excluded)})" if excluded else ""
        summary = f"{self.verb()} {shown}{self.detail(extra)}{note}"
        targets = [TargetRef(id=node["metadata"]["uid"], name=node["metadata"]["name"]) for node in chosen]
        return self.plan_for(request, targets, record, summary)

    def verb(self) -> str:
        return "cordon"

    def detail(self, extra: dict[str, Any]) -> str:
        return ""

    def plan_extra(self, api: KubeApi, request: FaultRequest, chosen: list[Obj]) -> dict[str, Any]:
        return {}

    def choose_nodes(
        self, api: KubeApi, request: FaultRequest, params: CordonParams
    ) -> tuple[list[Obj], list[str]]:
        selector = request.selector
        assert isinstance(selector, NodeSelector)
        try:
            every = api.list("nodes")
            matched = api.list("nodes", labels=selector.label_query(), fields=selector.field_selector)
        except Invalid as exc:
            raise PlanRefused(f"fault {request.name!r}: the API server refused the selector: {exc}") from exc
        candidates, excluded = [], []
        for node in matched:
            name = node["metadata"]["name"]
            if selector.name and not fnmatch.fnmatchcase(name, selector.name):
                continue
            if ownership.is_protected(node):
                excluded.append(f"{name} is labelled {ownership.PROTECT}=true")
            elif not schedulable(node):
                excluded.append(f"{name} is already unschedulable (not ours to uncordon)")
            elif is_control_plane(node) and not params.allow_control_plane:
                excluded.append(f"{name} is a control-plane node (allow_control_plane: true to allow it)")
            else:
                candidates.append(node)
        candidates.sort(key=lambda node: node["metadata"]["name"])
        chosen = choose_targets(request.name, candidates, request.blast_radius)
        remaining = sum(1 for node in every if schedulable(node)) - len(chosen)
        if remaining < params.keep_schedulable:
            raise PlanRefused(
                f"fault {request.name!r}: would leave {remaining} schedulable node(s), fewer than "
                f"keep_schedulable={params.keep_schedulable}"
            )
        return chosen, excluded

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = self.arm_watchdog(plan.revert_record)
        with self.kube(record["connection"]) as api:
            cordoned = []
            for node in record["nodes"]:
                if self.halted():
                    break  # an abort: the revert uncordons what is cordoned; cordon nothing more
                if cordon(api, node, record["run_id"]):
                    cordoned.append(node["name"])
            record = {**record, "cordoned": cordoned}
            if self.halted():
                return {**record, "halted": True}
            return self.after_cordon(api, record)

    def after_cordon(self, api: KubeApi, record: RevertRecord) -> RevertRecord:
        return record

    def revert(self, record: RevertRecord) -> None:
        self.disarm_watchdog(record)
        with self.kube(record["connection"]) as api:
            for node in record["nodes"]:
                uncordon(api, node["name"], record["run_id"])

    def check(self, record: RevertRecord) -> bool:
        with self.kube(record["connection"]) as api:
            for node in record["nodes"]:
                try:
                    current = api.get("nodes", node["name"])
                except NotFound:
                    continue
                if cordoned_by(current, record["run_id"]) and not schedulable(current):
                    return True
        return False


def cordoned_by(node: Obj, run_id: str) -> bool:
    return ownership.annotations_of(node).get(ownership.CORDONED) == ownership.label_value(run_id)


def cordon(api: KubeApi, node: dict[str, str], run_id: str) -> bool:
    """Cordon and mark a node, unless someone else made it unschedulable meanwhile. True when we did."""
    try:
        current = api.get("nodes", node["name"])
    except NotFound:
        return False
    meta = current["metadata"]
    if meta["uid"] != node["uid"]:
        return False
    if cordoned_by(current, run_id):
        return True  # an inject retried after a crash
    if not schedulable(current):
        return False
    value = ownership.label_value(run_id)
    patch = {
        "metadata": {
            "resourceVersion": meta["resourceVersion"],
            "labels": {ownership.RUN_ID: value},
            "annotations": {ownership.CORDONED: value},
        },
        "spec": {"unschedulable": True},
    }
    try:
        api.patch("nodes", node["name"], patch)
    except Conflict as exc:
        raise FaultError(f"node {node['name']} changed while being cordoned; retry the run") from exc
    return True


def uncordon(api: KubeApi, name: str, run_id: str) -> bool:
    """Uncordon a node that ``run_id`` cordoned, and drop the marks. Idempotent."""
    try:
        current = api.get("nodes", name)
    except NotFound:
        return False
    if not cordoned_by(current, run_id):
        return False
    patch = {
        "metadata": {"labels": {ownership.RUN_ID: None}, "annotations": {ownership.CORDONED: None}},
        "spec": {"unschedulable": False},
    }
    api.patch("nodes", name, patch)
    return True


@register
class NodeDrain(NodeCordon):
    kind = "kubernetes.node-drain"
    summary = (
        "Cordon nodes and evict their pods (honouring PodDisruptionBudgets, allowed namespaces only); "
        "revert uncordons them."
    )
    Params = DrainParams

    def verb(self) -> str:
        return "drain"

    def detail(self, extra: dict[str, Any]) -> str:
        left = extra.get("left_alone") or []
        stays = f"; {len(left)} stay: " + "; ".join(left[:5]) if left else ""
        return f" ({len(extra.get('evict', []))} pod(s) to evict{stays})"

    def plan_extra(self, api: KubeApi, request: FaultRequest, chosen: list[Obj]) -> dict[str, Any]:
        params = request.params
        assert isinstance(params, DrainParams)
        allowed = list(request.connections.kubernetes.allowed_namespaces)
        evict, left = [], []
        for node in chosen:
            pods, stays = _drainable(api, node["metadata"]["name"], allowed, params.evict_bare_pods)
            evict += pods
            left += stays
        return {
            "allowed_namespaces": allowed,
            "evict_bare_pods": params.evict_bare_pods,
            "grace_seconds": None
            if params.grace_period is None
            else int(params.grace_period.total_seconds()),
            "concurrency": params.concurrency,
            "eviction_timeout": params.eviction_timeout.total_seconds(),
            "evict": evict,
            "left_alone": left,
        }

    def after_cordon(self, api: KubeApi, record: RevertRecord) -> RevertRecord:
        # Listed again now that the nodes are cordoned: pods scheduled since the plan go too.
        pods: list[dict[str, str]] = []
        for name in record["cordoned"]:
            found, _ = _drainable(api, name, record["allowed_namespaces"], record["evict_bare_pods"])
            pods += found
        eviction_version = api.policy().eviction
        retry_for = float(record["eviction_timeout"])
        reporter = RefusalReporter(record["fault"], retry_for)
        workers = max(1, min(int(record["concurrency"]), len(pods) or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drain") as pool:
            outcomes = list(
                pool.map(
                    lambda pod: kill_pod(
                        api,
                        pod["namespace"],
                        pod,
                        mode=KillMode.EVICT,
                        grace=record["grace_seconds"],
                        eviction_version=eviction_version,
                        retry_for=retry_for,
                        halted=self.halted,
                        on_refused=reporter,
                    ),
                    pods,
                )
            )
        result = {**record, "drained_at": time.time(), "outcomes": outcomes}
        refused = refusals(outcomes)
        if refused:
            result["refused"] = refused
            for budget, where in refused.items():
                log.warning(
                    "fault %s: PodDisruptionBudget %s still refused evicting %d pod(s) after %gs: %s",
                    record["fault"],
                    budget,
                    len(where),
                    retry_for,
                    ", ".join(where[:5]) + (" ..." if len(where) > 5 else ""),
                )
        if self.halted():
            result["halted"] = True
        return result

    def outcome(self, record: RevertRecord) -> list[dict[str, Any]] | None:
        """Per drained node: pods evicted, held back by a budget, refused; schedulable again or not."""
        if "outcomes" not in record:
            return None  # halted before the evictions: nothing to tell beyond the revert
        with self.kube(record["connection"]) as api:
            return [
                drain_outcome(name, record["outcomes"], _schedulable_now(api, name))
                for name in record.get("cordoned") or []
            ]


def drain_outcome(node: str, outcomes: list[dict[str, Any]], schedulable_now: bool | None) -> dict[str, Any]:
    """One node's aftermath (pure): counts by outcome, the budgets' longest hold, and one line."""
    mine = [outcome for outcome in outcomes if outcome.get("node") == node]
    counts = Counter(outcome["outcome"] for outcome in mine)
    held = [outcome["took"] for outcome in mine if "held_by" in outcome]
    parts = [f"{counts.get('killed', 0)} evicted"]
    if held:
        parts[0] += f" ({len(held)} held back by a PodDisruptionBudget, {max(held):.1f}s at most)"
    if counts.get("refused"):
        parts.append(f"{counts['refused']} refused by a PodDisruptionBudget")
    for outcome, said in (
        ("halted", "not evicted: halted first"),
        ("gone", "gone already"),
        ("failed", "failed"),
    ):
        if counts.get(outcome):
            parts.append(f"{counts[outcome]} {said}")
    state = {True: "schedulable again", False: "STILL CORDONED", None: "no longer in the cluster"}
    parts.append(state[schedulable_now])
    return {
        "node": node,
        "evicted": counts.get("killed", 0),
        "held_back": len(held),
        "longest_hold_seconds": round(max(held), 3) if held else None,
        "refused": counts.get("refused", 0),
        "schedulable": schedulable_now,
        "summary": f"{node}: " + ", ".join(parts),
    }


def _schedulable_now(api: KubeApi, name: str) -> bool | None:
    try:
        return schedulable(api.get("nodes", name))
    except NotFound:
        return None


def _drainable(
    api: KubeApi, node: str, allowed: list[str], evict_bare: bool
) -> tuple[list[dict[str, str]], list[str]]:
    evict, stays = [], []
    verdicts: dict[str, bool] = {}
    for raw in api.list("pods", None, fields=f"spec.nodeName={node}"):
        pod = PodInfo.parse(raw)
        why = drain_refusal(pod, evict_bare)
        if why is None:
            if pod.namespace not in verdicts:
                verdicts[pod.namespace] = namespace_allowed(api, pod.namespace, allowed)
            if not verdicts[pod.namespace]:
                why = "is in a namespace faults may not touch"
        if why:
            if not ownership.is_ours(raw):
                stays.append(f"{pod.ref} {why}")
            continue
        evict.append({"namespace": pod.namespace, "name": pod.name, "uid": pod.uid, "node": node})
    return evict, stays
