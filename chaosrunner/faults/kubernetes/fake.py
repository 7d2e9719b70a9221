"""An in-memory cluster behind the ``KubeApi`` seam, for unit tests of plan logic and request bodies.

It keeps objects as JSON dicts, evaluates label and field selectors the way
the API server does for the cases the faults use, applies merge patches
(``null`` deletes), honours uid and resourceVersion preconditions, answers
evictions (a pod named in ``pdb_refuses`` gets a 429 naming the budget in its
causes, as a PodDisruptionBudget would; a body whose apiVersion is not the one
its discovery offers gets a 400), serves discovery documents offering
``policy/v1beta1`` before 1.22 and ``policy/v1`` after (or ``policy_version``
when a test sets it), and speaks both ephemeral-container dialects, refusing the wrong one
for its ``version`` - so a unit test proves which body a fault sends to a 1.20
and to a 1.25 server. Every call is appended to ``calls``.

It is a fake of *our* seam, never the only test of a fault: the e2e tier runs
every kind against a real API server and kubelet.
"""

from __future__ import annotations

import copy
import itertools
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from chaosrunner.faults.kubernetes.api import (
    LIST_PAGE,
    Conflict,
    ExecResult,
    Forbidden,
    Invalid,
    KubeApi,
    ListPage,
    NotFound,
    Obj,
    TooManyRequests,
    WatchEvent,
    resource,
)

Key = tuple[str, str, str]
ExecHandler = Callable[[str, str, str, list[str]], ExecResult]
_SET_TERM = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def split_selector(selector: str) -> list[str]:
    """Split on commas outside parentheses (``a in (x,y),b=c`` -> two terms)."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current)
    return [term.strip() for term in terms if term.strip()]


def labels_match(labels: dict[str, str], selector: str | None) -> bool:
    for term in split_selector(selector or ""):
        found = _SET_TERM.match(term)
        if found:
            key, operator, values = found.groups()
            wanted = {value.strip() for value in values.split(",")}
            inside = key in labels and labels[key] in wanted
            if inside != (operator == "in"):
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.split("==" if "==" in term else "=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def field_value(obj: Obj, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def fields_match(obj: Obj, selector: str | None) -> bool:
    for term in split_selector(selector or ""):
        if "!=" in term:
            path, value = term.split("!=", 1)
            if field_value(obj, path.strip()) == value.strip():
                return False
        else:
            path, value = term.split("==" if "==" in term else "=", 1)
            if field_value(obj, path.strip()) != value.strip():
                return False
    return True


def merge_patch(target: Obj, patch: Obj) -> Obj:
    """RFC 7386 JSON merge patch."""
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def partial_metadata(obj: Obj) -> Obj:
    """What a server answers for ``metadata_only``: the object's metadata alone."""
    return {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": copy.deepcopy(obj.get("metadata") or {}),
    }


