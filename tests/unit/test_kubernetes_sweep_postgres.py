"""The sweep by label (recover --kubernetes without a journal) and the PostgreSQL holder pod."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import BlastRadius
from chaosrunner.faults.connections import KubernetesConnection
from chaosrunner.faults.kubernetes import fake, ownership
from chaosrunner.faults.kubernetes.api import ExecResult
from chaosrunner.faults.kubernetes.fake import FakeKubeApi
from chaosrunner.faults.kubernetes.network import NetworkPartition, PartitionParams
from chaosrunner.faults.kubernetes.nodes import CordonParams, NodeCordon
from chaosrunner.faults.kubernetes.postgres_job import PgJobParams, PostgresConnectionExhaustion
from chaosrunner.faults.kubernetes.selection import NodeSelector, PodSelector, WorkloadSelector
from chaosrunner.faults.kubernetes.sweep import runs_in_cluster, sweep
from chaosrunner.faults.kubernetes.workloads import DeploymentScale, ScaleParams
from tests.unit.kube_support import cluster, connector, request

RUN = "20260101-000000-abcdef"


def _after_a_crash() -> FakeKubeApi:
    """A cluster where run RUN injected four faults and then died without reverting."""
    api = cluster()
    api.add("deployments", fake.deployment("web", "shop", replicas=3))
    for index in range(2):
        api.add("pods", fake.pod(f"web-{index}", "shop", labels={"app": "web"}))
    for fault in (
        NetworkPartition(connector(api), watchdogs=False),
        DeploymentScale(connector(api), watchdogs=False),
        NodeCordon(connector(api), watchdogs=False),
    ):
        selector, params = {
            "kubernetes.network-partition": (PodSelector(labels={"app": "web"}), PartitionParams()),
            "kubernetes.deployment-scale": (WorkloadSelector(name="web"), ScaleParams(replicas=0)),
            "kubernetes.node-cordon": (NodeSelector(name="node-2"), CordonParams()),
        }[fault.kind]
        plan = fault.plan(request(params, selector, blast_radius=BlastRadius(mode="all"), name=fault.kind))
        fault.inject(plan)
    agent = fake.pod("chaosrunner-shape-1", "shop", labels=ownership.created_labels(RUN, "slow"))
    api.add("pods", agent)
    api.add(
        "secrets",
        {
            "metadata": {
                "name": "chaosrunner-pg-dsn-1",
                "namespace": "shop",
                "labels": ownership.created_labels(RUN, "pg"),
            }
        },
    )
    api.add("pods", fake.pod("someone-else", "shop", labels=ownership.created_labels("another-run", "x")))
    return api


def test_sweep_undoes_a_dead_run_from_the_labels_alone() -> None:
    api = _after_a_crash()
    assert runs_in_cluster(KubernetesConnection(), connect=connector(api)) == {RUN, "another-run"}
    report = sweep(KubernetesConnection(kubeconfig="/tmp/none"), RUN, connect=connector(api))
    assert not report.failed
    assert api.list("networkpolicies", None) == []
    assert api.list("pods", None, labels=ownership.PARTITION) == []
    assert api.get("deployments", "web", "shop")["spec"]["replicas"] == 3
    assert api.get("nodes", "node-2")["spec"]["unschedulable"] is False
    assert api.find("pods", "chaosrunner-shape-1", "shop") is None
    assert api.find("secrets", "chaosrunner-pg-dsn-1", "shop") is None
    assert api.find("pods", "someone-else", "shop") is not None  # another run's: untouched
    assert any("back to 3 replicas" in line for line in report.restored)
    again = sweep(KubernetesConnection(kubeconfig="/tmp/none"), RUN, connect=connector(api))
    assert again.nothing_found()
    json.dumps(report.as_dict())


def test_sweep_of_every_run() -> None:
    api = _after_a_crash()
    sweep(KubernetesConnection(kubeconfig="/tmp/none"), None, connect=connector(api))
    assert api.find("pods", "someone-else", "shop") is None
    assert runs_in_cluster(KubernetesConnection(), connect=connector(api)) == set()


def test_sweep_stops_ephemeral_agents_by_their_annotation() -> None:
    api = cluster()
    pod = fake.pod("web-0", "shop", labels={ownership.RUN_ID: RUN})
    pod["metadata"]["annotations"] = {
        "agents.chaosrunner.io/cr-x-stress": json.dumps({"kind": "stress", "marker": "M1"})
    }
    pod["spec"]["ephemeralContainers"] = [{"name": "cr-x-stress", "image": "img"}]
    pod["status"]["ephemeralContainerStatuses"] = [{"name": "cr-x-stress", "state": {"running": {}}}]
    api.add("pods", pod)

    def on_exec(namespace: str, name: str, container: str, argv: list[str]) -> ExecResult:
        api.objects[("pods", "shop", "web-0")]["status"]["ephemeralContainerStatuses"][0]["state"] = {
            "terminated": {}
        }
        return ExecResult(0, "1\n", "")

    api.exec_handler = on_exec
    report = sweep(KubernetesConnection(kubeconfig="/tmp/none"), RUN, connect=connector(api))
    assert report.stopped == ["ephemeral shop/web-0 [cr-x-stress]"]
    (call,) = [call for call in api.calls if call[0] == "exec"]
    assert call[3] == "cr-x-stress" and call[4][-2:] == ["M1", "15"]
    swept = api.get("pods", "web-0", "shop")
    assert not ownership.annotations_of(swept) and ownership.RUN_ID not in ownership.labels_of(swept)


def test_postgres_pod_reads_the_dsn_from_a_secret_only(monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = "host=db.shop.svc user=app password=hunter2"
    monkeypatch.setenv("SHOP_DSN", dsn)
    monkeypatch.delenv("CHAOSRUNNER_PG_DSN", raising=False)  # no terminate-by-name from this machine
    api = cluster()
    fault = PostgresConnectionExhaustion(connector(api))
    plan = fault.plan(
        request(PgJobParams(dsn_env="SHOP_DSN", role="app", leave_free=1), duration=timedelta(seconds=40))
    )
    record = plan.revert_record
    assert "hunter2" not in json.dumps(record) and "hunter2" not in plan.summary
    pod_name = record["pod"]
    api.logs_by_container[("shop", pod_name, "holder")] = "ready\n"
    record = fault.inject(plan)
    pod = api.get("pods", pod_name, "shop")
    assert "hunter2" not in json.dumps(pod)
    container = pod["spec"]["containers"][0]
    assert container["env"] == [
        {
            "name": "CHAOSRUNNER_PG_DSN",
            "valueFrom": {"secretKeyRef": {"name": record["secret"], "key": "dsn"}},
        }
    ]
    payload = json.loads(container["command"][3])
    assert payload["module"] == "chaosrunner.faults.postgres.holder"
    assert payload["spec"]["mode"] == "role" and payload["spec"]["dsn_env"] == "CHAOSRUNNER_PG_DSN"
    assert pod["spec"]["activeDeadlineSeconds"] == int(record["lifetime"]) + 30
    secret = api.get("secrets", record["secret"], "shop")
    assert secret["stringData"]["dsn"] == dsn and ownership.is_ours(secret)
    fault.revert(record)
    assert (
        api.find("pods", pod_name, "shop") is None and api.find("secrets", record["secret"], "shop") is None
    )
    fault.revert(record)


def test_postgres_plan_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_DSN", raising=False)
    api = cluster()
    fault = PostgresConnectionExhaustion(connector(api))
    with pytest.raises(PlanRefused, match="not set"):
        fault.plan(request(PgJobParams(dsn_env="NO_SUCH_DSN")))
    with pytest.raises(PlanRefused, match="does not exist"):
        fault.plan(request(PgJobParams(dsn_secret="missing")))
    api.add("secrets", {"metadata": {"name": "db", "namespace": "shop"}, "data": {"url": "eA=="}})
    with pytest.raises(PlanRefused, match="no key"):
        fault.plan(request(PgJobParams(dsn_secret="db")))
    plan = fault.plan(request(PgJobParams(dsn_secret="db", dsn_secret_key="url")))
    assert plan.revert_record["own_secret"] is False and plan.revert_record["secret_key"] == "url"
