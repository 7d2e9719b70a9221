"""Network faults on pods: a partition (NetworkPolicy), latency and loss (an agent in the pod's namespace).

``kubernetes.network-partition``
    A NetworkPolicy that selects the chosen pods and allows nothing in the
    chosen directions. The pods are chosen by the selector and the blast
    radius, so the policy cannot select them by the scenario's labels (that
    would catch every replica); each chosen pod gets the label
    ``chaosrunner.io/partition=<policy name>`` and the policy selects that.
    The policy is created first (it selects nobody yet), then the pods are
    labelled. Revert deletes the policy - the partition ends there - and then
    removes the label from every pod that carries it. A NetworkPolicy only
    acts where the cluster's network plugin enforces policies; the API
    server stores it either way (see the docs for what was verified).

``kubernetes.network-latency`` / ``kubernetes.network-loss``
    The pod's outbound traffic is slowed or lost by an agent (``agent.py``) in
    the pod's network namespace, with the Docker backend's mechanisms: tc
    netem where the node's kernel has it, else the fault proxy fed by an
    iptables REDIRECT (TCP only; "loss" resets or stalls a share of new
    connections). The agent decides on the node (``mechanism: auto``): only
    it can see that kernel. Where it runs (``placement``):
    an ephemeral container with NET_ADMIN on servers from 1.21 (earlier ones
    refuse a securityContext on ephemeral containers), else a
    node pod with ``hostPID`` that enters the namespace of the target's
    container. Dead-man's switch: the agent ends the fault at the duration
    plus ``deadman_grace``, removing its rules or qdisc; a node pod also has
    ``activeDeadlineSeconds``. Revert stops the agent early (``exec``), reads
    from its log that it cleaned up, and runs a cleanup agent if it did not
    (it was SIGKILLed).
"""

from __future__ import annotations

import contextlib
import time
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field

from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults import netem, shaping
from chaosrunner.faults.base import FaultPlan, FaultRequest, RevertRecord, TargetRef
from chaosrunner.faults.kubernetes import agents, ephemeral, ownership
from chaosrunner.faults.kubernetes.agents import AgentParams, AgentRef, Placement, agent_argv
from chaosrunner.faults.kubernetes.api import Conflict, KubeApi, NotFound
from chaosrunner.faults.kubernetes.fault import KubeFaultParams, KubernetesFault
from chaosrunner.faults.kubernetes.selection import PodInfo, PodSelector, names, pods_for
from chaosrunner.faults.proxy import redirect
from chaosrunner.faults.proxy.toxics import Toxic, ToxicSet
from chaosrunner.faults.registry import register

# ============================================================================= partition


class PartitionDirection(StrEnum):
    INGRESS = "ingress"
    EGRESS = "egress"
    BOTH = "both"


class PartitionParams(KubeFaultParams):
    direction: PartitionDirection = Field(
        PartitionDirection.BOTH, description="deny ingress, egress or both for the chosen pods"
    )


def policy_manifest(name: str, namespace: str, direction: PartitionDirection, labels: dict[str, str]) -> Any:
    """A NetworkPolicy that selects pods labelled ``partition=name`` and allows nothing in ``direction``."""
    types = {"ingress": ["Ingress"], "egress": ["Egress"], "both": ["Ingress", "Egress"]}[direction.value]
    spec: dict[str, Any] = {"podSelector": {"matchLabels": {ownership.PARTITION: name}}, "policyTypes": types}
    for policy_type in types:
        spec[policy_type.lower()] = []  # present and empty: nothing is allowed
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