class FakeKubeApi(KubeApi):
    def __init__(self, version: tuple[int, int] = (1, 20)) -> None:
        self.version = version
        self.objects: dict[Key, Obj] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.pdb_refuses: dict[str, str] = {}
        """pod name -> the name of the budget that refuses its eviction."""
        self.policy_version = "policy/v1" if version >= (1, 22) else "policy/v1beta1"
        self.discovery_forbidden = False
        """a cluster that closed discovery to us (the system:discovery role removed)."""
        self.lingering: set[str] = set()
        """pods whose deletion only marks them terminating (a kubelet that never finishes it)."""
        self.evicted: list[tuple[float, str]] = []
        """(time.monotonic(), pod name) of every eviction done."""
        self.logs_by_container: dict[tuple[str, str, str], str] = {}
        self.exec_handler: ExecHandler = lambda namespace, pod, container, argv: ExecResult(0, "", "")
        self.watch_hooks: list[Callable[[FakeKubeApi], None]] = []
        self.closed = False
        self._uids = itertools.count(1)
        self._versions = itertools.count(100)

    # ---------------------------------------------------------------- test helpers

    def add(self, plural: str, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta["resourceVersion"] = str(next(self._versions))
        meta.setdefault("generation", 1)
        self.objects[
            (plural, meta.get("namespace", "") if resource(plural).namespaced else "", meta["name"])
        ] = obj
        return obj

    def find(self, plural: str, name: str, namespace: str | None = None) -> Obj | None:
        return self.objects.get(self._key(plural, name, namespace))

    def _key(self, plural: str, name: str, namespace: str | None) -> Key:
        return (plural, (namespace or "") if resource(plural).namespaced else "", name)

    def _get(self, plural: str, name: str, namespace: str | None) -> Obj:
        obj = self.objects.get(self._key(plural, name, namespace))
        if obj is None:
            raise NotFound(f"{plural} {namespace}/{name} not found", 404)
        return obj

    # ---------------------------------------------------------------- KubeApi

    def server_version(self) -> tuple[int, int]:
        return self.version

    def discover(self, path: str) -> Obj:
        self.calls.append(("discover", path))
        if self.discovery_forbidden:
            raise Forbidden(f"{path} is forbidden", 403)
        group, version = self.policy_version.split("/")
        if path == "/api/v1":
            return {
                "groupVersion": "v1",
                "resources": [
                    {"name": "pods", "namespaced": True, "kind": "Pod"},
                    {"name": "pods/eviction", "group": group, "version": version, "kind": "Eviction"},
                ],
            }
        if path == "/apis/policy":
            return {
                "name": "policy",
                "versions": [{"groupVersion": self.policy_version, "version": version}],
                "preferredVersion": {"groupVersion": self.policy_version, "version": version},
            }
        raise NotFound(f"{path} not found", 404)

    def get(
        self, plural: str, name: str, namespace: str | None = None, *, subresource: str | None = None
    ) -> Obj:
        self.calls.append(("get", plural, namespace, name, subresource))
        obj = self._get(plural, name, namespace)
        if subresource == "ephemeralcontainers":
            if self.version >= (1, 22):
                return copy.deepcopy(obj)
            return {
                "apiVersion": "v1",
                "kind": "EphemeralContainers",
                "metadata": copy.deepcopy(obj["metadata"]),
                "ephemeralContainers": copy.deepcopy(
                    (obj.get("spec") or {}).get("ephemeralContainers") or []
                ),
            }
        return copy.deepcopy(obj)

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
        self.calls.append(("list", plural, namespace, labels, fields))
        self.resource(plural)  # an unknown resource (or no budgets served) fails as the server would
        matched = [
            partial_metadata(obj) if metadata_only else copy.deepcopy(obj)
            for (kind, space, _), obj in sorted(self.objects.items())
            if kind == plural
            and (namespace is None or space == namespace)
            and labels_match((obj.get("metadata") or {}).get("labels") or {}, labels)
            and fields_match(obj, fields)
        ]
        version = str(next(self._versions))
        for start in range(0, max(len(matched), 1), limit):
            yield ListPage(matched[start : start + limit], version)

    def create(
        self,
        plural: str,
        body: Obj,
        namespace: str | None = None,
        *,
        name: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        self.calls.append(("create", plural, namespace, name, subresource, copy.deepcopy(body)))
        if subresource == "eviction":
            assert name is not None
            pod = self._get("pods", name, namespace)
            if body.get("apiVersion") != self.policy_version or body.get("kind") != "Eviction":
                raise Invalid(f"expected {self.policy_version} Eviction, found {body.get('apiVersion')}", 400)
            if name in self.pdb_refuses:
                budget = self.pdb_refuses[name]
                raise TooManyRequests(
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    429,
                    "TooManyRequests",
                    [f"The disruption budget {budget} needs 1 healthy pods and has 1 currently"],
                )
            wanted = ((body.get("deleteOptions") or {}).get("preconditions") or {}).get("uid")
            if wanted and wanted != pod["metadata"]["uid"]:
                raise Conflict("uid precondition failed", 409)
            del self.objects[self._key("pods", name, namespace)]
            self.evicted.append((time.monotonic(), name))
            return {"kind": "Status", "status": "Success"}
        meta = body.get("metadata") or {}
        key = self._key(plural, meta["name"], namespace)
        if key in self.objects:
            raise Conflict(f"{plural} {meta['name']} already exists", 409)
        obj = copy.deepcopy(body)
        obj.setdefault("metadata", {})["namespace"] = namespace
        return copy.deepcopy(self.add(plural, obj))

    def replace(
        self,
        plural: str,
        name: str,
        body: Obj,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> Obj:
        self.calls.append(("replace", plural, namespace, name, subresource, copy.deepcopy(body)))
        obj = self._get(plural, name, namespace)
        if body.get("metadata", {}).get("resourceVersion") not in (None, obj["metadata"]["resourceVersion"]):
            raise Conflict("the object has been modified", 409)
        if subresource == "ephemeralcontainers":
            if self.version >= (1, 22) and body.get("kind") != "Pod":
                raise Invalid(f"expected a Pod, found {body.get('kind')}", 400)
            if self.version < (1, 22) and body.get("kind") != "EphemeralContainers":
                raise Invalid(f"expected EphemeralContainers, found {body.get('kind')}", 400)
            containers = body.get("ephemeralContainers") or (body.get("spec") or {}).get(
                "ephemeralContainers"
            )
            self._set_ephemeral(obj, containers or [])
            return copy.deepcopy(obj)
        new = copy.deepcopy(body)
        new["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[self._key(plural, name, namespace)] = new
        return copy.deepcopy(new)

    def _set_ephemeral(self, pod: Obj, containers: Sequence[Obj]) -> None:
        for container in containers:
            if container.get("securityContext") and self.version < (1, 21):
                raise Invalid("securityContext: Forbidden: cannot be set for an Ephemeral Container", 422)
        pod.setdefault("spec", {})["ephemeralContainers"] = copy.deepcopy(containers)
        pod["metadata"]["resourceVersion"] = str(next(self._versions))

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
        self.calls.append(("patch", plural, namespace, name, subresource, strategic, copy.deepcopy(body)))
        obj = self._get(plural, name, namespace)
        if subresource == "ephemeralcontainers":
            if self.version < (1, 22):
                raise Invalid("this server takes an EphemeralContainers object, not a Pod patch", 400)
            current = list((obj.get("spec") or {}).get("ephemeralContainers") or [])
            for container in (body.get("spec") or {}).get("ephemeralContainers") or []:
                if all(entry["name"] != container["name"] for entry in current):
                    current.append(container)
            self._set_ephemeral(obj, current)
            return copy.deepcopy(obj)
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != obj["metadata"]["resourceVersion"]:
            raise Conflict("the object has been modified", 409)
        patched = merge_patch(obj, body)
        patched["metadata"]["resourceVersion"] = str(next(self._versions))
        if "spec" in body:
            patched["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1
        self.objects[self._key(plural, name, namespace)] = patched
        return copy.deepcopy(patched)

    def delete(
        self,
        plural: str,
        name: str,
        namespace: str | None = None,
        *,
        grace_seconds: int | None = None,
        uid: str | None = None,
    ) -> bool:
        self.calls.append(("delete", plural, namespace, name, grace_seconds, uid))
        key = self._key(plural, name, namespace)
        obj = self.objects.get(key)
        if obj is None:
            return False
        if uid is not None and obj["metadata"]["uid"] != uid:
            raise Conflict("uid precondition failed", 409)
        if plural == "pods" and name in self.lingering:
            obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            return True
        del self.objects[key]
        return True

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
        self.calls.append(("watch", plural, namespace, labels, fields))
        for hook in list(self.watch_hooks):
            hook(self)
        for obj in self.list(plural, namespace, labels=labels, fields=fields):
            yield WatchEvent("ADDED", partial_metadata(obj) if metadata_only else obj)

    def exec(
        self, namespace: str, pod: str, container: str, argv: Sequence[str], *, timeout: float = 30.0
    ) -> ExecResult:
        self.calls.append(("exec", namespace, pod, container, list(argv)))
        self._get("pods", pod, namespace)
        return self.exec_handler(namespace, pod, container, list(argv))

    def logs(
        self, namespace: str, pod: str, container: str | None = None, *, tail_lines: int | None = None
    ) -> str:
        self.calls.append(("logs", namespace, pod, container))
        self._get("pods", pod, namespace)
        return self.logs_by_container.get((namespace, pod, container or ""), "")

    def close(self) -> None:
        self.closed = True


# ----------------------------------------------------------------------------- object builders


def namespace(name: str, *, allow_chaos: bool = False) -> Obj:
    annotations = {"chaosrunner.io/allow-chaos": "true"} if allow_chaos else {}
    return {"metadata": {"name": name, "annotations": annotations}}


def pod(
    name: str,
    namespace: str = "default",
    *,
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    node: str = "node-1",
    owner: tuple[str, str] | None = None,
    containers: Sequence[str] = ("app",),
    ready: bool = True,
) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
    if owner is not None:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    statuses = [
        {
            "name": container,
            "containerID": f"docker://{name}-{container}",
            "restartCount": 0,
            "ready": ready,
            "state": {"running": {}} if phase == "Running" else {"waiting": {}},
        }
        for container in containers
    ]
    return {
        "metadata": meta,
        "spec": {"nodeName": node, "containers": [{"name": container} for container in containers]},
        "status": {
            "phase": phase,
            "podIP": "10.0.0.2",
            "containerStatuses": statuses,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def deployment(
    name: str, namespace: str = "default", *, replicas: int = 2, labels: dict[str, str] | None = None
) -> Obj:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {}), "generation": 1},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "updatedReplicas": replicas,
        },
    }


def node(name: str, *, unschedulable: bool = False, labels: dict[str, str] | None = None) -> Obj:
    return {
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {"unschedulable": unschedulable},
    }
