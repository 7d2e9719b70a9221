"""What a scheduled run's ServiceAccount may do, per fault kind, derived from the calls the faults make.

A CronJob's pod runs chaosrunner under a ServiceAccount; a rule too few is a
403 at three in the morning, a rule too many is blast radius nobody asked
for. So each kind's rules below are read off its code (``faults/kubernetes``),
call by call, with the ``KubeApi`` method mapped to the RBAC verb the API
server checks:

=================  =============================================================
``get``            get          (``subresource`` -> ``pods/ephemeralcontainers``)
``list``           list         (``namespace=None`` lists every namespace: cluster)
``watch``          watch
``create``         create       (``pods/eviction`` for an eviction)
``replace``        update
``patch``          patch
``delete``         delete
``exec``           get *and* create on ``pods/exec``: 1.20's websocket upgrade is
                   a GET, newer servers check create
``logs``           get on ``pods/log``
=================  =============================================================

The pieces every pod-selecting kind shares (``selection.py``): the namespace
allowlist reads the namespace (``get namespaces``), pods are listed and read
again, and a pod's owner is found through its ReplicaSet. Agents
(``agents.py``) come in two placements: a node pod the fault creates, reads
the log of and deletes; or an ephemeral container added to the target pod
(a strategic patch of ``pods/ephemeralcontainers`` from 1.22, a PUT of it
before), after a label/annotation patch of the pod, stopped by an exec.

Rules are granted where they are used: a Role and RoleBinding in each
namespace a scenario targets (``namespaces_of``), and a ClusterRole only for
what is cluster-wide by nature (nodes, and a drain's pods in every namespace).
``tests/unit/test_schedule_rbac.py`` fails when a registered ``kubernetes.*``
kind has no entry here, and the e2e test runs every kind under the exported
ServiceAccount on a real cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chaosrunner.scenario.models import FaultSpec, Scenario

Rule = dict[str, Any]


def rule(group: str, resources: list[str], verbs: list[str]) -> Rule:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


@dataclass(frozen=True)
class KindRules:
    namespaced: list[Rule] = field(default_factory=list)
    """Granted in each namespace the fault targets."""
    cluster: list[Rule] = field(default_factory=list)
    """Granted cluster-wide (a ClusterRole): nodes, or objects in every namespace."""


READ_NAMESPACE = rule("", ["namespaces"], ["get"])
SELECT_PODS = [READ_NAMESPACE, rule("", ["pods"], ["get", "list"]), rule("apps", ["replicasets"], ["get"])]
READ_OWNERS = rule("apps", ["deployments", "statefulsets"], ["get"])
EXEC = rule("", ["pods/exec"], ["get", "create"])
LOGS = rule("", ["pods/log"], ["get"])
NODE_AGENT = [rule("", ["pods"], ["create", "delete"]), LOGS]
EPHEMERAL_AGENT = [
    rule("", ["pods"], ["patch"]),  # the run label and agent annotation, before and after
    rule("", ["pods/ephemeralcontainers"], ["get", "update", "patch"]),
    EXEC,
    LOGS,
]
NODES = rule("", ["nodes"], ["get", "list", "patch"])

KIND_RULES: dict[str, KindRules] = {
    "kubernetes.pod-kill": KindRules(
        [
            *SELECT_PODS,
            rule("", ["pods"], ["delete", "watch"]),
            rule("", ["pods/eviction"], ["create"]),
            READ_OWNERS,
        ]
    ),
    "kubernetes.container-kill": KindRules([*SELECT_PODS, rule("", ["pods"], ["watch"]), *NODE_AGENT]),
    "kubernetes.deployment-scale": KindRules(
        [
            READ_NAMESPACE,
            rule("apps", ["deployments", "statefulsets"], ["get", "list", "patch"]),
            rule("", ["pods"], ["list", "watch"]),
        ]
    ),
    "kubernetes.network-partition": KindRules(
        [
            *SELECT_PODS,
            rule("", ["pods"], ["patch"]),
            rule("networking.k8s.io", ["networkpolicies"], ["get", "create", "delete"]),
        ]
    ),
    # Latency and loss: an ephemeral agent where the server allows NET_ADMIN in one, a node pod before.
    "kubernetes.network-latency": KindRules([*SELECT_PODS, *NODE_AGENT, *EPHEMERAL_AGENT]),
    "kubernetes.network-loss": KindRules([*SELECT_PODS, *NODE_AGENT, *EPHEMERAL_AGENT]),
    "kubernetes.cpu-stress": KindRules([*SELECT_PODS, *EPHEMERAL_AGENT]),
    "kubernetes.memory-stress": KindRules([*SELECT_PODS, *EPHEMERAL_AGENT]),
    # The holder pod reads its DSN from a Secret the fault creates (or one it checks exists).
    "kubernetes.postgres-connection-exhaustion": KindRules(
        [
            READ_NAMESPACE,
            rule("", ["secrets"], ["get", "create", "delete"]),
            rule("", ["pods"], ["get", "create", "delete"]),
            LOGS,
        ]
    ),
    "kubernetes.node-cordon": KindRules(cluster=[NODES]),
    # A drain lists the node's pods in every namespace, reads each namespace's allowlist, evicts.
    "kubernetes.node-drain": KindRules(
        cluster=[
            NODES,
            rule("", ["pods"], ["list"]),
            READ_NAMESPACE,
            rule("", ["pods/eviction"], ["create"]),
        ]
    ),
}


def rules_for(kind: str) -> KindRules | None:
    """The kind's rules; None for a kind that never talks to Kubernetes."""
    return KIND_RULES.get(kind)


def target_namespace(fault: FaultSpec, scenario: Scenario) -> str | None:
    """The namespace a namespaced fault touches (its selector's, its params', or the target's)."""
    rules = rules_for(fault.kind)
    if rules is None or not rules.namespaced:
        return None
    for source in (fault.selector, fault.params):
        named = getattr(source, "namespace", None)
        if isinstance(named, str) and named:
            return named
    return scenario.target.kubernetes.namespace


def merge(rules: list[Rule]) -> list[Rule]:
    """One rule per (group, resource), verbs united and in a stable order: a short, readable Role."""
    verbs: dict[tuple[str, str], list[str]] = {}
    for item in rules:
        for group in item["apiGroups"]:
            for resource in item["resources"]:
                known = verbs.setdefault((group, resource), [])
                known.extend(verb for verb in item["verbs"] if verb not in known)
    return [rule(group, [resource], sorted(found)) for (group, resource), found in sorted(verbs.items())]


@dataclass
class Grants:
    by_namespace: dict[str, list[Rule]] = field(default_factory=dict)
    cluster: list[Rule] = field(default_factory=list)


def grants(scenarios: list[Scenario]) -> Grants:
    """Every rule the scenarios' faults need, in the namespace (or cluster scope) they need it."""
    namespaced: dict[str, list[Rule]] = {}
    cluster: list[Rule] = []
    for scenario in scenarios:
        for fault in scenario.faults:
            rules = rules_for(fault.kind)
            if rules is None:
                continue
            cluster += rules.cluster
            namespace = target_namespace(fault, scenario)
            if namespace is not None:
                namespaced.setdefault(namespace, []).extend(rules.namespaced)
    return Grants({ns: merge(found) for ns, found in sorted(namespaced.items())}, merge(cluster))


def allows(rules: list[Rule], verb: str, group: str, resource: str) -> bool:
    """Whether ``rules`` grant ``verb`` on ``group``/``resource`` (RBAC's own matching, without names)."""
    return any(
        group in item["apiGroups"] and resource in item["resources"] and verb in item["verbs"]
        for item in rules
    )
