"""Shared set-up of the Kubernetes unit tests: a fake cluster behind our KubeApi seam."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chaosrunner.faults.base import BlastRadius, FaultParams, FaultRequest, FaultSelector
from chaosrunner.faults.connections import Connections, KubernetesConnection
from chaosrunner.faults.kubernetes import fake
from chaosrunner.faults.kubernetes.fake import FakeKubeApi


def cluster(version: tuple[int, int] = (1, 20)) -> FakeKubeApi:
    api = FakeKubeApi(version)
    api.add("namespaces", fake.namespace("shop", allow_chaos=True))
    api.add("namespaces", fake.namespace("other"))
    api.add("namespaces", fake.namespace("kube-system", allow_chaos=True))
    api.add("nodes", fake.node("node-1"))
    api.add("nodes", fake.node("node-2"))
    return api


def request(
    params: FaultParams,
    selector: FaultSelector | None = None,
    *,
    allowed: list[str] | None = None,
    namespace: str = "shop",
    blast_radius: BlastRadius | None = None,
    duration: timedelta | None = timedelta(seconds=30),
    name: str = "fault-1",
    **kubernetes: Any,
) -> FaultRequest:
    connection = KubernetesConnection(
        kubeconfig="/tmp/no-such-kubeconfig",
        namespace=namespace,
        allowed_namespaces=allowed or [],
        **kubernetes,
    )
    return FaultRequest(
        run_id="20260101-000000-abcdef",
        name=name,
        params=params,
        selector=selector,
        blast_radius=blast_radius or BlastRadius(),
        connections=Connections(kubernetes=connection),
        duration=duration,
    )


def connector(api: FakeKubeApi) -> Any:
    return lambda target: api
