"""Every scheduled Kubernetes kind, run for real under the ServiceAccount `schedule export` creates.

For each kind in the registry's ``kubernetes.*`` set: a schedule whose
scenario targets a namespace other than the CronJob's is exported with the
real command, its manifests are applied to the test cluster
(scripts/kube-cluster.sh, Kubernetes 1.20), and the fault is planned,
injected, checked and reverted with the exported ServiceAccount's own token -
what the CronJob's pod would hold. Any 403 fails the test with the request
the API server refused, so a rule the exporter forgets (or a new call in a
fault) shows here, not at three in the morning.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrunner.faults.base import FaultParams, FaultSelector
from chaosrunner.faults.connections import KubernetesConnection, PostgresConnection
from chaosrunner.faults.kubernetes.api import KubeApi
from chaosrunner.faults.registry import registry
from tests.e2e.kube_helpers import KubeCluster, deploy, real_node, request_for, wait_available, wait_for
from tests.e2e.rbac_apiserver import rbac_apiserver
from tests.e2e.test_kubernetes_faults import cluster_side_postgres  # noqa: F401 - a fixture

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "scripts" / "kube-cluster.sh"
KUBERNETES_KINDS = sorted(kind for kind in registry.kinds() if kind.startswith("kubernetes."))


def kubectl(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(CLUSTER), "kubectl", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def rbac_server(kube_cluster: KubeCluster) -> Iterator[str]:
    """The address of an API server that enforces RBAC on the test cluster (see rbac_apiserver)."""
    with rbac_apiserver() as address:
        yield address


@pytest.fixture
def home(kube_api: KubeApi) -> Iterator[str]:
    """The CronJob's namespace: no chaos allowed here, and nothing in it is a target."""
    name = f"sched-home-{uuid.uuid4().hex[:8]}"
    kube_api.create("namespaces", {"metadata": {"name": name}})
    yield name
    kube_api.delete("namespaces", name)