@register
class NetworkPartition(KubernetesFault):
    kind = "kubernetes.network-partition"
    summary = (
        "Cut pods off the network with a deny-all NetworkPolicy (ingress, egress or both); "
        "revert deletes the policy and the pods' partition label."
    )
    Params = PartitionParams
    Selector = PodSelector
    arms_watchdog = True

    def plan(self, request: FaultRequest) -> FaultPlan:
        params = request.params
        assert isinstance(params, PartitionParams) and isinstance(request.selector, PodSelector)
        target = self.target_of(request)
        with self.kube(target) as api:
            chosen = pods_for(api, request)
        name = ownership.object_name("partition", request.run_id, request.name)
        record = self.spine(
            request,
            target,
            namespace=chosen.namespace,
            policy=name,
            direction=params.direction.value,
            pods=[{"name": pod.name, "uid": pod.uid} for pod in chosen.targets],
        )
        summary = (
            f"deny {params.direction.value} traffic of {names(chosen.targets)} in {chosen.namespace} "
            f"with NetworkPolicy {name}{chosen.note()}"
        )
        targets = [TargetRef(id=pod.uid, name=pod.ref) for pod in chosen.targets]
        return self.plan_for(request, targets, record, summary)

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = self.arm_watchdog(plan.revert_record)
        namespace, name = record["namespace"], record["policy"]
        labels = ownership.created_labels(record["run_id"], record["fault"])
        with self.kube(record["connection"]) as api:
            manifest = policy_manifest(name, namespace, PartitionDirection(record["direction"]), labels)
            with contextlib.suppress(Conflict):  # already there: an inject retried after a crash
                api.create("networkpolicies", manifest, namespace)
            missing = []
            for pod in record["pods"]:
                if not self._label(api, namespace, pod, name, record["run_id"]):
                    missing.append(pod["name"])
        return {**record, "missing": missing}

    @staticmethod
    def _label(api: KubeApi, namespace: str, pod: dict[str, str], value: str, run_id: str) -> bool:
        try:
            current = api.get("pods", pod["name"], namespace)
        except NotFound:
            return False
        if (current.get("metadata") or {}).get("uid") != pod["uid"]:
            return False  # a replacement with the same name (StatefulSet): not the planned pod
        labels = {ownership.PARTITION: value, ownership.RUN_ID: ownership.label_value(run_id)}
        api.patch("pods", pod["name"], {"metadata": {"labels": labels}}, namespace)
        return True

    def revert(self, record: RevertRecord) -> None:
        self.disarm_watchdog(record)
        namespace, name = record["namespace"], record["policy"]
        with self.kube(record["connection"]) as api:
            api.delete("networkpolicies", name, namespace)
            # By label, not from the record: it also finds pods labelled after the planned record.
            for pod in api.list("pods", namespace, labels=f"{ownership.PARTITION}={name}"):
                drop: dict[str, None] = {ownership.PARTITION: None}
                if not ownership.other_marks(pod, dropping_partition=True):
                    drop[ownership.RUN_ID] = None
                try:
                    api.patch("pods", pod["metadata"]["name"], {"metadata": {"labels": drop}}, namespace)
                except NotFound:
                    continue

    def check(self, record: RevertRecord) -> bool:
        with self.kube(record["connection"]) as api:
            try:
                api.get("networkpolicies", record["policy"], record["namespace"])
            except NotFound:
                return False
        return True


# ============================================================================= latency and loss

NODE_AGENT_CAPABILITIES = ("SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE")
"""setns into the pod's namespace, iptables and SO_MARK there, open /proc/PID/ns/net of the target."""


class PlacementChoice(StrEnum):
    AUTO = "auto"
    EPHEMERAL = "ephemeral-container"
    NODE = "node-pod"


class ShapingParams(AgentParams, shaping.TrafficFilter):
    mechanism: shaping.Mechanism = Field(
        shaping.Mechanism.AUTO,
        description="netem (tc in the pod's namespace: sch_netem on the node, tc in the agent image), "
        "proxy (TCP through the fault proxy) or auto (the agent uses netem where it can, else proxy)",
    )
    placement: PlacementChoice = Field(
        PlacementChoice.AUTO,
        description="where the agent runs: ephemeral-container (needs Kubernetes 1.21+ for NET_ADMIN), "
        "node-pod (hostPID, SYS_ADMIN and NET_ADMIN, on the target's node) or auto (ephemeral where allowed)",
    )


class LatencyParams(ShapingParams, shaping.DelayShape):
    pass


class LossParams(ShapingParams, shaping.LossShape):
    pass


def resolve_placement(fault: str, choice: PlacementChoice, version: tuple[int, int]) -> Placement:
    allowed = ephemeral.allows_security_context(version)
    if choice is PlacementChoice.NODE or (choice is PlacementChoice.AUTO and not allowed):
        return Placement.NODE
    if not allowed:
        raise PlanRefused(
            f"fault {fault!r}: Kubernetes {version[0]}.{version[1]} refuses NET_ADMIN on ephemeral "
            "containers (allowed from 1.21); use placement node-pod or auto"
        )
    return Placement.EPHEMERAL


def network_ready(pod: PodInfo) -> str | None:
    if pod.terminating:
        return "is being deleted"
    if pod.phase != "Running" or not pod.containers:
        return "has no running container"
    if pod.host_network:
        return "uses the node's network namespace (shaping it would shape the node)"
    if not pod.node:
        return "is not on a node"
    return None


