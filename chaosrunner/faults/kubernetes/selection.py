"""Which pods, workloads and nodes a Kubernetes fault may hit: selectors and safety rules.

Selectors are Kubernetes' own: ``labels`` (equality, like ``matchLabels``),
``label_selector`` (the full set-based syntax, ``app in (web,api),tier!=db``)
and ``field_selector`` (``spec.nodeName=node-1``, ``status.phase=Running``),
evaluated by the API server; ``name`` is a glob on the object name, applied
here. Every criterion given must match. An empty selector is refused by
validation: "every pod in the namespace" is never what a scenario means.

Safety, checked in ``plan`` before anything is touched:

- the **namespace allowlist**: a namespace may be touched when the scenario
  names it in ``target.kubernetes.allowed_namespaces`` or when the namespace
  itself carries the annotation ``chaosrunner.io/allow-chaos=true`` (its
  owner's consent, visible to anyone who looks at it);
- ``kube-system`` is refused unless ``allowed_namespaces`` names it
  explicitly: an annotation is not enough for the cluster's own machinery;
- objects labelled ``chaosrunner.io/protect=true`` are left alone, and so is
  everything chaosrunner created itself (its agents and holders);
- pods being deleted, not Running, or mirror pods of static manifests (deleting
  one does not stop it) are dropped and named in the plan.

Then ``choose_targets`` applies the blast radius (and refuses an empty match);
a percentage is of the candidates left after the safety rules. ``random: true``
(the Chaos Monkey) takes victims only among pods labelled
``chaosrunner.io/monkey=enabled``, one by default; with a count or a percent it
spreads them over nodes: round-robin over the candidates' nodes in random
order, a random pod of each, so every node gives one victim before any gives
two. Plans say how many nodes they hit.

Pods are read a page at a time and kept as ``PodInfo`` (the few facts the
faults use), never as the API's whole objects: 5,000 pods' JSON would cost
hundreds of megabytes, their ``PodInfo`` a few.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import Field, field_serializer, model_validator

from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import BlastRadius, FaultRequest, FaultSelector, choose_targets
from chaosrunner.faults.connections import KubernetesConnection
from chaosrunner.faults.kubernetes.api import Invalid, KubeApi, NotFound, Obj
from chaosrunner.faults.kubernetes.ownership import (
    ALLOW_CHAOS,
    annotations_of,
    is_ours,
    is_protected,
    labels_of,
)

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
PROTECTED_NAMESPACE = "kube-system"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


class _KubeSelector(FaultSelector):
    labels: dict[str, str] = Field(
        default_factory=dict, description="labels the object must carry, each with exactly this value"
    )
    label_selector: str | None = Field(
        None, min_length=1, description="Kubernetes label selector, set-based syntax allowed: app in (a,b)"
    )
    field_selector: str | None = Field(
        None, min_length=1, description="Kubernetes field selector, e.g. spec.nodeName=node-1"
    )
    name: str | None = Field(None, min_length=1, description="glob on the object name (fnmatch: web-*)")

    @model_validator(mode="after")
    def _says_something(self) -> Self:
        if not self.has_criterion():
            raise ValueError(
                "a Kubernetes selector needs at least one of labels, label_selector, field_selector or name "
                "(an empty selector would match everything)"
            )
        return self

    def has_criterion(self) -> bool:
        return bool(self.labels or self.label_selector or self.field_selector or self.name)

    def required_labels(self) -> dict[str, str]:
        return dict(self.labels)

    def label_query(self) -> str | None:
        terms = [f"{key}={value}" for key, value in sorted(self.required_labels().items())]
        if self.label_selector:
            terms.append(self.label_selector)
        return ",".join(terms) or None

    def name_matches(self, name: str) -> bool:
        return self.name is None or fnmatch.fnmatchcase(name, self.name)


MONKEY_LABEL = "chaosrunner.io/monkey"


class PodSelector(_KubeSelector):
    """Pods in one namespace; every criterion given must match."""

    random_spreads: ClassVar[bool] = True
    """``random`` takes any blast radius here (spread over nodes); the loader asks this."""

    namespace: str | None = Field(
        None, pattern=DNS_LABEL, description="namespace of the pods; default: target.kubernetes.namespace"
    )
    random: bool = Field(
        False,
        description="Chaos Monkey: victims picked at random among pods that opted in with the label "
        "chaosrunner.io/monkey=enabled (combined with any other criterion given); one unless the blast "
        "radius says more, then spread evenly over the nodes",
    )

    @model_validator(mode="after")
    def _the_opt_in_cannot_be_widened(self) -> Self:
        # The monkey only ever picks pods that opted in; a selector may narrow that, never widen it.
        asked = self.labels.get(MONKEY_LABEL, "enabled")
        if self.random and asked != "enabled":
            raise ValueError(
                f"random picks only pods labelled {MONKEY_LABEL}=enabled; "
                f"labels cannot ask for {MONKEY_LABEL}={asked}"
            )
        return self

    def has_criterion(self) -> bool:
        # `random: true` by itself is a complete selector: it means "the opted-in pods".
        return self.random or super().has_criterion()

    def required_labels(self) -> dict[str, str]:
        return {**self.labels, MONKEY_LABEL: "enabled"} if self.random else dict(self.labels)

    @field_serializer("labels")
    def _show_the_opt_in(self, labels: dict[str, str]) -> dict[str, str]:
        # Plans, journals and reports show the label the monkey requires, not just random=true.
        return self.required_labels()


class WorkloadSelector(_KubeSelector):
    """Deployments (or StatefulSets) in one namespace."""

    namespace: str | None = Field(
        None,
        pattern=DNS_LABEL,
        description="namespace of the workloads; default: target.kubernetes.namespace",
    )


class NodeSelector(_KubeSelector):
    """Nodes of the cluster (they belong to no namespace)."""


# ----------------------------------------------------------------------------- namespaces


def namespace_of(selector: PodSelector | WorkloadSelector, connection: KubernetesConnection) -> str:
    return selector.namespace or connection.namespace


def namespace_refusal(namespace: Obj | None, name: str, allowed: Sequence[str]) -> str | None:
    """Why ``name`` may not be touched, or None when it may (pure: the namespace object is given)."""
    if namespace is None:
        return f"namespace {name!r} does not exist"
    if (namespace.get("status") or {}).get("phase") == "Terminating":
        return f"namespace {name!r} is being deleted"
    if name in allowed:
        return None
    if name == PROTECTED_NAMESPACE:
        return (
            f"namespace {name!r} is refused unless target.kubernetes.allowed_namespaces names it "
            "explicitly (its allow-chaos annotation is not enough)"
        )
    if str(annotations_of(namespace).get(ALLOW_CHAOS, "")).lower() == "true":
        return None
    return (
        f"namespace {name!r} is not allowed: add it to target.kubernetes.allowed_namespaces "
        f"or annotate it {ALLOW_CHAOS}=true"
    )


def check_namespace(api: KubeApi, fault: str, name: str, allowed: Sequence[str]) -> None:
    """Refuse the plan unless faults may touch namespace ``name``."""
    namespace: Obj | None
    try:
        namespace = api.get("namespaces", name)
    except NotFound:
        namespace = None
    refusal = namespace_refusal(namespace, name, allowed)
    if refusal:
        raise PlanRefused(f"fault {fault!r}: {refusal}")


def namespace_allowed(api: KubeApi, name: str, allowed: Sequence[str]) -> bool:
    try:
        namespace: Obj | None = api.get("namespaces", name)
    except NotFound:
        namespace = None
    return namespace_refusal(namespace, name, allowed) is None


# ----------------------------------------------------------------------------- pods


@dataclass(frozen=True)
class OwnerRef:
    kind: str
    name: str
    namespace: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "namespace": self.namespace}

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class PodInfo:
    """The facts about a pod that selection, plans and records use (the API's object is not kept)."""

    namespace: str
    name: str
    uid: str
    node: str
    phase: str
    ip: str
    labels: dict[str, str]
    containers: dict[str, str]
    """container name -> runtime id (``docker://...``), for running containers."""
    restarts: dict[str, int]
    controller: tuple[str, str] | None
    """(kind, name) of the controlling owner reference."""
    terminating: bool
    mirror: bool
    spec_containers: tuple[str, ...] = ()
    """Names of the spec's containers, in order."""
    host_network: bool = False

    @classmethod
    def parse(cls, pod: Obj) -> PodInfo:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        statuses = status.get("containerStatuses") or []
        controller = next(
            (
                (ref["kind"], ref["name"])
                for ref in meta.get("ownerReferences") or []
                if ref.get("controller")
            ),
            None,
        )
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
            node=str(spec.get("nodeName") or ""),
            phase=str(status.get("phase") or ""),
            ip=str(status.get("podIP") or ""),
            labels=dict(meta.get("labels") or {}),
            containers={
                entry["name"]: entry["containerID"]
                for entry in statuses
                if entry.get("containerID") and "running" in (entry.get("state") or {})
            },
            restarts={entry["name"]: int(entry.get("restartCount", 0)) for entry in statuses},
            controller=controller,
            terminating=bool(meta.get("deletionTimestamp")),
            mirror=MIRROR_ANNOTATION in (meta.get("annotations") or {}),
            spec_containers=tuple(str(entry.get("name")) for entry in spec.get("containers") or []),
            host_network=bool(spec.get("hostNetwork")),
        )

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def ours(self) -> bool:
        return is_ours(self.as_labelled())

    @property
    def protected(self) -> bool:
        return is_protected(self.as_labelled())

    def as_labelled(self) -> Obj:
        """Just enough of an object for the ownership rules, which read labels."""
        return {"metadata": {"labels": self.labels}}

    def container_names(self) -> list[str]:
        return list(self.spec_containers)


