"""Small helpers of the Kubernetes e2e tests: workloads to break, waiting, and measuring from inside pods."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from chaosrunner.faults.base import BlastRadius, FaultParams, FaultRequest, FaultSelector
from chaosrunner.faults.connections import Connections, KubernetesConnection, PostgresConnection
from chaosrunner.faults.kubernetes.api import KubeApi, NotFound, Obj
from chaosrunner.faults.kubernetes.workloads import fully_available, pod_ready
from tests.support.kube_fake_nodes import OWNER_LABEL as FAKE_NODE_LABEL


@dataclass(frozen=True)
class KubeCluster:
    kubeconfig: Path

    def connection(self, namespace: str = "default", **extra: Any) -> KubernetesConnection:
        return KubernetesConnection(kubeconfig=self.kubeconfig, namespace=namespace, **extra)

    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig)}


TEST_IMAGE = "chaosrunner/kube-test:latest"
"""Built by kube-cluster.sh start: the host's python in a small image (pods run it with Never)."""
HTTP_SERVER = ["python3", "-m", "http.server", "8080"]

TCP_TIMER = """import socket, sys, time
started = time.monotonic()
try:
    sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), 10)
    sock.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    while sock.recv(65536):
        pass
    print("%.3f" % (time.monotonic() - started))
except OSError as exc:
    print("error %s" % type(exc).__name__)
"""
"""Time one HTTP/1.0 request from inside a pod (the test image has python3, no curl)."""


def deployment(name: str, replicas: int = 2, *, command: list[str] | None = None, grace: int = 1) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": grace,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "containers": [
                        {
                            "name": "app",
                            "image": TEST_IMAGE,
                            "imagePullPolicy": "Never",
                            "command": command or HTTP_SERVER,
                            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "16Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                        }
                    ],
                },
            },
        },
    }


def real_node(api: KubeApi) -> str:
    """The cluster's one kubelet-backed node: fake nodes from a scale test may be listed beside it."""
    (node,) = [n for n in api.list("nodes") if FAKE_NODE_LABEL not in n["metadata"].get("labels", {})]
    return str(node["metadata"]["name"])


def wait_for(what: str, condition: Callable[[], Any], timeout: float = 90.0, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def deploy(api: KubeApi, namespace: str, name: str, replicas: int = 2, **kwargs: Any) -> list[Obj]:
    """Create a Deployment of the test image and wait until it is fully available; returns its pods."""
    api.create("deployments", deployment(name, replicas, **kwargs), namespace)
    return wait_available(api, namespace, name)


def wait_available(api: KubeApi, namespace: str, name: str, timeout: float = 120.0) -> list[Obj]:
    def ready() -> list[Obj] | None:
        if not fully_available("Deployment", api.get("deployments", name, namespace)):
            return None
        pods = [pod for pod in api.list("pods", namespace, labels=f"app={name}") if pod_ready(pod)]
        return pods or None

    pods: list[Obj] = wait_for(f"deployment {namespace}/{name} available", ready, timeout)
    return pods


def pod_gone(api: KubeApi, namespace: str, name: str) -> bool:
    try:
        api.get("pods", name, namespace)
    except NotFound:
        return True
    return False


def request_for(
    connection: KubernetesConnection,
    params: FaultParams,
    selector: FaultSelector | None = None,
    *,
    blast_radius: BlastRadius | None = None,
    duration: timedelta | None = timedelta(seconds=60),
    name: str = "e2e-fault",
    run_id: str | None = None,
    postgres: PostgresConnection | None = None,
) -> FaultRequest:
    return FaultRequest(
        run_id=run_id or f"e2e-{uuid.uuid4().hex[:10]}",
        name=name,
        params=params,
        selector=selector,
        blast_radius=blast_radius or BlastRadius(),
        connections=Connections(kubernetes=connection, postgres=postgres or PostgresConnection()),
        duration=duration,
    )


def http_seconds(api: KubeApi, namespace: str, pod: str, host: str, port: int = 8080) -> float | str:
    """Seconds one request from ``pod`` to host:port takes, or the error's name."""
    result = api.exec(namespace, pod, "app", ["python3", "-c", TCP_TIMER, host, str(port)], timeout=60)
    text = result.stdout.strip()
    try:
        return float(text)
    except ValueError:
        return text or f"exit {result.exit_code}: {result.stderr.strip()[:200]}"


def chaos_namespace(api: KubeApi) -> Iterator[str]:
    """A fresh namespace that allows chaos, deleted (in the background) afterwards."""
    name = f"cr-e2e-{uuid.uuid4().hex[:8]}"
    api.create(
        "namespaces",
        {"metadata": {"name": name, "annotations": {"chaosrunner.io/allow-chaos": "true"}}},
    )
    yield name
    api.delete("namespaces", name)