def case(
    kind: str, namespace: str, node: str, image: str, role: str | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(params, selector) for one kind, as a scenario file would write them."""
    agent = {"agent_image": image, "image_pull_policy": "Never"}
    web = {"labels": {"app": "web"}}
    on_node = {"name": node}
    cases: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
        "kubernetes.pod-kill": ({"grace_period": "1s"}, web),
        "kubernetes.container-kill": (agent, web),
        "kubernetes.deployment-scale": ({"replicas": 0}, {"name": "web"}),
        "kubernetes.network-partition": ({"direction": "egress"}, web),
        "kubernetes.network-latency": ({"delay": "300ms", **agent}, web),
        "kubernetes.network-loss": ({"percent": 100, "ports": [8080], **agent}, web),
        "kubernetes.cpu-stress": ({"workers": 1, "load": 20, **agent}, web),
        "kubernetes.memory-stress": ({"megabytes": 16, **agent}, web),
        "kubernetes.node-cordon": ({"keep_schedulable": 0}, on_node),
        "kubernetes.node-drain": ({"keep_schedulable": 0, "grace_period": "1s"}, on_node),
        "kubernetes.postgres-connection-exhaustion": (
            {"role": role, "dsn_env": "E2E_CLUSTER_PG_DSN", "max_connections": 10, **agent},
            None,
        ),
    }
    return cases[kind]


def export_and_apply(tmp_path: Path, home: str, target: str, kind: str, params: dict, selector: Any) -> dict:
    fault: dict[str, Any] = {"name": "under-test", "kind": kind, "params": params, "duration": "60s"}
    if selector is not None:
        fault["selector"] = selector
    scenario = {
        "metadata": {"title": kind, "owner": "tests", "expected_severity": "P3", "hypothesis": "no 403"},
        "target": {"kubernetes": {"namespace": target}},
        "faults": [fault],
    }
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    schedule = {
        "kind": "Schedule",
        "name": f"rbac-{home[-8:]}",
        "entries": [{"name": "entry", "scenario": "scenario.yaml", "cron": "0 3 * * *"}],
    }
    (tmp_path / "schedule.yaml").write_text(yaml.safe_dump(schedule))
    exported = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaosrunner",
            "schedule",
            "export",
            str(tmp_path / "schedule.yaml"),
            "--kubernetes",
            "--namespace",
            home,
            "--kubernetes-version",
            "1.20",
            "--out",
            str(tmp_path / "k8s"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    manifests = tmp_path / "k8s" / "manifests.yaml"
    kubectl("apply", "-f", str(manifests))
    documents = list(yaml.safe_load_all(manifests.read_text()))
    [account] = [m for m in documents if m["kind"] == "ServiceAccount"]
    return {"account": account["metadata"]["name"], "manifests": documents}


def service_account_kubeconfig(admin: Path, server: str, home: str, account: str, folder: Path) -> Path:
    """A kubeconfig holding the ServiceAccount's token: what the CronJob's pod authenticates with."""

    def token() -> str | None:
        found = yaml.safe_load(kubectl("get", "serviceaccount", account, "-n", home, "-o", "yaml"))
        secrets = found.get("secrets") or []
        if not secrets:
            return None
        secret = yaml.safe_load(kubectl("get", "secret", secrets[0]["name"], "-n", home, "-o", "yaml"))
        return base64.b64decode(secret["data"]["token"]).decode() if secret.get("data") else None

    value = wait_for("the ServiceAccount's token", token, timeout=60)
    config = yaml.safe_load(admin.read_text())
    cluster = config["clusters"][0]
    cluster["cluster"]["server"] = server  # RBAC is enforced there, not on the rig's own API server
    path = folder / "service-account.kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": account, "user": {"token": value}}],
                "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": account}}],
                "current-context": "sa",
            }
        )
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def pg_role(request: pytest.FixtureRequest, kube_namespace: str) -> Iterator[str | None]:
    if request.node.callspec.params["kind"] != "kubernetes.postgres-connection-exhaustion":
        yield None
        return
    request.getfixturevalue("cluster_side_postgres")
    from chaosrunner.faults.postgres import client as pg

    role = f"e2e_{kube_namespace.replace('-', '_')}"
    with pg.connect("CHAOSRUNNER_PG_DSN", "e2e-setup") as session:
        session.query(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 3')
    yield role
    with pg.connect("CHAOSRUNNER_PG_DSN", "e2e-setup") as session:
        session.query(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.parametrize("kind", KUBERNETES_KINDS)
def test_every_kind_runs_under_the_exported_service_account(
    kind: str,
    tmp_path: Path,
    kube_cluster: KubeCluster,
    kube_api: KubeApi,
    kube_namespace: str,
    kube_agent_image: str,
    home: str,
    pg_role: str | None,
    rbac_server: str,
) -> None:
    node = real_node(kube_api)
    if pg_role is None and kind != "kubernetes.postgres-connection-exhaustion":
        deploy(kube_api, kube_namespace, "web", replicas=2)
    params, selector = case(kind, kube_namespace, node, kube_agent_image, pg_role)
    exported = export_and_apply(tmp_path, home, kube_namespace, kind, params, selector)
    roles = [m["metadata"]["namespace"] for m in exported["manifests"] if m["kind"] == "Role"]
    assert home not in roles  # the faults touch nothing where the CronJob lives

    fault_class = registry.get(kind)
    assert fault_class is not None
    typed_params: FaultParams = fault_class.Params.model_validate(params)
    typed_selector: FaultSelector | None = (
        fault_class.Selector.model_validate(selector) if fault_class.Selector and selector else None
    )
    kubeconfig = service_account_kubeconfig(
        kube_cluster.kubeconfig, rbac_server, home, exported["account"], tmp_path
    )
    connection = KubernetesConnection(kubeconfig=kubeconfig, namespace=kube_namespace)
    request = request_for(
        connection,
        typed_params,
        typed_selector,
        duration=timedelta(seconds=60),
        postgres=PostgresConnection(),
    )
    fault = fault_class()
    plan = fault.plan(request)  # a 403 raises Forbidden (a FaultError) out of any of these steps
    record = fault.inject(plan)
    try:
        fault.check(record)
    finally:
        fault.revert(record)
    fault.revert(record)  # idempotent, and still allowed

    def schedulable() -> bool:
        return not kube_api.get("nodes", node).get("spec", {}).get("unschedulable")

    wait_for("the node to be schedulable again", schedulable, timeout=30)
    if kind in ("kubernetes.deployment-scale", "kubernetes.node-drain", "kubernetes.pod-kill"):
        wait_available(kube_api, kube_namespace, "web")


def test_the_old_home_namespace_role_is_not_enough(
    tmp_path: Path,
    kube_cluster: KubeCluster,
    kube_api: KubeApi,
    kube_namespace: str,
    home: str,
    rbac_server: str,
) -> None:
    """The check above can fail: the same ServiceAccount without the target's Role gets a 403."""
    from chaosrunner.faults.kubernetes.api import Forbidden
    from chaosrunner.faults.kubernetes.network import NetworkPartition, PartitionParams
    from chaosrunner.faults.kubernetes.selection import PodSelector

    deploy(kube_api, kube_namespace, "web", replicas=1)
    exported = export_and_apply(
        tmp_path, home, kube_namespace, "kubernetes.network-partition", {}, {"labels": {"app": "web"}}
    )
    kubectl("delete", "rolebinding", exported["account"], "-n", kube_namespace)
    kubeconfig = service_account_kubeconfig(
        kube_cluster.kubeconfig, rbac_server, home, exported["account"], tmp_path
    )
    connection = KubernetesConnection(kubeconfig=kubeconfig, namespace=kube_namespace)
    request = request_for(connection, PartitionParams(), PodSelector(labels={"app": "web"}))
    with pytest.raises(Forbidden):
        NetworkPartition().plan(request)
