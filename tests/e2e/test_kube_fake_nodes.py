"""The fake-node helper (tests/support/kube_fake_nodes.py) on the real test cluster.

The scale tests and benchmarks of the Kubernetes faults stand on it, so it is
checked against the real 1.20 control plane here: its nodes are Ready and
stay so past the node lifecycle controller's grace period (40 s: only the
renewed leases keep them Ready then), the scheduler and the workload
controllers place pods on them which it marks Running, a DaemonSet gets one
pod per fake node and none on the real one, a pod deleted with a grace period
goes away (no kubelet would ever finish it), and leaving the helper removes
its nodes, leases and pods - both as a context manager and as a process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from chaosrunner.faults.kubernetes.api import KubeApi, NotFound, Obj
from tests.e2e.kube_helpers import KubeCluster, chaos_namespace, wait_for
from tests.support import kube_scale_workloads as workloads
from tests.support.kube_fake_nodes import LEASE_DURATION_SECONDS, OWNER_LABEL, TAINT_KEY, FakeNodes

REPO = Path(__file__).resolve().parents[2]
NODES = 10
DEPLOYMENT_REPLICAS = 70
STATEFUL_REPLICAS = 20
PODS = DEPLOYMENT_REPLICAS + STATEFUL_REPLICAS + NODES
NODE_MONITOR_GRACE_SECONDS = 40
"""The controller manager's default --node-monitor-grace-period."""
LONG_GRACE = 600
"""The StatefulSet's grace period: far longer than any wait here, so only the helper can end its pods."""


@dataclass
class Fleet:
    nodes: FakeNodes
    namespace: str
    started: float
    """time.monotonic() when the nodes were registered."""


@pytest.fixture(scope="module")
def fleet(kube_cluster: KubeCluster, kube_api: KubeApi) -> Iterator[Fleet]:
    prefix = f"e2e{uuid.uuid4().hex[:5]}"
    with FakeNodes(kube_cluster.kubeconfig, NODES, prefix=prefix, pods_per_node=20) as nodes:
        started = time.monotonic()
        namespaces = chaos_namespace(kube_api)
        namespace = next(namespaces)
        try:
            workloads.apply(
                kube_api,
                namespace,
                [
                    workloads.deployment("web", DEPLOYMENT_REPLICAS, {"app": "web"}, prefix),
                    workloads.statefulset("db", STATEFUL_REPLICAS, {"app": "db"}, prefix, grace=LONG_GRACE),
                    workloads.daemonset("agent", {"app": "agent"}, prefix),
                    workloads.pdb("web", {"app": "web"}, max_unavailable=1),
                ],
            )
            nodes.wait_running(namespace, PODS, timeout=240)
            yield Fleet(nodes, namespace, started)
        finally:
            next(namespaces, None)


def _condition(node: Obj, kind: str) -> str | None:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition["type"] == kind:
            return str(condition["status"])
    return None


def _renew_time(lease: Obj | None) -> datetime:
    assert lease is not None
    return datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00"))


def test_nodes_are_registered_ready_tainted_with_resources(fleet: Fleet, kube_api: KubeApi) -> None:
    names = fleet.nodes.names
    assert len(names) == NODES and len(set(names)) == NODES
    listed = kube_api.list("nodes", labels=f"{OWNER_LABEL}={fleet.nodes.prefix}")
    assert sorted(node["metadata"]["name"] for node in listed) == sorted(names)
    for node in listed:
        assert _condition(node, "Ready") == "True", node["status"]
        assert _condition(node, "MemoryPressure") == "False"
        assert node["status"]["allocatable"]["pods"] == "20"
        assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.20.2"
        taints = {taint["key"]: taint["effect"] for taint in node["spec"].get("taints") or []}
        assert taints.get(TAINT_KEY) == "NoSchedule"
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == node["metadata"]["name"]


