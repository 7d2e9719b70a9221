"""Manifests of workloads that run on the fake nodes of ``kube_fake_nodes`` only.

Every pod template carries the fake nodes' ``nodeSelector`` and the toleration
of their taint, so nothing lands on the real kubelet's node, and nothing else
lands on the fake ones. Pods are ``pause`` containers that are never started
(the fake nodes only mark them Running), with a grace period of 0 unless one
is given: a test that wants deletions to linger passes ``grace``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from chaosrunner.faults.kubernetes.api import KubeApi, Obj
from tests.support.kube_fake_nodes import TOLERATION, node_selector

PAUSE_IMAGE = "k8s.gcr.io/pause:3.2"
PLURALS = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "Pod": "pods",
}


def pod_template(labels: Mapping[str, str], prefix: str, grace: int = 0) -> Obj:
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "nodeSelector": node_selector(prefix),
            "tolerations": [dict(TOLERATION)],
            "terminationGracePeriodSeconds": grace,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "containers": [
                {
                    "name": "pause",
                    "image": PAUSE_IMAGE,
                    "imagePullPolicy": "Never",
                    "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}},
                }
            ],
        },
    }


def deployment(name: str, replicas: int, labels: Mapping[str, str], prefix: str, grace: int = 0) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": pod_template(labels, prefix, grace),
        },
    }


def statefulset(name: str, replicas: int, labels: Mapping[str, str], prefix: str, grace: int = 0) -> Obj:
    """Pods start in parallel (not one by one): thousands of pods would take minutes in order."""
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": dict(labels)},
            "template": pod_template(labels, prefix, grace),
        },
    }


def daemonset(name: str, labels: Mapping[str, str], prefix: str, grace: int = 0) -> Obj:
    """One pod on every fake node of ``prefix`` (and none on the real node: the nodeSelector)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "template": pod_template(labels, prefix, grace),
        },
    }


def pdb(
    name: str,
    match_labels: Mapping[str, str],
    *,
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
) -> Obj:
    """A PodDisruptionBudget (``policy/v1beta1``: the 1.20 server has no ``policy/v1``)."""
    if (min_available is None) == (max_unavailable is None):
        raise ValueError("a PodDisruptionBudget needs exactly one of min_available and max_unavailable")
    spec: Obj = {"selector": {"matchLabels": dict(match_labels)}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    else:
        spec["maxUnavailable"] = max_unavailable
    return {
        "apiVersion": "policy/v1beta1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": spec,
    }


def apply(api: KubeApi, namespace: str, objects: Iterable[Obj]) -> list[Obj]:
    """Create the objects in ``namespace`` (in the order given); returns what the server stored."""
    created = []
    for obj in objects:
        created.append(api.create(PLURALS[obj["kind"]], obj, namespace))
    return created
