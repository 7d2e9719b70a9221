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

Which ``policy`` versions the server offers (the Eviction body's apiVersion,
the PodDisruptionBudget resource) comes from the server's discovery documents,
not from its version number: ``KubeApi.policy()`` reads ``/api/v1`` (the
``pods/eviction`` subresource names the group and version of the Eviction kind
it takes) and ``/apis/policy`` (the PodDisruptionBudget versions served), once
per ``KubeApi``. A 1.20 server answers ``policy/v1beta1`` for both, 1.22 and
later ``policy/v1``; a provider that backports or drops a version is followed.
Only when discovery is forbidden to us does the release number decide (the
upstream defaults: PodDisruptionBudgets in v1 from 1.21, Evictions from 1.22).

Lists come in pages (``pages``, 500 objects each) so that callers over
thousands of objects can keep what they need of one page and drop the rest;
``list`` joins the pages for callers that need them all.

Errors are ours too: the adapter maps an HTTP status to the exceptions below
(all ``FaultError``), and an unreachable API server to ``ServiceUnreachable``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
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


LIST_PAGE = 500
"""Objects per list request: big enough to be cheap, small enough to be dropped page by page."""

EVICTION_FALLBACK = "policy/v1beta1"
"""The Eviction version assumed when discovery does not say (servers before 1.22 all took it)."""


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
    """The API server answered with an error status; ``status`` is the HTTP code.

    ``causes`` are the messages of the Status' ``details.causes`` (an eviction a
    PodDisruptionBudget refuses names the budget there).
    """

    def __init__(self, message: str, status: int, reason: str = "", causes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.causes = tuple(causes)


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


@dataclass(frozen=True)
class ListPage:
    """One page of a list: its objects and the list's resourceVersion (to watch from)."""

    items: list[Obj]
    resource_version: str


@dataclass(frozen=True)
class PolicyVersions:
    """What the server's discovery says about the ``policy`` group (see the module docstring)."""

    eviction: str
    """apiVersion of the Eviction body the pods/eviction subresource takes."""
    budgets: str | None
    """group/version of PodDisruptionBudgets (policy/v1 when served); None: the server has none."""


def policy_versions(core: Obj, policy: Obj | None) -> PolicyVersions:
    """Read the discovery documents ``/api/v1`` and ``/apis/policy`` (None when absent)."""
    eviction = EVICTION_FALLBACK
    for entry in core.get("resources") or []:
        if entry.get("name") == "pods/eviction" and entry.get("group") and entry.get("version"):
            eviction = f"{entry['group']}/{entry['version']}"
    offered = [str(version.get("groupVersion")) for version in (policy or {}).get("versions") or []]
    preferred = str(((policy or {}).get("preferredVersion") or {}).get("groupVersion") or "")
    budgets = "policy/v1" if "policy/v1" in offered else (preferred or (offered[0] if offered else None))
    return PolicyVersions(eviction, budgets)


def policy_versions_by_release(version: tuple[int, int]) -> PolicyVersions:
    """The upstream defaults for a release: what is assumed when discovery is closed to us."""
    return PolicyVersions(
        "policy/v1" if version >= (1, 22) else EVICTION_FALLBACK,
        "policy/v1" if version >= (1, 21) else "policy/v1beta1",
    )


class ExecTimedOut(FaultError):
    """An exec did not finish in time (or its stream stayed open after its container ended)."""


class KubeApi(ABC):
    """What the Kubernetes faults may ask of a cluster. Every method may raise the errors above."""

    _policy: PolicyVersions | None = None
    _policy_lock = threading.Lock()

    @abstractmethod
    def server_version(self) -> tuple[int, int]:
        """(major, minor) of the API server, e.g. (1, 20)."""

    @abstractmethod
    def discover(self, path: str) -> Obj:
        """A discovery document (``/api/v1``, ``/apis/policy``); NotFound when the server has none."""

    def policy(self) -> PolicyVersions:
        """The ``policy`` versions this server offers, asked once per KubeApi."""
        with self._policy_lock:
            if self._policy is None:
                try:
                    try:
                        group: Obj | None = self.discover("/apis/policy")
                    except NotFound:
                        group = None
                    self._policy = policy_versions(self.discover("/api/v1"), group)
                except Forbidden:
                    # Discovery is open to every authenticated user by default (the
                    # system:discovery role); a cluster that closed it still says its release.
                    self._policy = policy_versions_by_release(self.server_version())
            return self._policy

    def resource(self, plural: str) -> Resource:
        """Where ``plural`` lives on this server (PodDisruptionBudgets: the version discovery found)."""
        found = resource(plural)
        if plural == "poddisruptionbudgets":
            budgets = self.policy().budgets
            if budgets is None:
                raise NotFound("this API server serves no PodDisruptionBudgets", 404)
            return replace(found, group_version=budgets)
        return found

    @abstractmethod
    def get(
        self, plural: str, name: str, namespace: str | None = None, *, subresource: str | None = None
    ) -> Obj:
        """One object (NotFound when absent)."""

    @abstractmethod
    def pages(
        self,
        plural: str,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
        limit: int = LIST_PAGE,
        metadata_only: bool = False,
    ) -> Iterator[ListPage]:
        """Objects matching the selectors, ``limit`` at a time; ``namespace=None``: every namespace.

        ``metadata_only``: each item is its ``metadata`` alone (a PartialObjectMetadata), for
        callers that read nothing else - a fifth of a pod's bytes to encode, send and decode.
        """

    def list(
        self,
        plural: str,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
    ) -> list[Obj]:
        """Every object matching the selectors (the pages joined)."""
        return [
            item
            for page in self.pages(plural, namespace, labels=labels, fields=fields)
            for item in page.items
        ]

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
        metadata_only: bool = False,
    ) -> Iterator[WatchEvent]:
        """Changes to matching objects, until ``timeout`` seconds pass (the server ends the watch).

        ``metadata_only`` as for ``pages``.
        """

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
