"""``chaosrunner recover --kubernetes``: find and undo what a run left in a cluster, journal or not.

``recover`` normally replays the journal's revert records. When the journal
is gone (the laptop that ran the gameday died with it), the cluster itself
still says what chaosrunner did, because every write carried our labels (see
``ownership``). ``sweep`` reads them back and undoes, in the order that ends
the faults soonest:

1. ephemeral agents (pods labelled with the run, annotated
   ``agents.chaosrunner.io/<container>``): stopped with an ``exec`` (they
   cannot be removed); a network agent that did not report removing its
   rules gets a cleanup agent; the pod's marks are dropped;
2. pods chaosrunner created (node agents, PostgreSQL holders): deleted, with
   a grace period so agents remove their rules on the way out;
3. NetworkPolicies and Secrets chaosrunner created: deleted;
4. pods still labelled ``chaosrunner.io/partition``: the label is dropped;
5. Deployments and StatefulSets annotated ``original-replicas``: restored;
6. nodes annotated ``cordoned-by``: uncordoned.

Steps run one after the other in that order; within a step the objects are
handled on a bounded thread pool (``SWEEP_WORKERS`` requests in flight), a
list page (500 objects) at a time, and only the fields a step needs are kept
of each page - thousands of labelled objects are swept in seconds, in little
memory. One object's failure is recorded under its name and the rest go on.

Every step is idempotent, so a sweep can be repeated. One run (``run_id``) or
every run (``None``): the caller (the CLI) must not sweep a run that is still
live - ``runs_in_cluster`` lists the run ids present, to compare with the
state folder's live runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chaosrunner.errors import ChaosrunnerError
from chaosrunner.faults.connections import KubernetesConnection
from chaosrunner.faults.kubernetes import agents, ephemeral, ownership
from chaosrunner.faults.kubernetes.agents import AgentRef, Placement, agent_argv
from chaosrunner.faults.kubernetes.api import KubeApi, Obj
from chaosrunner.faults.kubernetes.client import open_api
from chaosrunner.faults.kubernetes.fault import Connector
from chaosrunner.faults.kubernetes.nodes import uncordon
from chaosrunner.faults.kubernetes.target import resolve
from chaosrunner.faults.kubernetes.workloads import restore

CREATED_KINDS = ("pods", "networkpolicies", "secrets")


@dataclass
class SweepReport:
    run_id: str | None
    cluster: str
    stopped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def nothing_found(self) -> bool:
        return not (self.stopped or self.deleted or self.restored or self.failed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "cluster": self.cluster,
            "stopped": self.stopped,
            "deleted": self.deleted,
            "restored": self.restored,
            "failed": self.failed,
        }


SWEEP_WORKERS = 32
"""Requests in flight within one step. A write waits on etcd (250 ms each, one at a time, on the
loaded test rig: 4 deletions/s), so the pace is requests in flight: 36/s with 16, 21-49/s with 32,
46/s with 64 there - noisy, flat past 32, so 32, well inside the client's pool of 64."""

Found = tuple[str, str]
"""(report bucket: stopped, deleted or restored; what was done) for one object."""
Action = Callable[[Obj], list[Found]]


def runs_in_cluster(connection: KubernetesConnection, *, connect: Connector = open_api) -> set[str]:
    """Run ids that label anything in the cluster (created or changed objects)."""
    api = connect(resolve(connection))
    try:
        found: set[str] = set()
        for plural in ("pods", "networkpolicies", "secrets", "deployments", "statefulsets", "nodes"):
            for page in api.pages(plural, None, labels=ownership.RUN_ID):
                found.update(ownership.labels_of(obj)[ownership.RUN_ID] for obj in page.items)
        return found
    finally:
        api.close()


def sweep(
    connection: KubernetesConnection,
    run_id: str | None = None,
    *,
    connect: Connector = open_api,
    workers: int = SWEEP_WORKERS,
) -> SweepReport:
    """Undo everything ``run_id`` (None: every run) left in the cluster; see the module docstring."""
    target = resolve(connection)
    report = SweepReport(run_id, target.describe())
    api = connect(target)
    changed = ownership.changed_selector(run_id)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep") as pool:
            each = _Each(api, pool, report)
            each(
                "ephemeral agents",
                "pods",
                changed,
                lambda pod: _stop_ephemeral_agents(api, pod),
                _agents_only,
            )
            for plural in CREATED_KINDS:
                each(
                    f"created {plural}",
                    plural,
                    ownership.created_selector(run_id),
                    lambda obj, plural=plural: _delete_created(api, plural, obj),  # type: ignore[misc]
                )
            each(
                "partition labels",
                "pods",
                f"{changed},{ownership.PARTITION}",
                lambda pod: _drop_partition_label(api, pod),
                _labels_only,
            )
            for plural in ("deployments", "statefulsets"):
                each(
                    f"scaled {plural}",
                    plural,
                    changed,
                    lambda obj, plural=plural: _restore_scaled(api, plural, obj),  # type: ignore[misc]
                )
            each("cordoned nodes", "nodes", changed, lambda node: _uncordon_node(api, node))
    finally:
        api.close()
    return report


def _metadata_only(obj: Obj) -> Obj | None:
    """What most steps read of an object: its metadata (labels, annotations, name, deletion)."""
    return {"metadata": obj.get("metadata") or {}}


def _labels_only(obj: Obj) -> Obj | None:
    meta = obj.get("metadata") or {}
    kept = {key: meta.get(key) for key in ("name", "namespace", "labels", "annotations")}
    return {"metadata": kept}


def _agents_only(pod: Obj) -> Obj | None:
    """Pods with an agent's annotation (whole: the cleanup needs the agent's image); others skipped."""
    if any(key.startswith(agents.AGENT_ANNOTATION_PREFIX) for key in ownership.annotations_of(pod)):
        return {"metadata": pod.get("metadata") or {}, "spec": pod.get("spec") or {}}
    return None


