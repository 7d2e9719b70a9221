"""Kubernetes faults at scale: fake nodes (tests/support/kube_fake_nodes) on the real 1.20 API server.

Twelve fake nodes, registered and kept Ready by ``FakeNodes`` against the real
API server, controller manager and scheduler; workloads placed on them only.
What these tests show, with no fake of our own anywhere:

- a drain of two nodes with a Deployment, a StatefulSet, a DaemonSet and a
  PodDisruptionBudget that blocks: it waits, says so while waiting, reports
  which pods the budget refused, evicts the rest (in the version discovery
  found: ``policy/v1beta1`` here) and leaves the DaemonSet pods;
- an abort during that wait (``ActiveFault.revert``, as the runner calls it)
  halts the drain, uncordons, and no eviction follows even once the budget
  would allow it;
- ``random: true`` with a percent spreads its victims over the nodes;
- pod-kill of a few hundred pods confirms every one gone;
- ``chaosrunner recover --kubernetes`` (the CLI) sweeps about 1,000 labelled
  objects.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.engine.injection import ActiveFault, FaultState
from chaosrunner.faults.base import BlastRadius
from chaosrunner.faults.kubernetes import ownership
from chaosrunner.faults.kubernetes.api import KubeApi
from chaosrunner.faults.kubernetes.nodes import DrainParams, NodeDrain
from chaosrunner.faults.kubernetes.pods import PodKill, PodKillParams
from chaosrunner.faults.kubernetes.selection import MONKEY_LABEL, NodeSelector, PodSelector
from chaosrunner.scenario.models import FaultSpec
from tests.e2e.kube_helpers import KubeCluster, chaos_namespace, request_for, wait_for
from tests.support import kube_scale_workloads as workloads
from tests.support.kube_fake_nodes import FakeNodes

pytestmark = pytest.mark.e2e

NODES = 12
PREFIX = f"k2s{uuid.uuid4().hex[:4]}"
OWNER_LABEL = "fake-node.chaosrunner.test/owner"


@pytest.fixture(scope="module")
def fake_nodes(kube_cluster: KubeCluster) -> Iterator[FakeNodes]:
    with FakeNodes(kube_cluster.kubeconfig, NODES, prefix=PREFIX) as nodes:
        yield nodes


@pytest.fixture(scope="module")
def shop(kube_api: KubeApi, fake_nodes: FakeNodes) -> Iterator[str]:
    """A Deployment, a StatefulSet and a DaemonSet on the fake nodes, and a budget that blocks."""
    namespaces = chaos_namespace(kube_api)
    namespace = next(namespaces)
    workloads.apply(
        kube_api,
        namespace,
        [
            workloads.deployment("web", 24, {"app": "web"}, PREFIX),
            workloads.statefulset("db", 8, {"app": "db"}, PREFIX),
            workloads.daemonset("agent", {"app": "agent"}, PREFIX),
            workloads.pdb("web-budget", {"app": "web"}, max_unavailable=0),
        ],
    )
    fake_nodes.wait_running(namespace, 24, "app=web", timeout=180)
    fake_nodes.wait_running(namespace, 8, "app=db", timeout=180)
    fake_nodes.wait_running(namespace, NODES, "app=agent", timeout=180)
    wait_for(
        "the disruption controller to observe the budget",
        lambda: _budget_status(kube_api, namespace).get("expectedPods") == 24,
        60,
    )
    yield namespace
    next(namespaces, None)  # deletes it


def _budget_status(api: KubeApi, namespace: str) -> dict[str, Any]:
    return api.get("poddisruptionbudgets", "web-budget", namespace).get("status") or {}


def _on(api: KubeApi, namespace: str, node: str, labels: str) -> dict[str, str]:
    """uid -> name of the pods with ``labels`` on ``node`` (not being deleted)."""
    return {
        pod["metadata"]["uid"]: pod["metadata"]["name"]
        for pod in api.list("pods", namespace, labels=labels, fields=f"spec.nodeName={node}")
        if not pod["metadata"].get("deletionTimestamp")
    }


def _busiest(api: KubeApi, namespace: str, nodes: list[str]) -> list[str]:
    """The two of ``nodes`` with the most pods of the budget (the scheduler spreads, not evenly)."""
    return sorted(nodes, key=lambda node: -len(_on(api, namespace, node, "app=web")))[:2]


def _drain_request(kube_cluster: KubeCluster, nodes: list[str], timeout: float) -> Any:
    # Named nodes, so that the two drain tests never pick the same ones.
    return request_for(
        kube_cluster.connection(),
        DrainParams(eviction_timeout=timedelta(seconds=timeout), concurrency=8),
        NodeSelector(
            labels={OWNER_LABEL: PREFIX}, label_selector=f"kubernetes.io/hostname in ({','.join(nodes)})"
        ),
        blast_radius=BlastRadius(mode="all"),
        name="drain",
    )


def _uncordoned(api: KubeApi, node: str) -> bool:
    current = api.get("nodes", node)
    return not (current.get("spec") or {}).get("unschedulable") and ownership.CORDONED not in (
        ownership.annotations_of(current)
    )


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def warnings_of_faults() -> Iterator[_Lines]:
    handler = _Lines()
    logger = logging.getLogger("chaosrunner.faults.kubernetes")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


# ============================================================================= drain with a budget


def test_a_drain_waits_on_the_budget_reports_it_and_leaves_daemonset_pods(
    kube_cluster: KubeCluster,
    kube_api: KubeApi,
    fake_nodes: FakeNodes,
    shop: str,
    warnings_of_faults: _Lines,
) -> None:
    nodes = _busiest(kube_api, shop, fake_nodes.names[:6])
    web = {uid: name for node in nodes for uid, name in _on(kube_api, shop, node, "app=web").items()}
    db = {uid: name for node in nodes for uid, name in _on(kube_api, shop, node, "app=db").items()}
    agents = {uid: name for node in nodes for uid, name in _on(kube_api, shop, node, "app=agent").items()}
    assert web and len(agents) == 2
    assert kube_api.policy().eviction == "policy/v1beta1"  # discovery, on the 1.20 server

    fault = NodeDrain()
    plan = fault.plan(_drain_request(kube_cluster, nodes, 4))
    assert sum("belongs to a DaemonSet" in line for line in plan.revert_record["left_alone"]) == 2
    try:
        record = fault.inject(plan)
        refused = record["refused"]
        assert set(refused) == {"web-budget"}
        assert sorted(refused["web-budget"]) == sorted(f"{shop}/{name}" for name in web.values())
        outcomes = {outcome["name"]: outcome for outcome in record["outcomes"]}
        assert all(outcomes[name]["waited"] >= 4 for name in web.values())  # retried up to eviction_timeout
        assert all(outcomes[name]["outcome"] == "killed" for name in db.values())
        # said while waiting, once for the budget, then at the end
        assert (
            sum(
                "PodDisruptionBudget web-budget refuses evicting" in line for line in warnings_of_faults.lines
            )
            == 1
        )
        assert any("still refused evicting" in line for line in warnings_of_faults.lines)
        # the DaemonSet pods stay (kubectl drain --ignore-daemonsets), the budget's pods too
        for node in nodes:
            assert set(_on(kube_api, shop, node, "app=agent").values()) <= set(agents.values())
        assert len([uid for node in nodes for uid in _on(kube_api, shop, node, "app=agent")]) == 2
        assert set(web) <= {uid for node in nodes for uid in _on(kube_api, shop, node, "app=web")}
        assert not any(uid in _on(kube_api, shop, node, "app=db") for node in nodes for uid in db)
    finally:
        fault.revert(plan.revert_record)
    assert all(_uncordoned(kube_api, node) for node in nodes)


def test_an_abort_during_the_wait_uncordons_and_no_eviction_follows(
    kube_cluster: KubeCluster,
    kube_api: KubeApi,
    fake_nodes: FakeNodes,
    shop: str,
    warnings_of_faults: _Lines,
) -> None:
    nodes = _busiest(kube_api, shop, fake_nodes.names[6:])
    request = _drain_request(kube_cluster, nodes, 120)
    spec = FaultSpec(
        name="drain",
        kind=NodeDrain.kind,
        selector=request.selector,
        params=request.params,
        blast_radius=request.blast_radius,
    )
    events: list[tuple[str, dict[str, Any]]] = []
    active = ActiveFault(spec, request, lambda event, **fields: events.append((event, fields)))
    active.make_plan()
    active.start_inject(lambda fault, error: None)
    wait_for(
        "the drain to wait on the budget",
        lambda: any("refuses evicting" in line for line in warnings_of_faults.lines),
        60,
    )
    blocked = {uid: name for node in nodes for uid, name in _on(kube_api, shop, node, "app=web").items()}
    assert blocked
    aborted = time.monotonic()
    assert active.revert()  # what the runner does on an abort: halt, then revert with the planned record
    assert all(_uncordoned(kube_api, node) for node in nodes)
    active.wait_for_inject(15)
    assert not active.inject_running(), "the drain went on waiting after the abort"
    assert time.monotonic() - aborted < 15  # not its 120 s eviction_timeout
    assert active.state is FaultState.REVERTED and active.record.get("halted") is True

    # The budget now allows every eviction: a drain still retrying would evict within a second.
    kube_api.patch("poddisruptionbudgets", "web-budget", {"spec": {"maxUnavailable": 24}}, shop)
    try:
        wait_for("the budget", lambda: _budget_status(kube_api, shop).get("disruptionsAllowed", 0) > 0, 60)
        time.sleep(3)
        still = {uid for node in nodes for uid in _on(kube_api, shop, node, "app=web")}
        assert set(blocked) <= still, "a pod was evicted after the abort"
    finally:
        kube_api.patch("poddisruptionbudgets", "web-budget", {"spec": {"maxUnavailable": 0}}, shop)
    assert all(_uncordoned(kube_api, node) for node in nodes)
    kinds = [kind for kind, _ in events]
    assert kinds.index("fault_reverting") < kinds.index("fault_injected")


# ============================================================================= random spread, pod-kill


def test_random_with_a_percent_spreads_its_victims_over_the_nodes(
    kube_cluster: KubeCluster, kube_api: KubeApi, fake_nodes: FakeNodes, kube_namespace: str
) -> None:
    labels = {"app": "monkey", MONKEY_LABEL: "enabled"}
    workloads.apply(kube_api, kube_namespace, [workloads.deployment("monkey", 48, labels, PREFIX)])
    fake_nodes.wait_running(kube_namespace, 48, "app=monkey", timeout=180)
    fault = PodKill()
    request = request_for(
        kube_cluster.connection(kube_namespace),
        PodKillParams(grace_period=timedelta(0), measure_recovery=False),
        PodSelector(random=True, labels={"app": "monkey"}),
        blast_radius=BlastRadius(mode="percent", percent=25),
    )
    plan = fault.plan(request)
    record = plan.revert_record
    assert record["candidates"] == 48 and len(record["pods"]) == 12  # 25% of the selected set
    candidates_per_node = Counter(
        pod["spec"]["nodeName"] for pod in kube_api.list("pods", kube_namespace, labels="app=monkey")
    )
    per_node = Counter(pod["node"] for pod in record["pods"])
    # one victim per node while nodes remain (the scheduler may leave a node without candidates)
    assert record["nodes_hit"] == len(per_node) == min(12, len(candidates_per_node))
    assert max(per_node.values()) - min(per_node.values()) <= 1
    done = fault.inject(plan)
    assert done["not_gone"] == [] and len([o for o in done["outcomes"] if o["outcome"] == "killed"]) == 12


def test_pod_kill_of_a_few_hundred_pods_confirms_them_gone(
    kube_cluster: KubeCluster, kube_api: KubeApi, fake_nodes: FakeNodes, kube_namespace: str
) -> None:
    # a grace period, so that the fake nodes (as a kubelet would) finish each deletion
    workloads.apply(
        kube_api, kube_namespace, [workloads.deployment("bulk", 200, {"app": "bulk"}, PREFIX, grace=2)]
    )
    fake_nodes.wait_running(kube_namespace, 200, "app=bulk", timeout=240)
    fault = PodKill()
    request = request_for(
        kube_cluster.connection(kube_namespace),
        PodKillParams(grace_period=timedelta(seconds=1), concurrency=32, measure_recovery=False),
        PodSelector(labels={"app": "bulk"}),
        blast_radius=BlastRadius(mode="all"),
    )
    plan = fault.plan(request)
    killed_uids = {pod["uid"] for pod in plan.revert_record["pods"]}
    assert len(killed_uids) >= 200
    record = fault.inject(plan)
    assert len([o for o in record["outcomes"] if o["outcome"] == "killed"]) == len(killed_uids)
    # Every pod confirmed gone: the fake nodes finished each graceful deletion as a kubelet
    # whose containers stop at once would, so it takes less than the 1 s grace (0.79 s once).
    assert record["not_gone"] == [] and record["gone_seconds"] > 0
    # Seen deleted by the watch opened before the first kill, none of them by a list afterwards.
    assert record["confirmed_by_watch"] == len(killed_uids), record["confirmed_by_watch"]
    left = {pod["metadata"]["uid"] for pod in kube_api.list("pods", kube_namespace, labels="app=bulk")}
    assert not (left & killed_uids)
    print(
        f"pod-kill of {len(killed_uids)}: deletions {record['deletion_seconds']} s, "
        f"gone {record['gone_seconds']} s ({record['confirmed_by_watch']} confirmed by the watch)"
    )


# ============================================================================= the sweep, from the CLI


def test_recover_kubernetes_sweeps_a_thousand_labelled_objects(
    kube_cluster: KubeCluster, kube_api: KubeApi, fake_nodes: FakeNodes, kube_namespace: str, tmp_path: Path
) -> None:
    run_id = f"20260101-000000-{uuid.uuid4().hex[:6]}"
    labels = ownership.created_labels(run_id, "holders")
    secrets = [
        {"metadata": {"name": f"left-{index:04d}", "labels": labels}, "stringData": {"k": "v"}}
        for index in range(880)
    ]
    pods = [
        {
            "metadata": {"name": f"holder-{index:03d}", "labels": labels},
            "spec": workloads.pod_template(labels, PREFIX, grace=1)["spec"],
        }
        for index in range(120)
    ]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda obj: kube_api.create("secrets", obj, kube_namespace), secrets))
        list(pool.map(lambda obj: kube_api.create("pods", obj, kube_namespace), pods))
    fake_nodes.wait_running(kube_namespace, 120, ownership.created_selector(run_id), timeout=180)

    env = {
        **os.environ,
        "CHAOSRUNNER_STATE_DIR": str(tmp_path / "state"),
        "KUBECONFIG": str(kube_cluster.kubeconfig),
    }
    began = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaosrunner",
            "recover",
            "--kubernetes",
            "--run",
            run_id,
            "--json",
            "--kubeconfig",
            str(kube_cluster.kubeconfig),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr[-2000:]
    (report,) = json.loads(done.stdout)["kubernetes"]
    assert report["failed"] == {}
    assert len(report["deleted"]) == 1000
    assert not kube_api.list("secrets", kube_namespace, labels=ownership.created_selector(run_id))
    remaining = kube_api.list("pods", kube_namespace, labels=ownership.created_selector(run_id))
    assert all(pod["metadata"].get("deletionTimestamp") for pod in remaining)  # on their way out (grace)
    print(f"recover --kubernetes swept 1000 objects in {took:.1f} s (process start included)")
