"""The seam between the Kubernetes faults and the cluster: a small interface on plain dicts.

The faults never see the ``kubernetes`` client. They talk to ``KubeApi``, whose
methods take resource names (``"pods"``, ``"deployments"`` ...) and return the
API server's JSON as plain dicts - the same shapes ``kubectl get -o json``
prints, which is what the docs and the tests reason in. Two implementations:

- ``client.LiveKubeApi``: the real one, the only code that imports
  ``kubernetes`` (import-linter enforces it);
- ``fake.FakeKubeApi``: an in-memory cluster for the unit tests of plan logic,
  safety rules and request bodies (the real cluster is the e2e tier's job).

Plain dicts rather than the client's generated models on purpose: client 37
validates bodies against the *newest* API's schema, which rejects perfectly
valid requests to older servers (the 1.20 ``EphemeralContainers`` body is not
a ``V1Pod``), and a revert record must be JSON anyway.

Errors are ours too: the adapter maps an HTTP status to the exceptions below
(all ``FaultError``), and an unreachable API server to ``ServiceUnreachable``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from chaosrunner.errors import FaultError

Obj = dict[str, Any]
"""One Kubernetes object (or subresource) as the API server's JSON."""


@dataclass(frozen=True)
class Resource:
    """Where a resource lives in the API: ``/api/v1/namespaces/NS/pods/NAME``."""

    group_version: str
    plural: str
    kind: str
    namespaced: bool = True

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        root = "/api" if "/" not in self.group_version else "/apis"
        parts = [root, self.group_version]
        if self.namespaced and namespace is not None:
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
            if subresource is not None:
                parts.append(subresource)
        return "/".join(parts)


RESOURCES: dict[str, Resource] = {
    resource.plural: resource
    for resource in (
        Resource("v1", "pods", "Pod"),
        Resource("v1", "secrets", "Secret"),
        Resource("v1", "namespaces", "Namespace", namespaced=False),
        Resource("v1", "nodes", "Node", namespaced=False),
        Resource("apps/v1", "deployments", "Deployment"),
        Resource("apps/v1", "statefulsets", "StatefulSet"),
        Resource("apps/v1", "replicasets", "ReplicaSet"),
        Resource("apps/v1", "daemonsets", "DaemonSet"),
        Resource("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy"),
        Resource("policy/v1beta1", "poddisruptionbudgets", "PodDisruptionBudget"),
    )
}


def resource(plural: str) -> Resource:
    try:
        return RESOURCES[plural]
    except KeyError:
        raise FaultError(f"chaosrunner does not know the Kubernetes resource {plural!r}") from None


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class WatchEvent:
    type: str
    """ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""
    object: Obj


class KubeStatus(FaultError):
    """The API server answered with an error status; ``status`` is the HTTP code."""

    def __init__(self, message: str, status: int, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotFound(KubeStatus):
    """404: the object (or its namespace) does not exist."""


class Conflict(KubeStatus):
    """409: a precondition (uid, resourceVersion) no longer holds, or the object exists."""


class TooManyRequests(KubeStatus):
    """429: for an eviction, a PodDisruptionBudget refused it."""


class Invalid(KubeStatus):
    """400 or 422: the server refused the request as malformed (bad selector, invalid body)."""


class Forbidden(KubeStatus):
    """401 or 403: our credentials may not do this."""


class ExecTimedOut(FaultError):
    """An exec did not finish in time (or its stream stayed open after its container ended)."""


class KubeApi(ABC):
    """What the Kubernetes faults may ask of a cluster. Every method may raise the errors above."""

    @abstractmethod
    def server_version(self) -> tuple[int, int]:
        """(major, minor) of the API server, e.g. (1, 20)."""

    @abstractmethod
    def get(
        self, plural: str, name: str, namespace: str | None = None, *, subresource: str | None = None
    ) -> Obj:
        """One object (NotFound when absent)."""

    @abstractmethod
    def list(
        self,
        plural: str,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
    ) -> list[Obj]:
        """Objects matching the selectors; ``namespace=None`` lists every namespace."""

    @abstractmethod
    def create(
        self,
        plural: str,
        body: Obj,
        namespace: str | None = None,
        *,
        name: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        """POST an object (or a subresource such as a pod's ``eviction``)."""

    @abstractmethod
    def replace(
        self,
        plural: str,
        name: str,
        body: Obj,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> Obj:
        """PUT (optimistic concurrency through the body's resourceVersion)."""

    @abstractmethod
    def patch(
        self,
        plural: str,
        name: str,
        body: Obj,
        namespace: str | None = None,
        *,
        strategic: bool = False,
        subresource: str | None = None,
    ) -> Obj:
        """A JSON merge patch, or a strategic merge patch when ``strategic``."""

    @abstractmethod
    def delete(
        self,
        plural: str,
        name: str,
        namespace: str | None = None,
        *,
        grace_seconds: int | None = None,
        uid: str | None = None,
    ) -> bool:
        """Delete; False when it was already gone. ``uid`` is a precondition (Conflict if replaced)."""

    @abstractmethod
    def watch(
        self,
        plural: str,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
        resource_version: str | None = None,
        timeout: float = 30.0,
    ) -> Iterator[WatchEvent]:
        """Changes to matching objects, until ``timeout`` seconds pass (the server ends the watch)."""

    @abstractmethod
    def exec(
        self, namespace: str, pod: str, container: str, argv: Sequence[str], *, timeout: float = 30.0
    ) -> ExecResult:
        """Run ``argv`` (no shell) in a running container of a pod, ephemeral ones included."""

    @abstractmethod
    def logs(
        self, namespace: str, pod: str, container: str | None = None, *, tail_lines: int | None = None
    ) -> str:
        """A container's log (NotFound when the pod is gone)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