class _Each:
    """One step: every matching object, a page at a time, on the pool; failures recorded per object."""

    def __init__(self, api: KubeApi, pool: ThreadPoolExecutor, report: SweepReport) -> None:
        self.api = api
        self.pool = pool
        self.report = report

    def __call__(
        self,
        what: str,
        plural: str,
        labels: str,
        action: Action,
        keep: Callable[[Obj], Obj | None] = _metadata_only,
    ) -> None:
        try:
            for page in self.api.pages(plural, None, labels=labels):
                kept = [obj for obj in map(keep, page.items) if obj is not None]
                del page  # only what the step reads stays in memory while the pool works
                for obj, outcome in zip(
                    kept, self.pool.map(lambda obj: _guarded(action, obj), kept), strict=True
                ):
                    if isinstance(outcome, str):
                        self.report.failed[f"{what} {_name(obj)}"] = outcome
                        continue
                    for bucket, text in outcome:
                        getattr(self.report, bucket).append(text)
        except ChaosrunnerError as exc:  # the list itself failed: the step could not look
            self.report.failed[what] = str(exc)


def _guarded(action: Action, obj: Obj) -> list[Found] | str:
    try:
        return action(obj)
    except ChaosrunnerError as exc:
        return str(exc)


def _run_of(obj: Obj) -> str:
    return ownership.labels_of(obj).get(ownership.RUN_ID, "")


def _name(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))


# ----------------------------------------------------------------------------- the steps


def _stop_ephemeral_agents(api: KubeApi, pod: Obj) -> list[Found]:
    found: list[Found] = []
    meta = pod["metadata"]
    for key, value in ownership.annotations_of(pod).items():
        if not key.startswith(agents.AGENT_ANNOTATION_PREFIX):
            continue
        ref = AgentRef(
            Placement.EPHEMERAL,
            meta["namespace"],
            meta["name"],
            key[len(agents.AGENT_ANNOTATION_PREFIX) :],
        )
        try:
            note = json.loads(value)
            if agents.state(api, ref) == "running":
                agents.stop(api, ref, note["marker"])
                found.append(("stopped", f"ephemeral {ref.where}"))
            if note.get("kind") == "shape":
                version = api.server_version()
                cleaned = _clean_if_needed(api, pod, ref, note["marker"], version, _run_of(pod))
                if cleaned:
                    found.append(("restored", cleaned))
            agents.unmark_pod(api, ref)
        except (ValueError, KeyError) as exc:
            raise ChaosrunnerError(f"ephemeral {ref.where}: {exc}") from exc
    return found


def _clean_if_needed(
    api: KubeApi,
    pod: Obj,
    ref: AgentRef,
    marker: str,
    version: tuple[int, int],
    run: str,
) -> str | None:
    """A network agent that ended without saying it cleaned up gets a cleanup agent in the same pod."""
    seen = agents.events(api, ref)
    if any(event["event"] == "stopped" and event.get("cleaned") for event in seen):
        return None
    if not any(event["event"] == "ready" for event in seen) and agents.state(api, ref) is None:
        return None  # it never started: no rules to remove
    image = next(
        (
            entry["image"]
            for entry in (pod.get("spec") or {}).get("ephemeralContainers") or []
            if entry["name"] == ref.container
        ),
        agents.DEFAULT_AGENT_IMAGE,
    )
    cleaner_name = ref.container.rsplit("-", 1)[0] + "-clean"
    comment = marker.rsplit(":", 1)[0]
    spec = {"netns": None, "comment": comment, "device": "eth0"}
    container = ephemeral.container_spec(
        cleaner_name, image, agent_argv("cleanup", marker, spec), capabilities=("NET_ADMIN",)
    )
    cleaner = agents.launch_ephemeral(
        api, ref.namespace, ref.pod, container, version, run_id=run, kind="clean", marker=marker
    )
    agents.wait_for(api, cleaner, {"cleaned"}, 60.0)
    agents.unmark_pod(api, cleaner)
    return f"redirect rules removed in {ref.namespace}/{ref.pod}"


def _delete_created(api: KubeApi, plural: str, obj: Obj) -> list[Found]:
    meta = obj["metadata"]
    if meta.get("deletionTimestamp"):
        return []  # already on its way out (a sweep a moment ago, or its own deadline)
    grace = 15 if plural == "pods" else None
    if api.delete(plural, meta["name"], meta["namespace"], grace_seconds=grace):
        return [("deleted", f"{plural} {_name(obj)}")]
    return []


def _drop_partition_label(api: KubeApi, pod: Obj) -> list[Found]:
    meta = pod["metadata"]
    labels: dict[str, None] = {ownership.PARTITION: None}
    if not ownership.other_marks(pod, dropping_partition=True):
        labels[ownership.RUN_ID] = None
    api.patch("pods", meta["name"], {"metadata": {"labels": labels}}, meta["namespace"])
    return [("restored", f"partition label dropped from pod {_name(pod)}")]


def _restore_scaled(api: KubeApi, plural: str, obj: Obj) -> list[Found]:
    meta = obj["metadata"]
    if restore(api, plural, meta["namespace"], meta["name"], _run_of(obj)):
        original = ownership.annotations_of(obj).get(ownership.ORIGINAL_REPLICAS)
        return [("restored", f"{plural} {_name(obj)} back to {original} replicas")]
    return []


def _uncordon_node(api: KubeApi, node: Obj) -> list[Found]:
    if uncordon(api, node["metadata"]["name"], _run_of(node)):
        return [("restored", f"node {node['metadata']['name']} uncordoned")]
    return []
