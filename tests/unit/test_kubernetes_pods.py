"""pod-kill and container-kill against the fake cluster: bodies, outcomes, recovery, records."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults.base import BlastRadius
from chaosrunner.faults.kubernetes import fake
from chaosrunner.faults.kubernetes.fake import FakeKubeApi
from chaosrunner.faults.kubernetes.pods import (
    ContainerKill,
    ContainerKillParams,
    KillMode,
    PodKill,
    PodKillParams,
    eviction_body,
    kill_pod,
)
from chaosrunner.faults.kubernetes.selection import OwnerRef, PodSelector
from chaosrunner.faults.kubernetes.workloads import fully_available, measure_recovery
from tests.unit.kube_support import cluster, connector, request


def _web(api: FakeKubeApi, count: int = 3) -> None:
    api.add("deployments", fake.deployment("web", "shop", replicas=count))
    api.add(
        "replicasets",
        {
            "metadata": {
                "name": "web-abc",
                "namespace": "shop",
                "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": True}],
            }
        },
    )
    for index in range(count):
        api.add(
            "pods", fake.pod(f"web-{index}", "shop", labels={"app": "web"}, owner=("ReplicaSet", "web-abc"))
        )


def test_eviction_body_carries_the_version_given() -> None:
    old = eviction_body("shop", "web-1", "u1", 5, "policy/v1beta1")
    new = eviction_body("shop", "web-1", "u1", None, "policy/v1")
    assert old["apiVersion"] == "policy/v1beta1" and new["apiVersion"] == "policy/v1"
    assert old["deleteOptions"] == {"preconditions": {"uid": "u1"}, "gracePeriodSeconds": 5}
    assert new["deleteOptions"] == {"preconditions": {"uid": "u1"}}


def test_kill_pod_outcomes() -> None:
    api = cluster()
    _web(api)
    pods = {name: api.get("pods", name, "shop")["metadata"]["uid"] for name in ("web-0", "web-1", "web-2")}
    killed = kill_pod(
        api,
        "shop",
        {"name": "web-0", "uid": pods["web-0"]},
        mode="delete",
        grace=0,
        eviction_version="policy/v1beta1",
    )
    assert killed["outcome"] == "killed"
    again = kill_pod(
        api,
        "shop",
        {"name": "web-0", "uid": pods["web-0"]},
        mode="delete",
        grace=0,
        eviction_version="policy/v1beta1",
    )
    assert again["outcome"] == "gone"
    replaced = kill_pod(
        api,
        "shop",
        {"name": "web-1", "uid": "old-uid"},
        mode="delete",
        grace=0,
        eviction_version="policy/v1beta1",
    )
    assert replaced["outcome"] == "gone" and "replaced" in replaced["detail"]
    api.pdb_refuses["web-2"] = "web"
    refused = kill_pod(
        api,
        "shop",
        {"name": "web-2", "uid": pods["web-2"]},
        mode="evict",
        grace=None,
        eviction_version="policy/v1beta1",
        retry_for=0.6,
    )
    assert refused["outcome"] == "refused" and "PodDisruptionBudget" in refused["detail"]
    assert sum(1 for call in api.calls if call[0] == "create" and call[4] == "eviction") >= 2  # it retried


def test_pod_kill_plan_records_owners_and_no_credentials() -> None:
    api = cluster()
    _web(api)
    params = PodKillParams(grace_period=timedelta(seconds=2))
    plan = PodKill(connector(api)).plan(
        request(params, PodSelector(labels={"app": "web"}), blast_radius=BlastRadius(mode="count", count=2))
    )
    record = plan.revert_record
    assert len(record["pods"]) == 2 and record["grace_seconds"] == 2
    assert {pod["owner"]["name"] for pod in record["pods"]} == {"web"}
    assert record["connection"] == {
        "kubeconfig": "/tmp/no-such-kubeconfig",
        "context": None,
        "in_cluster": False,
    }
    assert not [
        call for call in api.calls if call[0] in ("delete", "create", "patch")
    ]  # plan has no side effects
    json.dumps(record)


def test_pod_kill_deletes_with_uid_preconditions_and_measures_recovery() -> None:
    api = cluster()
    _web(api, count=2)

    def controller(cluster_api: FakeKubeApi) -> None:
        """The ReplicaSet controller: a Ready replacement for every deleted pod."""
        present = [obj for obj in cluster_api.list("pods", "shop", labels="app=web")]
        for index in range(2 - len(present)):
            cluster_api.add(
                "pods",
                fake.pod(f"web-new-{index}", "shop", labels={"app": "web"}, owner=("ReplicaSet", "web-abc")),
            )

    api.watch_hooks.append(controller)
    fault = PodKill(connector(api))
    plan = fault.plan(
        request(
            PodKillParams(grace_period=timedelta(0)),
            PodSelector(labels={"app": "web"}),
            blast_radius=BlastRadius(mode="all"),
        )
    )
    record = fault.inject(plan)
    deletes = [call for call in api.calls if call[0] == "delete"]
    assert {call[3] for call in deletes} == {"web-0", "web-1"}
    assert all(call[4] == 0 and call[5] for call in deletes)  # grace 0, uid precondition
    assert [outcome["outcome"] for outcome in record["outcomes"]] == ["killed", "killed"]
    (recovery,) = record["recovery"]
    assert recovery["owner"] == "Deployment/shop/web" and recovery["recovered"] is True
    assert recovery["replacements"] == ["web-new-0", "web-new-1"]
    assert record["deletion_seconds"] >= 0 and record["killed_at"] > 0
    fault.revert(record)
    fault.revert(record)  # nothing to undo, twice


def test_pod_kill_fails_when_every_eviction_is_refused() -> None:
    api = cluster()
    _web(api, count=1)
    api.pdb_refuses["web-0"] = "web"
    fault = PodKill(connector(api))
    plan = fault.plan(
        request(
            PodKillParams(mode=KillMode.EVICT, measure_recovery=False), PodSelector(labels={"app": "web"})
        )
    )
    with pytest.raises(FaultError, match=r"no pod was killed.*PodDisruptionBudget"):
        fault.inject(plan)


def test_recovery_times_out_when_replacements_never_get_ready() -> None:
    api = cluster()
    _web(api, count=1)
    api.add("pods", fake.pod("web-new", "shop", labels={"app": "web"}, ready=False))
    killed = {api.get("pods", "web-0", "shop")["metadata"]["uid"]}
    recovery = measure_recovery(
        api,
        OwnerRef("Deployment", "web", "shop"),
        killed,
        started=0.0,
        timeout=0.5,
        clock=iter([0.0, 0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9]).__next__,
    )
    assert recovery.recovered is False and "not fully available" in recovery.detail


def test_fully_available_needs_current_status() -> None:
    ready = fake.deployment("web", replicas=2)
    assert fully_available("Deployment", ready)
    stale = fake.deployment("web", replicas=2)
    stale["metadata"]["generation"] = 2
    assert not fully_available("Deployment", stale)
    short = fake.deployment("web", replicas=2)
    short["status"]["availableReplicas"] = 1
    assert not fully_available("Deployment", short)


def test_container_kill_plan_picks_the_container_and_pins_the_agent_to_the_node() -> None:
    api = cluster()
    api.add(
        "pods", fake.pod("web-0", "shop", labels={"app": "web"}, containers=("app", "sidecar"), node="node-2")
    )
    fault = ContainerKill(connector(api))
    plan = fault.plan(request(ContainerKillParams(container="sidecar"), PodSelector(labels={"app": "web"})))
    (entry,) = plan.revert_record["targets"]
    assert entry["container"] == "sidecar" and entry["container_id"] == "docker://web-0-sidecar"
    assert entry["node"] == "node-2" and entry["agent"]["placement"] == "node-pod"
    with pytest.raises(PlanRefused, match="no targets"):
        fault.plan(request(ContainerKillParams(container="nope"), PodSelector(labels={"app": "web"})))


def test_container_kill_inject_runs_the_kill_agent_and_removes_it() -> None:
    api = cluster()
    api.add("pods", fake.pod("web-0", "shop", labels={"app": "web"}))
    fault = ContainerKill(connector(api))
    plan = fault.plan(
        request(ContainerKillParams(measure_recovery=False), PodSelector(labels={"app": "web"}))
    )
    agent_pod = plan.revert_record["targets"][0]["agent"]["pod"]
    event = {"agent": "chaosrunner", "event": "killed", "pid": 4242, "at": 1.0}
    api.logs_by_container[("shop", agent_pod, "agent")] = json.dumps(event)
    record = fault.inject(plan)
    created = next(call for call in api.calls if call[0] == "create" and call[1] == "pods")
    manifest = created[5]
    assert manifest["spec"]["nodeName"] == "node-1" and manifest["spec"]["hostPID"] is True
    assert manifest["spec"]["containers"][0]["command"][3] == "kill"
    assert record["targets"][0]["pid"] == 4242
    assert api.find("pods", agent_pod, "shop") is None  # the agent pod is gone again
    fault.revert(record)
    fault.revert(record)
