"""Selection and safety: the namespace allowlist, kube-system, protected pods, the blast radius."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import BlastRadius
from chaosrunner.faults.connections import KubernetesConnection
from chaosrunner.faults.kubernetes import fake
from chaosrunner.faults.kubernetes.fake import FakeKubeApi, labels_match
from chaosrunner.faults.kubernetes.selection import (
    PodInfo,
    PodSelector,
    namespace_refusal,
    select_pods,
    selector_string,
    workload_of,
)
from tests.unit.kube_support import cluster


def test_namespace_allowed_by_the_scenario_list() -> None:
    assert namespace_refusal(fake.namespace("other"), "other", ["other"]) is None


def test_namespace_allowed_by_its_annotation() -> None:
    assert namespace_refusal(fake.namespace("shop", allow_chaos=True), "shop", []) is None


def test_namespace_without_consent_is_refused() -> None:
    refusal = namespace_refusal(fake.namespace("other"), "other", ["shop"])
    assert refusal is not None and "allow-chaos" in refusal and "allowed_namespaces" in refusal


def test_kube_system_needs_the_explicit_list_even_when_annotated() -> None:
    annotated = fake.namespace("kube-system", allow_chaos=True)
    refusal = namespace_refusal(annotated, "kube-system", ["shop"])
    assert refusal is not None and "explicitly" in refusal
    assert namespace_refusal(annotated, "kube-system", ["kube-system"]) is None


def test_missing_namespace_is_refused() -> None:
    assert "does not exist" in str(namespace_refusal(None, "ghost", []))


def test_an_empty_selector_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least one of"):
        PodSelector()


def test_label_query_joins_labels_and_the_set_based_selector() -> None:
    selector = PodSelector(labels={"tier": "web", "app": "shop"}, label_selector="track in (stable,canary)")
    assert selector.label_query() == "app=shop,tier=web,track in (stable,canary)"
    assert labels_match({"app": "shop", "tier": "web", "track": "canary"}, selector.label_query())
    assert not labels_match({"app": "shop", "tier": "web", "track": "beta"}, selector.label_query())


def _shop() -> tuple[FakeKubeApi, KubernetesConnection]:
    api = cluster()
    owner = ("ReplicaSet", "web-abc")
    api.add("pods", fake.pod("web-1", "shop", labels={"app": "web"}, owner=owner))
    api.add("pods", fake.pod("web-2", "shop", labels={"app": "web"}, owner=owner))
    api.add("pods", fake.pod("web-3", "shop", labels={"app": "web", "chaosrunner.io/protect": "true"}))
    api.add("pods", fake.pod("web-4", "shop", labels={"app": "web"}, phase="Pending"))
    agent = fake.pod(
        "web-agent", "shop", labels={"app": "web", "app.kubernetes.io/managed-by": "chaosrunner"}
    )
    api.add("pods", agent)
    ending = fake.pod("web-5", "shop", labels={"app": "web"})
    ending["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    api.add("pods", ending)
    return api, KubernetesConnection(namespace="shop")


def test_select_pods_leaves_protected_pending_and_ending_pods_and_names_them() -> None:
    api, connection = _shop()
    chosen = select_pods(api, "f", PodSelector(labels={"app": "web"}), connection, BlastRadius(mode="all"))
    assert sorted(pod.name for pod in chosen.targets) == ["web-1", "web-2"]
    why = {pod.name: reason for pod, reason in chosen.excluded}
    assert "protect" in why["web-3"] and "Pending" in why["web-4"] and "deleted" in why["web-5"]
    assert "web-agent" not in why  # chaosrunner's own pods are not even candidates
    assert "web-3" in chosen.note()


def test_select_pods_applies_the_blast_radius_maximum() -> None:
    api, connection = _shop()
    with pytest.raises(PlanRefused, match="maximum"):
        select_pods(
            api,
            "f",
            PodSelector(labels={"app": "web"}),
            connection,
            BlastRadius(mode="all", maximum=1),
        )


def test_select_pods_refuses_a_namespace_without_consent() -> None:
    api, _ = _shop()
    with pytest.raises(PlanRefused, match="not allowed"):
        select_pods(
            api,
            "f",
            PodSelector(labels={"app": "web"}, namespace="other"),
            KubernetesConnection(namespace="shop"),
            BlastRadius(),
        )


def test_select_pods_refuses_kube_system_unless_listed() -> None:
    api, _ = _shop()
    selector = PodSelector(labels={"k8s-app": "kube-dns"}, namespace="kube-system")
    with pytest.raises(PlanRefused, match="kube-system"):
        select_pods(api, "f", selector, KubernetesConnection(), BlastRadius())
    with pytest.raises(PlanRefused, match="matched no targets"):  # allowed now; nothing matches
        select_pods(
            api,
            "f",
            selector,
            KubernetesConnection(allowed_namespaces=["kube-system"]),
            BlastRadius(),
        )


def test_name_glob_narrows_the_match() -> None:
    api, connection = _shop()
    chosen = select_pods(api, "f", PodSelector(name="web-2"), connection, BlastRadius())
    assert [pod.name for pod in chosen.targets] == ["web-2"]


def test_workload_of_follows_a_replica_set_to_its_deployment() -> None:
    api, _ = _shop()
    api.add(
        "replicasets",
        {
            "metadata": {
                "name": "web-abc",
                "namespace": "shop",
                "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": True}],
            }
        },
    )
    owner = workload_of(api, PodInfo.parse(api.get("pods", "web-1", "shop")))
    assert owner is not None and (owner.kind, owner.name) == ("Deployment", "web")
    assert workload_of(api, PodInfo.parse(api.get("pods", "web-3", "shop"))) is None


def test_selector_string_covers_match_expressions() -> None:
    text = selector_string(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }
    )
    assert text == "app=web,tier in (a,b),!legacy"


def test_a_namespace_being_deleted_is_refused() -> None:
    ending = fake.namespace("shop", allow_chaos=True)
    ending["status"] = {"phase": "Terminating"}
    assert "being deleted" in str(namespace_refusal(ending, "shop", ["shop"]))