Suitability = Callable[[PodInfo], str | None]
"""Why a matched pod is unsuitable for a fault (None: suitable)."""


def running(pod: PodInfo) -> str | None:
    if pod.terminating:
        return "is being deleted"
    if pod.phase != "Running":
        return f"is {pod.phase or 'in an unknown phase'}, not Running"
    return None


NOTED_EXCLUSIONS = 10
"""Pods left alone that a plan names one by one; beyond, it counts them."""


@dataclass
class PodSelection:
    targets: list[PodInfo]
    excluded: list[tuple[PodInfo, str]]
    namespace: str
    candidates: int = 0
    """Pods the selector matched that the safety rules allowed: what a percentage is of."""

    def nodes_hit(self) -> int:
        return len({pod.node for pod in self.targets})

    def spread(self) -> str:
        if len(self.targets) < 2:
            return ""
        return f" (on {self.nodes_hit()} node(s), {len(self.targets)} of {self.candidates} candidates)"

    def note(self) -> str:
        if not self.excluded:
            return ""
        shown = "; ".join(f"{pod.name} {why}" for pod, why in self.excluded[:NOTED_EXCLUSIONS])
        more = len(self.excluded) - NOTED_EXCLUSIONS
        return " (left alone: " + shown + (f"; and {more} more" if more > 0 else "") + ")"