def test_pods_of_every_workload_run_on_the_fake_nodes(fleet: Fleet, kube_api: KubeApi) -> None:
    names = set(fleet.nodes.names)
    pods = kube_api.list("pods", fleet.namespace)
    running = [pod for pod in pods if pod["status"].get("phase") == "Running"]
    assert len(running) >= PODS
    for pod in running:
        assert pod["spec"]["nodeName"] in names
        status = pod["status"]
        assert status["podIP"].startswith("10.") and status["hostIP"].startswith("10.")
        assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
        assert all(c["ready"] and "running" in c["state"] for c in status["containerStatuses"])
    daemon_nodes = [pod["spec"]["nodeName"] for pod in running if pod["metadata"]["labels"]["app"] == "agent"]
    assert sorted(daemon_nodes) == sorted(names), "one DaemonSet pod per fake node, none elsewhere"
    spread = {pod["spec"]["nodeName"] for pod in running if pod["metadata"]["labels"]["app"] == "web"}
    assert len(spread) > 1, "the scheduler spreads the Deployment over the fake nodes"


def test_leases_are_renewed(fleet: Fleet) -> None:
    node = fleet.nodes.names[0]
    first = fleet.nodes.lease(node)
    assert first is not None
    assert first["spec"]["holderIdentity"] == node
    assert first["spec"]["leaseDurationSeconds"] == LEASE_DURATION_SECONDS
    wait_for(
        f"the lease of {node} renewed",
        lambda: _renew_time(fleet.nodes.lease(node)) > _renew_time(first),
        timeout=60,
        interval=1,
    )


def test_a_pod_deleted_with_a_grace_period_is_finished(fleet: Fleet, kube_api: KubeApi) -> None:
    pod = kube_api.list("pods", fleet.namespace, labels="app=db")[0]
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    assert pod["spec"]["terminationGracePeriodSeconds"] == LONG_GRACE
    kube_api.delete("pods", name, fleet.namespace)

    def gone() -> bool:
        try:
            return kube_api.get("pods", name, fleet.namespace)["metadata"]["uid"] != uid
        except NotFound:
            return True

    # Without a kubelet a pod with a deletionTimestamp stays Terminating for good: it goes only
    # because the helper finished it (well inside its 600 s grace period).
    wait_for(f"pod {name} finished", gone, timeout=120)
    # The StatefulSet makes a replacement of the same name; the helper marks that Running too.
    fleet.nodes.wait_running(fleet.namespace, STATEFUL_REPLICAS, labels="app=db", timeout=120)


def test_nodes_stay_ready_past_the_node_monitor_grace_period(fleet: Fleet, kube_api: KubeApi) -> None:
    # Only the leases keep the nodes Ready this long: their status was written once at registration
    # (and is refreshed only every 60 s), so a missing lease would make them NotReady by now.
    wait_until = fleet.started + NODE_MONITOR_GRACE_SECONDS + 10
    time.sleep(max(0.0, wait_until - time.monotonic()))
    for node in kube_api.list("nodes", labels=f"{OWNER_LABEL}={fleet.nodes.prefix}"):
        assert _condition(node, "Ready") == "True", node["status"]["conditions"]
        taints = {taint["key"] for taint in node["spec"].get("taints") or []}
        assert not taints & {"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"}, taints


def test_as_a_process_it_cleans_up_on_sigterm(kube_cluster: KubeCluster, kube_api: KubeApi) -> None:
    prefix = f"e2p{uuid.uuid4().hex[:5]}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.kube_fake_nodes",
            "--kubeconfig",
            str(kube_cluster.kubeconfig),
            "--nodes",
            "2",
            "--prefix",
            prefix,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    namespaces = chaos_namespace(kube_api)
    namespace = next(namespaces)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready 2 nodes"
        names = [f"{prefix}-node-{i:03d}" for i in range(2)]
        workloads.apply(
            kube_api, namespace, [workloads.deployment("web", 4, {"app": "web"}, prefix, grace=30)]
        )

        def running() -> bool:
            pods = kube_api.list("pods", namespace, fields="status.phase=Running")
            return len([pod for pod in pods if pod["spec"]["nodeName"] in names]) >= 4

        wait_for("4 pods Running on the process's nodes", running, timeout=120)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr[-2000:]

        assert kube_api.list("nodes", labels=f"{OWNER_LABEL}={prefix}") == []
        bound = [
            pod
            for pod in kube_api.list("pods", namespace)
            if pod["spec"].get("nodeName") in names and not pod["metadata"].get("deletionTimestamp")
        ]
        assert bound == []
        with FakeNodes(kube_cluster.kubeconfig, 0, prefix=prefix) as reader:
            assert [reader.lease(name) for name in names] == [None, None]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        next(namespaces, None)
