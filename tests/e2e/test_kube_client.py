"""The live Kubernetes client against the real 1.20 API server: what our fakes take on trust.

``metadata_only`` (pod-kill confirms its pods gone with it) asks the server
for PartialObjectMetadata; the fake answers the same shape, so this is where
it is shown that the server does, in a list (paged) and in a watch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from chaosrunner.faults.kubernetes.api import KubeApi
from tests.e2e.kube_helpers import chaos_namespace

pytestmark = pytest.mark.e2e

UNSCHEDULABLE = {"nodeSelector": {"chaosrunner.test/nowhere": "true"}}
"""Pods that stay Pending: no node has the label, so no kubelet is involved."""


@pytest.fixture
def namespace(kube_api: KubeApi) -> Iterator[str]:
    yield from chaos_namespace(kube_api)


def _pod(name: str) -> dict[str, object]:
    return {
        "metadata": {"name": name, "labels": {"app": "metadata-only"}},
        "spec": {"containers": [{"name": "app", "image": "none"}], **UNSCHEDULABLE},
    }


def test_a_metadata_only_list_pages_through_metadata_alone(kube_api: KubeApi, namespace: str) -> None:
    created = {kube_api.create("pods", _pod(f"p{i}"), namespace)["metadata"]["uid"] for i in range(5)}

    pages = list(kube_api.pages("pods", namespace, labels="app=metadata-only", limit=2, metadata_only=True))

    assert [len(page.items) for page in pages] == [2, 2, 1]
    assert all(page.resource_version for page in pages)
    items = [item for page in pages for item in page.items]
    assert {item["kind"] for item in items} == {"PartialObjectMetadata"}
    assert all(set(item) == {"apiVersion", "kind", "metadata"} for item in items)
    assert {item["metadata"]["uid"] for item in items} == created


def test_a_metadata_only_watch_sees_a_deletion_by_uid(kube_api: KubeApi, namespace: str) -> None:
    start = next(kube_api.pages("pods", namespace, limit=1, metadata_only=True)).resource_version
    uid = kube_api.create("pods", _pod("doomed"), namespace)["metadata"]["uid"]

    def delete_soon() -> None:
        time.sleep(0.5)
        kube_api.delete("pods", "doomed", namespace, grace_seconds=0, uid=uid)

    deleting = threading.Thread(target=delete_soon)
    deleting.start()
    seen: list[tuple[str, str, str]] = []
    for event in kube_api.watch("pods", namespace, resource_version=start, timeout=10, metadata_only=True):
        seen.append((event.type, event.object["kind"], event.object["metadata"]["uid"]))
        assert "spec" not in event.object and "status" not in event.object
        if event.type == "DELETED":
            break
    deleting.join()

    assert seen[0] == ("ADDED", "PartialObjectMetadata", uid)
    assert seen[-1] == ("DELETED", "PartialObjectMetadata", uid)