def list_pods(api: KubeApi, fault: str, namespace: str, selector: _KubeSelector) -> Iterator[PodInfo]:
    """The matching pods, parsed page by page (each page's JSON is dropped once parsed)."""
    try:
        for page in api.pages(
            "pods", namespace, labels=selector.label_query(), fields=selector.field_selector
        ):
            yield from (PodInfo.parse(raw) for raw in page.items)
    except Invalid as exc:
        raise PlanRefused(f"fault {fault!r}: the API server refused the selector: {exc}") from exc


def select_pods(
    api: KubeApi,
    fault: str,
    selector: PodSelector,
    connection: KubernetesConnection,
    blast_radius: BlastRadius,
    suitable: Suitability = running,
) -> PodSelection:
    """Matching pods that the safety rules allow, narrowed by the blast radius."""
    namespace = namespace_of(selector, connection)
    check_namespace(api, fault, namespace, connection.allowed_namespaces)
    candidates: list[PodInfo] = []
    excluded: list[tuple[PodInfo, str]] = []
    for pod in list_pods(api, fault, namespace, selector):
        if not selector.name_matches(pod.name):
            continue
        if pod.ours:
            continue  # chaosrunner's own agents and holders are never targets, nor worth a mention
        why = "is labelled chaosrunner.io/protect=true" if pod.protected else None
        if why is None and pod.mirror:
            why = "is a static (mirror) pod: the API cannot stop it"
        why = why or suitable(pod)
        if why:
            excluded.append((pod, why))
        else:
            candidates.append(pod)
    candidates.sort(key=lambda pod: pod.name)
    if selector.random and not candidates:
        raise PlanRefused(
            f"fault {fault!r}: no pod in namespace {namespace} has opted in to the Chaos Monkey "
            f"(label {MONKEY_LABEL}=enabled) and matches the rest of the selector"
        )
    spread = node_of if selector.random else None
    chosen = choose_targets(fault, candidates, blast_radius, spread_by=spread)
    return PodSelection(chosen, excluded, namespace, len(candidates))


def node_of(pod: PodInfo) -> str:
    return pod.node


def pods_for(api: KubeApi, request: FaultRequest, suitable: Suitability = running) -> PodSelection:
    """``select_pods`` with everything it needs taken from a fault request."""
    assert isinstance(request.selector, PodSelector)
    return select_pods(
        api, request.name, request.selector, request.connections.kubernetes, request.blast_radius, suitable
    )


def names(pods: Sequence[PodInfo]) -> str:
    shown = ", ".join(pod.name for pod in pods[:5])
    return shown + (f" and {len(pods) - 5} more" if len(pods) > 5 else "")


# ----------------------------------------------------------------------------- owners


def workload_of(api: KubeApi, pod: PodInfo) -> OwnerRef | None:
    """The Deployment, StatefulSet, DaemonSet (or bare ReplicaSet) that keeps this pod's replicas."""
    if pod.controller is None:
        return None
    kind, name = pod.controller
    if kind == "ReplicaSet":
        try:
            replica_set = api.get("replicasets", name, pod.namespace)
        except NotFound:
            return OwnerRef(kind, name, pod.namespace)
        parent = next(
            (
                ref
                for ref in (replica_set.get("metadata") or {}).get("ownerReferences") or []
                if ref.get("controller")
            ),
            None,
        )
        if parent is not None and parent.get("kind") == "Deployment":
            return OwnerRef("Deployment", str(parent["name"]), pod.namespace)
    return OwnerRef(kind, name, pod.namespace)


def selector_string(match: dict[str, Any]) -> str:
    """A workload's ``spec.selector`` (matchLabels and matchExpressions) as a label selector string."""
    terms = [f"{key}={value}" for key, value in sorted((match.get("matchLabels") or {}).items())]
    for expression in match.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = ",".join(expression.get("values") or [])
        terms.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(
                operator, f"!{key}"
            )
        )
    return ",".join(terms)


def is_workload_protected(obj: Obj) -> bool:
    return is_protected(obj)


def workload_labels(obj: Obj) -> dict[str, str]:
    return labels_of(obj)
