"""deployment-scale, node-cordon and node-drain against the fake cluster."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults.base import BlastRadius
from chaosrunner.faults.kubernetes import fake, ownership
from chaosrunner.faults.kubernetes.fake import FakeKubeApi
from chaosrunner.faults.kubernetes.nodes import (
    CordonParams,
    DrainParams,
    NodeCordon,
    NodeDrain,
    drain_refusal,
)
from chaosrunner.faults.kubernetes.selection import NodeSelector, PodInfo, WorkloadSelector
from chaosrunner.faults.kubernetes.workloads import DeploymentScale, ScaleParams
from tests.unit.kube_support import cluster, connector, request


def _deployments() -> FakeKubeApi:
    api = cluster()
    api.add("deployments", fake.deployment("web", "shop", replicas=3))
    api.add(
        "deployments", fake.deployment("db", "shop", replicas=1, labels={"chaosrunner.io/protect": "true"})
    )
    return api


def test_scale_keeps_the_original_on_the_object_and_restores_it() -> None:
    api = _deployments()
    fault = DeploymentScale(connector(api), watchdogs=False)
    plan = fault.plan(request(ScaleParams(replicas=0), WorkloadSelector(name="web")))
    assert plan.revert_record["workloads"][0]["original"] == 3
    record = fault.inject(plan)
    scaled = api.get("deployments", "web", "shop")
    assert scaled["spec"]["replicas"] == 0
    assert ownership.annotations_of(scaled)[ownership.ORIGINAL_REPLICAS] == "3"
    assert fault.check(record)
    fault.revert(record)
    restored = api.get("deployments", "web", "shop")
    assert restored["spec"]["replicas"] == 3 and ownership.ORIGINAL_REPLICAS not in ownership.annotations_of(
        restored
    )
    assert ownership.RUN_ID not in ownership.labels_of(restored)
    assert not fault.check(record)
    fault.revert(record)
    assert api.get("deployments", "web", "shop")["spec"]["replicas"] == 3


def test_scale_records_the_count_at_inject_time() -> None:
    api = _deployments()
    fault = DeploymentScale(connector(api), watchdogs=False)
    plan = fault.plan(request(ScaleParams(replicas=1), WorkloadSelector(name="web")))
    api.patch("deployments", "web", {"spec": {"replicas": 5}}, "shop")  # someone scaled it after the plan
    record = fault.inject(plan)
    assert record["workloads"][0]["original"] == 5
    fault.revert(record)
    assert api.get("deployments", "web", "shop")["spec"]["replicas"] == 5


def test_scale_leaves_protected_and_already_scaled_workloads() -> None:
    api = _deployments()
    api.patch("deployments", "web", {"metadata": {"annotations": {ownership.ORIGINAL_REPLICAS: "3"}}}, "shop")
    fault = DeploymentScale(connector(api), watchdogs=False)
    with pytest.raises(PlanRefused, match="no targets"):
        fault.plan(request(ScaleParams(), WorkloadSelector(name="*"), blast_radius=BlastRadius(mode="all")))


def test_scale_refuses_a_namespace_without_consent() -> None:
    api = _deployments()
    api.add("deployments", fake.deployment("web", "other"))
    fault = DeploymentScale(connector(api), watchdogs=False)
    with pytest.raises(PlanRefused, match="not allowed"):
        fault.plan(request(ScaleParams(), WorkloadSelector(name="web", namespace="other")))


def test_scale_fails_when_the_object_changes_under_it(monkeypatch: pytest.MonkeyPatch) -> None:
    api = _deployments()
    fault = DeploymentScale(connector(api), watchdogs=False)
    plan = fault.plan(request(ScaleParams(), WorkloadSelector(name="web")))
    real_get = api.get

    def stale_get(*args: object, **kwargs: object) -> dict[str, object]:
        obj = real_get(*args, **kwargs)
        obj["metadata"]["resourceVersion"] = "1"
        return obj

    monkeypatch.setattr(api, "get", stale_get)
    with pytest.raises(FaultError, match="changed while being scaled"):
        fault.inject(plan)


def test_cordon_and_revert_only_what_we_cordoned() -> None:
    api = cluster()
    fault = NodeCordon(connector(api), watchdogs=False)
    plan = fault.plan(request(CordonParams(), NodeSelector(name="node-1")))
    record = fault.inject(plan)
    node = api.get("nodes", "node-1")
    assert node["spec"]["unschedulable"] is True and fault.check(record)
    fault.revert(record)
    node = api.get("nodes", "node-1")
    assert node["spec"]["unschedulable"] is False and ownership.CORDONED not in ownership.annotations_of(node)
    api.patch("nodes", "node-1", {"spec": {"unschedulable": True}})  # an operator cordons it
    fault.revert(record)
    assert api.get("nodes", "node-1")["spec"]["unschedulable"] is True  # not ours: left alone


def test_cordon_keeps_schedulable_nodes_and_skips_cordoned_and_control_plane() -> None:
    api = cluster()
    api.add("nodes", fake.node("cp", labels={"node-role.kubernetes.io/control-plane": ""}))
    api.add("nodes", fake.node("old", unschedulable=True))
    fault = NodeCordon(connector(api), watchdogs=False)
    with pytest.raises(PlanRefused, match="keep_schedulable"):
        fault.plan(
            request(
                CordonParams(keep_schedulable=2),
                NodeSelector(name="node-*"),
                blast_radius=BlastRadius(mode="all"),
            )
        )
    plan = fault.plan(
        request(
            CordonParams(keep_schedulable=0), NodeSelector(name="*"), blast_radius=BlastRadius(mode="all")
        )
    )
    assert sorted(node["name"] for node in plan.revert_record["nodes"]) == ["node-1", "node-2"]
    assert "control-plane" in plan.summary and "already unschedulable" in plan.summary


def test_drain_evicts_only_allowed_replaceable_pods() -> None:
    api = cluster()
    rs = ("ReplicaSet", "web-abc")
    api.add("pods", fake.pod("web-0", "shop", owner=rs, node="node-1"))
    api.add("pods", fake.pod("bare", "shop", node="node-1"))
    api.add("pods", fake.pod("ds-0", "shop", owner=("DaemonSet", "logs"), node="node-1"))
    api.add("pods", fake.pod("foreign", "other", owner=rs, node="node-1"))
    api.add("pods", fake.pod("elsewhere", "shop", owner=rs, node="node-2"))
    fault = NodeDrain(connector(api), watchdogs=False)
    plan = fault.plan(request(DrainParams(grace_period=timedelta(seconds=1)), NodeSelector(name="node-1")))
    assert [pod["name"] for pod in plan.revert_record["evict"]] == ["web-0"]
    assert "4 stay" not in plan.summary and "bare" in plan.summary and "foreign" in plan.summary
    record = fault.inject(plan)
    assert [outcome["name"] for outcome in record["outcomes"]] == ["web-0"]
    assert api.find("pods", "web-0", "shop") is None and api.find("pods", "foreign", "other") is not None
    fault.revert(record)
    assert api.get("nodes", "node-1")["spec"]["unschedulable"] is False


def test_drain_refusal_reasons() -> None:
    mirror = fake.pod("static", owner=("Node", "node-1"))
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    assert "static" in str(drain_refusal(PodInfo.parse(mirror), evict_bare=True))
    assert drain_refusal(PodInfo.parse(fake.pod("bare")), evict_bare=True) is None
    assert "controller" in str(drain_refusal(PodInfo.parse(fake.pod("bare")), evict_bare=False))
