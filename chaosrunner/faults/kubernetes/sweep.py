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

Every step is idempotent, so a sweep can be repeated. One run (``run_id``) or
every run (``None``): the caller (the CLI) must not sweep a run that is still
live - ``runs_in_cluster`` lists the run ids present, to compare with the
state folder's live runs.
"""

from __future__ import annotations

import json
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


def runs_in_cluster(connection: KubernetesConnection, *, connect: Connector = open_api) -> set[str]:
    """Run ids that label anything in the cluster (created or changed objects)."""
    api = connect(resolve(connection))
    try:
        found: set[str] = set()
        for plural in ("pods", "networkpolicies", "secrets", "deployments", "statefulsets", "nodes"):
            for obj in api.list(plural, None, labels=ownership.RUN_ID):
                found.add(ownership.labels_of(obj)[ownership.RUN_ID])
        return found
    finally:
        api.close()


def sweep(
    connection: KubernetesConnection,
    run_id: str | None = None,
    *,
    connect: Connector = open_api,
) -> SweepReport:
    """Undo everything ``run_id`` (None: every run) left in the cluster; see the module docstring."""
    target = resolve(connection)
    report = SweepReport(run_id, target.describe())
    api = connect(target)
    try:
        _step(report, "ephemeral agents", lambda: _stop_ephemeral_agents(api, run_id, report))
        for plural in CREATED_KINDS:
            _step(
                report,
                f"created {plural}",
                lambda plural=plural: _delete_created(api, plural, run_id, report),
            )
        _step(report, "partition labels", lambda: _drop_partition_labels(api, run_id, report))
        for plural in ("deployments", "statefulsets"):
            _step(
                report, f"scaled {plural}", lambda plural=plural: _restore_scaled(api, plural, run_id, report)
            )
        _step(report, "cordoned nodes", lambda: _uncordon_nodes(api, run_id, report))
    finally:
        api.close()
    return report


def _step(report: SweepReport, what: str, action: Any) -> None:
    try:
        action()
    except ChaosrunnerError as exc:
        report.failed[what] = str(exc)


def _run_of(obj: Obj) -> str:
    return ownership.labels_of(obj).get(ownership.RUN_ID, "")


def _name(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))


# ----------------------------------------------------------------------------- the steps


def _stop_ephemeral_agents(api: KubeApi, run_id: str | None, report: SweepReport) -> None:
    version: tuple[int, int] | None = None
    for pod in api.list("pods", None, labels=ownership.changed_selector(run_id)):
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
                    report.stopped.append(f"ephemeral {ref.where}")
                if note.get("kind") == "shape":
                    version = version or api.server_version()
                    _clean_if_needed(api, pod, ref, note["marker"], version, _run_of(pod), report)
                agents.unmark_pod(api, ref)
            except (ChaosrunnerError, ValueError, KeyError) as exc:
                report.failed[f"ephemeral {ref.where}"] = str(exc)


def _clean_if_needed(
    api: KubeApi,
    pod: Obj,
    ref: AgentRef,
    marker: str,
    version: tuple[int, int],
    run: str,
    report: SweepReport,
) -> None:
    """A network agent that ended without saying it cleaned up gets a cleanup agent in the same pod."""
    seen = agents.events(api, ref)
    if any(event["event"] == "stopped" and event.get("cleaned") for event in seen):
        return
    if not any(event["event"] == "ready" for event in seen) and agents.state(api, ref) is None:
        return  # it never started: no rules to remove
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
    report.restored.append(f"redirect rules removed in {ref.namespace}/{ref.pod}")


def _delete_created(api: KubeApi, plural: str, run_id: str | None, report: SweepReport) -> None:
    for obj in api.list(plural, None, labels=ownership.created_selector(run_id)):
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            continue  # already on its way out (a sweep a moment ago, or its own deadline)
        grace = 15 if plural == "pods" else None
        if api.delete(plural, meta["name"], meta["namespace"], grace_seconds=grace):
            report.deleted.append(f"{plural} {_name(obj)}")


def _drop_partition_labels(api: KubeApi, run_id: str | None, report: SweepReport) -> None:
    selector = f"{ownership.changed_selector(run_id)},{ownership.PARTITION}"
    for pod in api.list("pods", None, labels=selector):
        meta = pod["metadata"]
        labels: dict[str, None] = {ownership.PARTITION: None}
        if not ownership.other_marks(pod, dropping_partition=True):
            labels[ownership.RUN_ID] = None
        api.patch("pods", meta["name"], {"metadata": {"labels": labels}}, meta["namespace"])
        report.restored.append(f"partition label dropped from pod {_name(pod)}")


def _restore_scaled(api: KubeApi, plural: str, run_id: str | None, report: SweepReport) -> None:
    for obj in api.list(plural, None, labels=ownership.changed_selector(run_id)):
        meta = obj["metadata"]
        if restore(api, plural, meta["namespace"], meta["name"], _run_of(obj)):
            original = ownership.annotations_of(obj).get(ownership.ORIGINAL_REPLICAS)
            report.restored.append(f"{plural} {_name(obj)} back to {original} replicas")


def _uncordon_nodes(api: KubeApi, run_id: str | None, report: SweepReport) -> None:
    for node in api.list("nodes", None, labels=ownership.changed_selector(run_id)):
        if uncordon(api, node["metadata"]["name"], _run_of(node)):
            report.restored.append(f"node {node['metadata']['name']} uncordoned")
