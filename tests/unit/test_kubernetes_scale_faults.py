"""Kubernetes faults at scale on the fake cluster: discovery, drain with budgets, halt, spread, sweep."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import BlastRadius, spread_sample
from chaosrunner.faults.connections import KubernetesConnection
from chaosrunner.faults.kubernetes import fake, ownership
from chaosrunner.faults.kubernetes.api import NotFound, PolicyVersions, policy_versions
from chaosrunner.faults.kubernetes.fake import FakeKubeApi
from chaosrunner.faults.kubernetes.gone import wait_gone
from chaosrunner.faults.kubernetes.nodes import DrainParams, NodeDrain, drain_outcome
from chaosrunner.faults.kubernetes.pods import PodKill, PodKillParams
from chaosrunner.faults.kubernetes.selection import MONKEY_LABEL, NodeSelector, OwnerRef, PodSelector
from chaosrunner.faults.kubernetes.sweep import sweep
from chaosrunner.faults.kubernetes.workloads import measure_recovery
from tests.unit.kube_support import cluster, connector, request

# What the test cluster's 1.20 API server answers (kubectl get --raw), trimmed.
CORE_1_20 = {
    "groupVersion": "v1",
    "resources": [
        {"name": "pods", "namespaced": True, "kind": "Pod"},
        {"name": "pods/eviction", "group": "policy", "version": "v1beta1", "kind": "Eviction"},
    ],
}
POLICY_1_20 = {
    "name": "policy",
    "versions": [{"groupVersion": "policy/v1beta1", "version": "v1beta1"}],
    "preferredVersion": {"groupVersion": "policy/v1beta1", "version": "v1beta1"},
}
CORE_1_25 = {
    "resources": [{"name": "pods/eviction", "group": "policy", "version": "v1", "kind": "Eviction"}],
}
POLICY_1_25 = {
    "versions": [
        {"groupVersion": "policy/v1", "version": "v1"},
        {"groupVersion": "policy/v1beta1", "version": "v1beta1"},
    ],
    "preferredVersion": {"groupVersion": "policy/v1", "version": "v1"},
}


# ----------------------------------------------------------------------------- discovery


def test_policy_versions_come_from_the_discovery_documents() -> None:
    assert policy_versions(CORE_1_20, POLICY_1_20) == PolicyVersions("policy/v1beta1", "policy/v1beta1")
    assert policy_versions(CORE_1_25, POLICY_1_25) == PolicyVersions("policy/v1", "policy/v1")
    # a server without the policy group: evictions in the old version, no budgets to read
    assert policy_versions({"resources": []}, None) == PolicyVersions("policy/v1beta1", None)


def test_discovery_is_asked_once_per_api_and_moves_the_budget_resource() -> None:
    api = FakeKubeApi((1, 20))
    api.policy_version = "policy/v1"  # a provider that backported policy/v1: discovery wins, not 1.20
    assert api.policy() == PolicyVersions("policy/v1", "policy/v1")
    api.policy()
    assert [call for call in api.calls if call[0] == "discover"] == [
        ("discover", "/apis/policy"),
        ("discover", "/api/v1"),
    ]
    assert (
        api.resource("poddisruptionbudgets").path("shop")
        == "/apis/policy/v1/namespaces/shop/poddisruptionbudgets"
    )
    old = FakeKubeApi((1, 20))
    assert old.resource("poddisruptionbudgets").group_version == "policy/v1beta1"


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ((1, 20), PolicyVersions("policy/v1beta1", "policy/v1beta1")),
        ((1, 21), PolicyVersions("policy/v1beta1", "policy/v1")),
        ((1, 25), PolicyVersions("policy/v1", "policy/v1")),
    ],
)
def test_closed_discovery_falls_back_to_the_releases_defaults(
    version: tuple[int, int], expected: PolicyVersions
) -> None:
    api = FakeKubeApi(version)
    api.discovery_forbidden = True
    assert api.policy() == expected
    assert ("discover", "/apis/policy") in api.calls  # it did ask first


@pytest.mark.parametrize(("version", "expected"), [((1, 20), "policy/v1beta1"), ((1, 25), "policy/v1")])
def test_an_evicting_pod_kill_sends_the_discovered_version(version: tuple[int, int], expected: str) -> None:
    api = cluster(version)
    api.add("pods", fake.pod("web-0", "shop", labels={"app": "web"}, owner=("ReplicaSet", "web-abc")))
    fault = PodKill(connector(api))
    plan = fault.plan(
        request(PodKillParams(mode="evict", measure_recovery=False), PodSelector(labels={"app": "web"}))
    )
    record = fault.inject(plan)
    (eviction,) = [call for call in api.calls if call[0] == "create" and call[4] == "eviction"]
    assert eviction[5]["apiVersion"] == expected  # the fake refuses (400) any other version
    assert [outcome["outcome"] for outcome in record["outcomes"]] == ["killed"]


# ----------------------------------------------------------------------------- drain


def _drain_cluster(api: FakeKubeApi, nodes: int = 3, per_node: int = 4) -> None:
    for index in range(nodes):
        name = f"fake-node-{index:03d}"
        api.add("nodes", fake.node(name, labels={"pool": "fake"}))
        for replica in range(per_node):
            api.add(
                "pods",
                fake.pod(
                    f"web-{index}-{replica}",
                    "shop",
                    labels={"app": "web"},
                    node=name,
                    owner=("ReplicaSet", "web-abc"),
                ),
            )
        api.add(
            "pods",
            fake.pod(
                f"agent-{index}", "shop", labels={"app": "agent"}, node=name, owner=("DaemonSet", "agent")
            ),
        )


def _drain_request(count: int, timeout: float) -> object:
    return request(
        DrainParams(eviction_timeout=timedelta(seconds=timeout), concurrency=4),
        NodeSelector(labels={"pool": "fake"}),
        blast_radius=BlastRadius(mode="count", count=count),
    )


def test_a_drain_a_budget_refuses_waits_reports_and_leaves_daemonset_pods(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = cluster()
    _drain_cluster(api)
    fault = NodeDrain(connector(api), watchdogs=False)
    plan = fault.plan(_drain_request(2, 0.6))  # type: ignore[arg-type]
    drained = [target.name for target in plan.targets]
    blocked = [f"web-{drained[0][-1]}-0", f"web-{drained[0][-1]}-1"]
    for name in blocked:
        api.pdb_refuses[name] = "web-budget"
    with caplog.at_level(logging.WARNING, logger="chaosrunner.faults.kubernetes"):
        record = fault.inject(plan)
    assert record["refused"] == {"web-budget": sorted(f"shop/{name}" for name in blocked)}
    refused = [outcome for outcome in record["outcomes"] if outcome["outcome"] == "refused"]
    assert {outcome["budget"] for outcome in refused} == {"web-budget"}
    assert all(outcome["waited"] >= 0.6 for outcome in refused)  # it retried until eviction_timeout
    killed = [outcome for outcome in record["outcomes"] if outcome["outcome"] == "killed"]
    assert len(killed) == 2 * 4 - 2
    # DaemonSet pods stay on the drained nodes, as kubectl drain --ignore-daemonsets leaves them
    assert all(api.find("pods", f"agent-{name[-1]}", "shop") for name in drained)
    assert sum("belongs to a DaemonSet" in line for line in plan.revert_record["left_alone"]) == 2
    waiting = [r.getMessage() for r in caplog.records if "refuses evicting" in r.getMessage()]
    assert len(waiting) == 1 and "PodDisruptionBudget web-budget" in waiting[0]  # once per budget
    assert any("still refused evicting 2 pod(s)" in r.getMessage() for r in caplog.records)


def test_the_drain_outcome_says_per_node_what_was_evicted_held_back_and_refused() -> None:
    api = cluster()
    _drain_cluster(api, nodes=2, per_node=3)
    fault = NodeDrain(connector(api), watchdogs=False)
    plan = fault.plan(_drain_request(2, 1.0))  # type: ignore[arg-type]
    api.pdb_refuses["web-0-0"] = "web-budget"  # refused until the budget allows it, 0.3 s later
    api.pdb_refuses["web-1-0"] = "web-budget"  # refused for good (past the 1 s eviction_timeout)
    threading.Timer(0.3, lambda: api.pdb_refuses.pop("web-0-0")).start()
    record = fault.inject(plan)
    (held,) = [outcome for outcome in record["outcomes"] if outcome.get("held_by")]
    assert held["name"] == "web-0-0" and held["held_by"] == "web-budget" and held["outcome"] == "killed"
    fault.revert(record)

    by_node = {entry["node"]: entry for entry in fault.outcome(record) or []}

    assert set(by_node) == {"fake-node-000", "fake-node-001"}
    first, second = by_node["fake-node-000"], by_node["fake-node-001"]
    assert (first["evicted"], first["held_back"], first["refused"]) == (3, 1, 0)
    assert first["longest_hold_seconds"] >= 0.3
    assert (second["evicted"], second["held_back"], second["refused"]) == (2, 0, 1)
    assert first["schedulable"] is True and second["schedulable"] is True
    assert second["summary"] == (
        "fake-node-001: 2 evicted, 1 refused by a PodDisruptionBudget, schedulable again"
    )
    assert first["summary"].startswith("fake-node-000: 3 evicted (1 held back by a PodDisruptionBudget, 0.")


def test_the_drain_outcome_line_names_a_node_left_cordoned_or_gone() -> None:
    outcomes = [
        {"node": "n1", "outcome": "killed", "took": 0.01},
        {"node": "n1", "outcome": "killed", "took": 2.5, "held_by": None},
        {"node": "n1", "outcome": "halted"},
        {"node": "n2", "outcome": "killed", "took": 0.01},
    ]
    assert drain_outcome("n1", outcomes, False)["summary"] == (
        "n1: 2 evicted (1 held back by a PodDisruptionBudget, 2.5s at most), "
        "1 not evicted: halted first, STILL CORDONED"
    )
    assert drain_outcome("n2", outcomes, None)["summary"] == "n2: 1 evicted, no longer in the cluster"


def test_a_halt_during_the_wait_stops_evictions_and_the_revert_uncordons() -> None:
    api = cluster()
    _drain_cluster(api, nodes=2, per_node=6)
    for index in range(6):
        api.pdb_refuses[f"web-0-{index}"] = "web-budget"
        api.pdb_refuses[f"web-1-{index}"] = "web-budget"
    fault = NodeDrain(connector(api), watchdogs=False)
    plan = fault.plan(_drain_request(2, 60))  # type: ignore[arg-type]
    result: dict = {}
    injecting = threading.Thread(target=lambda: result.update(fault.inject(plan)))
    injecting.start()
    deadline = time.monotonic() + 10
    while not any(call[0] == "create" for call in api.calls) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # it is retrying now
    fault.halt()
    time.sleep(0.2)  # a request already in flight lands
    halted_at = len(api.calls)
    api.pdb_refuses.clear()  # were it to go on, every eviction would now succeed
    fault.revert(plan.revert_record)
    injecting.join(5)
    assert not injecting.is_alive()  # it did not wait out its 60 s
    assert result["halted"] is True
    late = [call for call in api.calls[halted_at:] if call[0] == "create"]
    assert late == [] and api.evicted == []
    assert {outcome["outcome"] for outcome in result["outcomes"]} == {"halted"}
    for name in ("fake-node-000", "fake-node-001"):
        node = api.get("nodes", name)
        assert not node["spec"].get("unschedulable") and ownership.CORDONED not in ownership.annotations_of(
            node
        )


def test_a_halt_before_the_cordon_cordons_nothing() -> None:
    api = cluster()
    _drain_cluster(api, nodes=2, per_node=1)
    fault = NodeDrain(connector(api), watchdogs=False)
    plan = fault.plan(_drain_request(2, 5))  # type: ignore[arg-type]
    fault.halt()
    record = fault.inject(plan)
    assert record["cordoned"] == [] and record["halted"] is True
    assert fault.outcome(record) is None  # halted before the evictions: nothing to tell
    assert not [call for call in api.calls if call[0] in ("patch", "create")]


# ----------------------------------------------------------------------------- random spread


def _monkey_cluster(api: FakeKubeApi, nodes: int, per_node: int) -> None:
    for index in range(nodes):
        for replica in range(per_node):
            api.add(
                "pods",
                fake.pod(
                    f"m-{index:02d}-{replica}",
                    "shop",
                    labels={MONKEY_LABEL: "enabled"},
                    node=f"n-{index:02d}",
                ),
            )


def test_spread_sample_covers_groups_evenly() -> None:
    candidates = [
        (group, member) for group in "abcd" for member in range({"a": 1, "b": 2, "c": 5, "d": 8}[group])
    ]
    chosen = spread_sample(candidates, 10, lambda pair: pair[0], random.Random(7))
    per_group = Counter(group for group, _ in chosen)
    # a has 1 and b has 2: the rest is shared between c and d as evenly as they can
    assert per_group == {"a": 1, "b": 2, "c": 3, "d": 4} or per_group == {"a": 1, "b": 2, "c": 4, "d": 3}
    assert len(set(chosen)) == 10


def test_random_with_a_percent_spreads_over_nodes_and_counts_the_candidates() -> None:
    api = cluster()
    _monkey_cluster(api, nodes=10, per_node=5)
    api.objects[("pods", "shop", "m-00-0")]["metadata"]["labels"][ownership.PROTECT] = "true"
    fault = PodKill(connector(api))
    plan = fault.plan(
        request(
            PodKillParams(), PodSelector(random=True), blast_radius=BlastRadius(mode="percent", percent=30)
        )
    )
    record = plan.revert_record
    # 49 candidates once the protected pod is left alone: 30% of 49 rounds up to 15
    assert record["candidates"] == 49 and len(record["pods"]) == 15
    per_node = Counter(pod["node"] for pod in record["pods"])
    assert len(per_node) == 10 and set(per_node.values()) == {1, 2}
    assert record["nodes_hit"] == 10
    assert "on 10 node(s), 15 of 49 candidates" in plan.summary


def test_random_with_a_count_up_to_the_node_count_hits_distinct_nodes() -> None:
    api = cluster()
    _monkey_cluster(api, nodes=8, per_node=3)
    plan = PodKill(connector(api)).plan(
        request(PodKillParams(), PodSelector(random=True), blast_radius=BlastRadius(mode="count", count=8))
    )
    assert len({pod["node"] for pod in plan.revert_record["pods"]}) == 8


def test_random_still_means_one_victim_by_default() -> None:
    api = cluster()
    _monkey_cluster(api, nodes=4, per_node=2)
    plan = PodKill(connector(api)).plan(request(PodKillParams(), PodSelector(random=True)))
    assert len(plan.revert_record["pods"]) == 1 and plan.revert_record["nodes_hit"] == 1


def test_random_percent_above_the_maximum_is_refused() -> None:
    api = cluster()
    _monkey_cluster(api, nodes=4, per_node=5)
    with pytest.raises(PlanRefused, match="above the blast radius maximum of 3"):
        PodKill(connector(api)).plan(
            request(
                PodKillParams(),
                PodSelector(random=True),
                blast_radius=BlastRadius(mode="percent", percent=50, maximum=3),
            )
        )


# ----------------------------------------------------------------------------- gone


def test_pod_kill_confirms_its_pods_gone() -> None:
    api = cluster()
    for index in range(40):
        api.add("pods", fake.pod(f"web-{index}", "shop", labels={"app": "web"}))
    fault = PodKill(connector(api))
    plan = fault.plan(
        request(
            PodKillParams(grace_period=timedelta(0), measure_recovery=False, concurrency=64),
            PodSelector(labels={"app": "web"}),
            blast_radius=BlastRadius(mode="all"),
        )
    )
    record = fault.inject(plan)
    assert record["not_gone"] == [] and record["gone_seconds"] >= 0
    # This fake's watch never says DELETED: after the stall, a list confirmed them all.
    assert record["confirmed_by_watch"] == 0
    assert not api.list("pods", "shop", labels="app=web")


def test_pods_that_never_go_are_recorded_within_the_bound() -> None:
    api = cluster()
    for index in range(3):
        api.add("pods", fake.pod(f"web-{index}", "shop", labels={"app": "web"}))
    api.lingering.add("web-1")
    fault = PodKill(connector(api))
    plan = fault.plan(
        request(
            PodKillParams(measure_recovery=False, gone_timeout=timedelta(milliseconds=300)),
            PodSelector(labels={"app": "web"}),
            blast_radius=BlastRadius(mode="all"),
        )
    )
    began = time.monotonic()
    record = fault.inject(plan)
    assert record["not_gone"] == ["web-1"] and record["gone_seconds"] is not None
    assert (
        time.monotonic() - began < 30
    )  # bounded (the bound is 0.3 s plus a watch slice on a loaded machine)


def test_waiting_for_gone_stops_when_halted() -> None:
    api = cluster()
    api.add("pods", fake.pod("web-0", "shop", labels={"app": "web"}))
    uid = api.get("pods", "web-0", "shop")["metadata"]["uid"]
    result = wait_gone(
        api,
        "shop",
        [{"name": "web-0", "uid": uid}],
        labels="app=web",
        started=time.monotonic(),
        timeout=60,
        halted=lambda: True,
    )
    assert result == {"gone_seconds": None, "not_gone": ["web-0"], "confirmed_by_watch": 0}


def test_following_the_recovery_stops_when_halted() -> None:
    api = cluster()
    api.add("deployments", fake.deployment("web", "shop", replicas=2))
    owner = OwnerRef("Deployment", "web", "shop")
    began = time.monotonic()
    recovery = measure_recovery(api, owner, {"gone-uid"}, began, 60, halted=lambda: True)
    assert recovery.recovered is False and recovery.detail == "halted before it was fully available"
    assert time.monotonic() - began < 30


# ----------------------------------------------------------------------------- sweep


def test_sweep_handles_thousands_of_objects_page_by_page() -> None:
    api = cluster()
    run = "20260101-000000-abcdef"
    created = ownership.created_labels(run, "f")
    for index in range(1200):
        api.add("pods", fake.pod(f"agent-{index}", "shop", labels=created))
    for index in range(300):
        node = fake.node(
            f"n-{index}", unschedulable=True, labels={ownership.RUN_ID: ownership.label_value(run)}
        )
        node["metadata"]["annotations"] = {ownership.CORDONED: ownership.label_value(run)}
        api.add("nodes", node)
    report = sweep(KubernetesConnection(kubeconfig="/tmp/no-such-kubeconfig"), run, connect=connector(api))
    assert len(report.deleted) == 1200 and len([r for r in report.restored if "uncordoned" in r]) == 300
    assert report.failed == {}
    assert not api.list("pods", "shop", labels=ownership.created_selector(run))
    assert not any(api.get("nodes", f"n-{index}")["spec"].get("unschedulable") for index in range(300))
    # deletions happened on the pool, after the (three) pages of pods were listed one by one
    assert [call for call in api.calls if call[:2] == ("list", "pods")][:1]


def test_sweep_records_one_objects_failure_and_goes_on() -> None:
    api = cluster()
    run = "20260101-000000-abcdef"
    created = ownership.created_labels(run, "f")
    for index in range(5):
        api.add("secrets", {"metadata": {"name": f"s-{index}", "namespace": "shop", "labels": dict(created)}})
    original = api.delete

    def flaky(plural: str, name: str, *args: object, **kwargs: object) -> bool:
        if name == "s-2":
            raise NotFound("gone meanwhile? no: refused", 500)
        return original(plural, name, *args, **kwargs)  # type: ignore[arg-type]

    api.delete = flaky  # type: ignore[method-assign]
    report = sweep(KubernetesConnection(kubeconfig="/tmp/no-such-kubeconfig"), run, connect=connector(api))
    assert len(report.deleted) == 4
    assert list(report.failed) == ["created secrets shop/s-2"]
