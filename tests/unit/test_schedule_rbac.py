"""The exported ServiceAccount's rules: every Kubernetes kind has them, and they follow the namespaces.

Whether the rules are *enough* is shown on a real RBAC-enforcing API server
(tests/e2e/test_schedule_rbac.py); here, that no kind can be forgotten and
that rules land where the faults act.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosrunner.faults.registry import registry
from chaosrunner.scenario.loader import load_scenario
from chaosrunner.schedule.kubernetes_rbac import KIND_RULES, allows, grants, merge, rule
from tests.unit.scenario_factory import scenario_data, write_scenario

pytestmark = pytest.mark.unit


def test_every_registered_kubernetes_kind_has_rules() -> None:
    kinds = {kind for kind in registry.kinds() if kind.startswith("kubernetes.")}
    assert kinds, "no kubernetes.* kind registered: the registry did not load its backends"
    missing = sorted(kinds - set(KIND_RULES))
    assert not missing, f"add rules for {missing} to chaosrunner/schedule/kubernetes_rbac.py"
    assert not set(KIND_RULES) - kinds, "rules for a kind the registry does not have"
    for kind, rules in KIND_RULES.items():
        assert rules.namespaced or rules.cluster, kind


@pytest.mark.parametrize(
    ("kind", "verb", "resource"),
    [  # the calls the review found missing, by the code that makes them
        ("kubernetes.postgres-connection-exhaustion", "create", "pods"),  # the holder pod
        ("kubernetes.postgres-connection-exhaustion", "create", "secrets"),  # its DSN
        ("kubernetes.postgres-connection-exhaustion", "get", "pods/log"),  # "ready" from the holder
        ("kubernetes.network-partition", "patch", "pods"),  # the partition label
        ("kubernetes.network-latency", "create", "pods"),  # a node agent on 1.20
        ("kubernetes.cpu-stress", "patch", "pods/ephemeralcontainers"),  # from 1.22
        ("kubernetes.cpu-stress", "update", "pods/ephemeralcontainers"),  # before 1.22
        ("kubernetes.cpu-stress", "get", "pods/exec"),  # the exec websocket is a GET on 1.20
        ("kubernetes.pod-kill", "create", "pods/eviction"),
    ],
)
def test_rules_cover_the_calls_the_faults_make(kind: str, verb: str, resource: str) -> None:
    assert allows(KIND_RULES[kind].namespaced, verb, "", resource)


def test_node_drain_is_cluster_wide_and_grants_nothing_per_namespace() -> None:
    drain = KIND_RULES["kubernetes.node-drain"]
    assert not drain.namespaced
    assert allows(drain.cluster, "list", "", "pods") and allows(drain.cluster, "create", "", "pods/eviction")


def test_grants_follow_the_target_namespace(tmp_path: Path) -> None:
    data = scenario_data(
        target={"kubernetes": {"namespace": "shop"}, "prometheus": "http://127.0.0.1:9090"},
        faults=[
            {
                "name": "a",
                "kind": "kubernetes.pod-kill",
                "selector": {"labels": {"app": "web"}},
                "params": {},
            },
            {
                "name": "b",
                "kind": "kubernetes.network-partition",
                "selector": {"namespace": "pay", "labels": {"app": "pay"}},
                "params": {},
            },
            {"name": "c", "kind": "kubernetes.node-cordon", "selector": {"name": "n1"}, "params": {}},
            {"name": "d", "kind": "inprocess.flag", "params": {"flag": "x"}},
        ],
    )
    scenario = load_scenario(write_scenario(tmp_path, data))
    granted = grants([scenario])
    assert sorted(granted.by_namespace) == ["pay", "shop"]
    assert allows(granted.by_namespace["shop"], "delete", "", "pods")
    assert not allows(granted.by_namespace["pay"], "delete", "", "pods")
    assert granted.cluster == [rule("", ["nodes"], ["get", "list", "patch"])]


def test_merge_unites_verbs_per_resource() -> None:
    merged = merge([rule("", ["pods"], ["get"]), rule("", ["pods", "pods/log"], ["list", "get"])])
    assert merged == [rule("", ["pods"], ["get", "list"]), rule("", ["pods/log"], ["get", "list"])]