class NetworkShaping(KubernetesFault):
    """Shared plan/inject/revert/check of latency and loss; subclasses say what the agent does."""

    Selector = PodSelector
    purpose: ClassVar[str] = "shape"

    def netem_shape(self, params: Any) -> netem.Netem:
        raise NotImplementedError

    def toxic(self, params: Any) -> Toxic:
        raise NotImplementedError

    def describe(self, params: Any) -> str:
        raise NotImplementedError

    def plan(self, request: FaultRequest) -> FaultPlan:
        params = request.params
        assert isinstance(params, ShapingParams) and isinstance(request.selector, PodSelector)
        target = self.target_of(request)
        with self.kube(target) as api:
            chosen = pods_for(api, request, network_ready)
            version = api.server_version()
        placement = resolve_placement(request.name, params.placement, version)
        comment = redirect.rule_comment(request.run_id, request.name)
        steering = netem.Steering(tuple(params.destinations), tuple(params.ports))
        record = self.spine(
            request,
            target,
            namespace=chosen.namespace,
            placement=placement.value,
            version=list(version),
            mechanism=params.mechanism.value,
            comment=comment,
            mark=redirect.mark_for(comment),
            ports=list(params.ports),
            destinations=list(params.destinations),
            toxics=ToxicSet(toxics=[self.toxic(params)]).model_dump(mode="json"),
            netem={
                "device": params.device,
                "commands": netem.add_commands(params.device, self.netem_shape(params), steering),
            },
            image=params.agent_image,
            pull_policy=params.image_pull_policy.value,
            start_timeout=params.agent_start_timeout.total_seconds(),
            targets=[self._planned(request, placement, pod, comment) for pod in chosen.targets],
        )
        where = "ephemeral containers" if placement is Placement.EPHEMERAL else "node pods"
        summary = (
            f"{self.describe(params)} on {names(chosen.targets)} in {chosen.namespace} "
            f"(agent in {where}, mechanism {params.mechanism.value}){chosen.note()}"
        )
        return self.plan_for(
            request, [TargetRef(id=pod.uid, name=pod.ref) for pod in chosen.targets], record, summary
        )

    def _planned(
        self, request: FaultRequest, placement: Placement, pod: PodInfo, comment: str
    ) -> dict[str, Any]:
        if placement is Placement.EPHEMERAL:
            agent = AgentRef(
                placement,
                pod.namespace,
                pod.name,
                ownership.ephemeral_name(request.run_id, request.name, "shape"),
            )
            cleaner = AgentRef(
                placement,
                pod.namespace,
                pod.name,
                ownership.ephemeral_name(request.run_id, request.name, "clean"),
            )
        else:
            agent = AgentRef(
                placement,
                pod.namespace,
                ownership.object_name("shape", request.run_id, request.name, pod.uid),
                agents.AGENT_CONTAINER,
            )
            cleaner = AgentRef(
                placement,
                pod.namespace,
                ownership.object_name("clean", request.run_id, request.name, pod.uid),
                agents.AGENT_CONTAINER,
            )
        return {
            "pod": pod.name,
            "uid": pod.uid,
            "node": pod.node,
            "container_id": next(iter(pod.containers.values())),
            "marker": f"{comment}:{pod.uid[:8]}",
            "agent": agent.as_dict(),
            "cleaner": cleaner.as_dict(),
        }

    # ---------------------------------------------------------------- inject

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = dict(plan.revert_record)
        deadline = time.time() + float(record["hold_seconds"])
        record["deadline"] = deadline
        done = []
        with self.kube(record["connection"]) as api:
            for entry in record["targets"]:
                ref = AgentRef.from_dict(entry["agent"])
                spec = self._spec(record, entry, deadline)
                self._launch(api, record, entry, ref, agent_argv("shape", entry["marker"], spec))
                ready = agents.wait_for(api, ref, {"ready"}, float(record["start_timeout"]))
                done.append({**entry, "mechanism": ready.get("mechanism")})
        return {**record, "targets": done}

    @staticmethod
    def _spec(record: RevertRecord, entry: dict[str, Any], deadline: float) -> dict[str, Any]:
        node = record["placement"] == Placement.NODE
        spec: dict[str, Any] = {
            "deadline": deadline,
            "mode": record["mechanism"],
            "netns": {"container_id": entry["container_id"]} if node else None,
            "proxy": None,
            "netem": None,
        }
        if record["mechanism"] != shaping.Mechanism.NETEM:
            spec["proxy"] = {
                "comment": record["comment"],
                "mark": record["mark"],
                "toxics": record["toxics"],
                "ports": record["ports"],
                "destinations": record["destinations"],
                "fault": record["fault"],
            }
        if record["mechanism"] != shaping.Mechanism.PROXY:
            spec["netem"] = record["netem"]
        return spec

    def _launch(
        self, api: KubeApi, record: RevertRecord, entry: dict[str, Any], ref: AgentRef, argv: list[str]
    ) -> None:
        if ref.placement == Placement.EPHEMERAL:
            container = ephemeral.container_spec(
                ref.container,
                record["image"],
                argv,
                pull_policy=record["pull_policy"],
                capabilities=("NET_ADMIN",),
            )
            agents.launch_ephemeral(
                api,
                ref.namespace,
                ref.pod,
                container,
                (record["version"][0], record["version"][1]),
                run_id=record["run_id"],
                kind="shape",
                marker=entry["marker"],
            )
            return
        labels = ownership.created_labels(record["run_id"], record["fault"])
        manifest = agents.node_pod_manifest(
            ref.pod,
            ref.namespace,
            entry["node"],
            record["image"],
            record["pull_policy"],
            argv,
            labels,
            float(record["hold_seconds"]),
            capabilities=NODE_AGENT_CAPABILITIES,
        )
        agents.launch_node_pod(api, manifest)

    # ---------------------------------------------------------------- revert, check

    def revert(self, record: RevertRecord) -> None:
        with self.kube(record["connection"]) as api:
            for entry in record["targets"]:
                self._revert_one(api, record, entry)

    def _revert_one(self, api: KubeApi, record: RevertRecord, entry: dict[str, Any]) -> None:
        ref = AgentRef.from_dict(entry["agent"])
        if not agents.stop(api, ref, entry["marker"]):
            raise FaultError(f"the chaosrunner agent in {ref.where} did not stop")
        # A container that exited may have left rules behind (SIGKILL); a deleted pod was
        # either reverted before or got its SIGTERM from the kubelet, and cleaned up then.
        exited = agents.state(api, ref) == "terminated"
        stopped = [event for event in agents.events(api, ref) if event["event"] == "stopped"]
        if exited and not any(event.get("cleaned") for event in stopped) and self._pod_alive(api, entry):
            self._clean(api, record, entry)
        agents.delete_pod(api, ref)
        if ref.placement == Placement.EPHEMERAL:
            agents.unmark_pod(api, ref)

    @staticmethod
    def _pod_alive(api: KubeApi, entry: dict[str, Any]) -> bool:
        ref = AgentRef.from_dict(entry["agent"])
        try:
            pod = api.get("pods", entry["pod"], ref.namespace)
        except NotFound:
            return False  # its network namespace, with our rules, went with it
        return (pod.get("metadata") or {}).get("uid") == entry["uid"]

    def _clean(self, api: KubeApi, record: RevertRecord, entry: dict[str, Any]) -> None:
        """The agent ended without removing its rules (SIGKILL): a second agent removes them."""
        cleaner = AgentRef.from_dict(entry["cleaner"])
        node = cleaner.placement == Placement.NODE
        spec = {
            "netns": {"container_id": entry["container_id"]} if node else None,
            "comment": record["comment"],
            "device": record["netem"]["device"],
        }
        self._launch(api, record, entry, cleaner, agent_argv("cleanup", entry["marker"], spec))
        try:
            agents.wait_for(api, cleaner, {"cleaned"}, float(record["start_timeout"]))
        finally:
            agents.delete_pod(api, cleaner)
            if cleaner.placement == Placement.EPHEMERAL:
                agents.unmark_pod(api, cleaner)

    def check(self, record: RevertRecord) -> bool:
        with self.kube(record["connection"]) as api:
            return any(agents.may_be_acting(api, AgentRef.from_dict(e["agent"])) for e in record["targets"])


@register
class NetworkLatency(shaping.AddsLatency, NetworkShaping):
    kind = "kubernetes.network-latency"
    summary = (
        "Delay pods' outbound traffic from an agent in their network namespace (tc netem, or the fault "
        "proxy where the node has no netem); the agent ends at its deadline, revert stops it early."
    )
    Params = LatencyParams


@register
class NetworkLoss(shaping.LosesTraffic, NetworkShaping):
    kind = "kubernetes.network-loss"
    summary = (
        "Lose a share of pods' outbound packets (tc netem) or reset/stall a share of their new TCP "
        "connections (fault proxy) from an agent in their network namespace; revert stops the agent."
    )
    Params = LossParams
