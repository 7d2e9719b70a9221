"""Running chaosrunner's own processes in the cluster: placing, watching and ending agents.

An *agent* is a process a fault needs next to its target (``agent.py`` for the
network and kill faults, the Docker backend's stressor for CPU and memory).
Two placements:

``ephemeral-container``
    Added to the target pod itself (``ephemeral.py``): it shares the pod's
    network namespace and is charged to the pod. It can never be removed, so
    its process must end by itself at its deadline; revert ends it early with
    an ``exec``. The target pod gets the run's label and one annotation per
    agent (``agents.chaosrunner.io/<container>``: kind and marker) in a write
    *before* the container is added, so the sweep can find and stop it
    without the journal.
``node-pod``
    A separate pod pinned to the target's node (``nodeName``) with ``hostPID``
    and only the capabilities it needs (SYS_ADMIN to enter a network
    namespace, NET_ADMIN for iptables, SYS_PTRACE to open another process's
    namespace), for what an ephemeral container may not do: enter a network
    namespace with NET_ADMIN on servers before 1.21, signal a container's
    PID 1 from outside. It carries the created-by-chaosrunner labels and
    ``activeDeadlineSeconds`` (the kubelet ends it even if the agent hangs),
    and revert deletes it.

Agents report on stdout, one JSON event per line (``parse_events``);
the pod log is how chaosrunner learns that an agent is ready, what mechanism it
chose, and whether it cleaned up when it stopped.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field

from chaosrunner.durations import Duration
from chaosrunner.errors import FaultError
from chaosrunner.faults.kubernetes import ephemeral, ownership
from chaosrunner.faults.kubernetes.api import (
    Conflict,
    ExecResult,
    ExecTimedOut,
    Invalid,
    KubeApi,
    NotFound,
    Obj,
)
from chaosrunner.faults.kubernetes.fault import KubeFaultParams

DEFAULT_AGENT_IMAGE = "chaosrunner/kube-agent:latest"
AGENT_CONTAINER = "agent"
AGENT_ANNOTATION_PREFIX = ownership.AGENT_ANNOTATION_PREFIX
NODE_POD_MARGIN = 30
"""Seconds a node pod's activeDeadlineSeconds exceeds its agent's own deadline."""
POLL = 0.2
AGENT_MODULE = "chaosrunner.faults.kubernetes.agent"
"""Run as ``python3 -m``; never imported by chaosrunner itself (so ``-m`` finds it unimported)."""


class PullPolicy(StrEnum):
    IF_NOT_PRESENT = "IfNotPresent"
    ALWAYS = "Always"
    NEVER = "Never"


class Placement(StrEnum):
    EPHEMERAL = "ephemeral-container"
    NODE = "node-pod"


class AgentParams(KubeFaultParams):
    """Params of every fault that runs an agent in the cluster."""

    agent_image: str = Field(
        DEFAULT_AGENT_IMAGE,
        min_length=1,
        description="image with python3 and chaosrunner for the in-cluster agent (docs/faults/kubernetes.md)",
    )
    image_pull_policy: PullPolicy = Field(
        PullPolicy.IF_NOT_PRESENT, description="imagePullPolicy of the agent: IfNotPresent, Always or Never"
    )
    agent_start_timeout: Duration = Field(
        timedelta(seconds=60), description="give up when the agent has not reported ready after this long"
    )


@dataclass(frozen=True)
class AgentRef:
    """Where one agent runs: the pod that runs it and its container."""

    placement: str
    namespace: str
    pod: str
    container: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentRef:
        return cls(data["placement"], data["namespace"], data["pod"], data["container"])

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.pod} [{self.container}]"


def agent_argv(command: str, marker: str, spec: dict[str, Any]) -> list[str]:
    """The command line of an agent; every value is its own argument (no shell)."""
    return ["python3", "-m", AGENT_MODULE, command, marker, json.dumps(spec, sort_keys=True)]


def parse_events(log: str) -> list[dict[str, Any]]:
    """The agent's JSON events in a log (other lines, e.g. tracebacks, are skipped)."""
    events = []
    for raw in log.splitlines():
        line = raw.strip()
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("agent") == "chaosrunner":
            events.append(event)
    return events


# ----------------------------------------------------------------------------- node pods


def node_pod_manifest(
    name: str,
    namespace: str,
    node: str,
    image: str,
    pull_policy: str,
    argv: list[str],
    labels: dict[str, str],
    lifetime: float,
    *,
    capabilities: tuple[str, ...] = (),
    host_pid: bool = True,
) -> Obj:
    """A pod pinned to ``node`` that runs ``argv`` once and ends by ``lifetime`` seconds at the latest."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "nodeName": node,  # no scheduler: it must land next to its target, even on a cordoned node
            "hostPID": host_pid,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": max(1, int(lifetime) + NODE_POD_MARGIN),
            "terminationGracePeriodSeconds": 15,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": AGENT_CONTAINER,
                    "image": image,
                    "imagePullPolicy": pull_policy,
                    "command": list(argv),
                    # Named capabilities, not privileged: less power, and it runs where
                    # privileged containers cannot (a sandbox without every capability).
                    "securityContext": {"capabilities": {"add": list(capabilities)}},
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "32Mi"},
                        "limits": {"memory": "256Mi"},
                    },
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                }
            ],
        },
    }


def launch_node_pod(api: KubeApi, manifest: Obj) -> AgentRef:
    """Create the pod; an existing one of that name (an inject retried after a crash) is reused."""
    meta = manifest["metadata"]
    with contextlib.suppress(Conflict):
        api.create("pods", manifest, meta["namespace"])
    return AgentRef(Placement.NODE, meta["namespace"], meta["name"], AGENT_CONTAINER)


# ----------------------------------------------------------------------------- ephemeral containers


def annotation_key(container: str) -> str:
    return AGENT_ANNOTATION_PREFIX + container


def launch_ephemeral(
    api: KubeApi,
    namespace: str,
    pod: str,
    container: Obj,
    version: tuple[int, int],
    *,
    run_id: str,
    kind: str,
    marker: str,
) -> AgentRef:
    """Mark the pod (run label, agent annotation), then add the ephemeral container."""
    note = json.dumps({"kind": kind, "marker": marker}, sort_keys=True)
    api.patch(
        "pods",
        pod,
        {
            "metadata": {
                "labels": {ownership.RUN_ID: ownership.label_value(run_id)},
                "annotations": {annotation_key(container["name"]): note},
            }
        },
        namespace,
    )
    ephemeral.attach(api, namespace, pod, container, version)
    return AgentRef(Placement.EPHEMERAL, namespace, pod, container["name"])


def unmark_pod(api: KubeApi, ref: AgentRef) -> None:
    """Drop the agent's annotation, and the run label once no other chaosrunner mark is left."""
    try:
        pod = api.get("pods", ref.pod, ref.namespace)
    except NotFound:
        return
    key = annotation_key(ref.container)
    patch: Obj = {"metadata": {"annotations": {key: None}}}
    if ownership.RUN_ID in ownership.labels_of(pod) and not ownership.other_marks(
        pod, dropping_annotation=key
    ):
        patch["metadata"]["labels"] = {ownership.RUN_ID: None}
    if key in ownership.annotations_of(pod) or "labels" in patch["metadata"]:
        try:
            api.patch("pods", ref.pod, patch, ref.namespace)
        except NotFound:
            return


# ----------------------------------------------------------------------------- observing


ENDED = ("terminated", "gone")
"""The only states that end an agent: it exited (cleaning up first), or its pod was deleted."""


def state(api: KubeApi, ref: AgentRef) -> str | None:
    """``waiting``/``running``/``terminated``, None before it is reported, ``gone`` with its pod."""
    try:
        pod = api.get("pods", ref.pod, ref.namespace)
    except NotFound:
        return "gone"
    if ref.placement == Placement.EPHEMERAL:
        return ephemeral.state_of(pod, ref.container)
    for entry in (pod.get("status") or {}).get("containerStatuses") or []:
        if entry.get("name") == ref.container:
            return next(iter(entry.get("state") or {}), None)
    return None


def may_be_acting(api: KubeApi, ref: AgentRef) -> bool:
    """Whether the agent may still hold its fault: anything short of a reported end.

    ``check`` answers "is the failure still in place?", so a state the kubelet
    has not reported (None) or a waiting container counts as in place; only
    ``terminated`` (the agent cleaned up and exited) or a deleted pod is an end.
    """
    return state(api, ref) not in ENDED


def events(api: KubeApi, ref: AgentRef) -> list[dict[str, Any]]:
    """The agent's events so far (empty when its pod or log is gone, or it has not started)."""
    try:
        return parse_events(api.logs(ref.namespace, ref.pod, ref.container))
    except (NotFound, Invalid):
        return []


def wait_for(api: KubeApi, ref: AgentRef, wanted: set[str], timeout: float) -> dict[str, Any]:
    """The first event in ``wanted``; FaultError on an ``error`` event, an early end or the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        seen = events(api, ref)
        for event in seen:
            if event["event"] in wanted:
                return event
            if event["event"] == "error":
                raise FaultError(f"the chaosrunner agent in {ref.where} failed: {event.get('detail', '')}")
        current = state(api, ref)
        if current in ("terminated", "gone"):
            tail = _tail(api, ref)
            raise FaultError(f"the chaosrunner agent in {ref.where} ended before it was ready: {tail}")
        if current == "waiting":
            _raise_if_stuck(api, ref)
        if time.monotonic() >= deadline:
            raise FaultError(f"the chaosrunner agent in {ref.where} was not ready after {timeout:g}s")
        time.sleep(POLL)


def _raise_if_stuck(api: KubeApi, ref: AgentRef) -> None:
    try:
        pod = api.get("pods", ref.pod, ref.namespace)
    except NotFound:
        return
    statuses = (pod.get("status") or {}).get(
        "ephemeralContainerStatuses" if ref.placement == Placement.EPHEMERAL else "containerStatuses"
    ) or []
    for entry in statuses:
        waiting = (entry.get("state") or {}).get("waiting") or {}
        if entry.get("name") == ref.container and waiting.get("reason") in ephemeral.FAILED_WAITING_REASONS:
            raise FaultError(
                f"the chaosrunner agent in {ref.where} cannot start: {waiting.get('reason')}: "
                f"{waiting.get('message', '')} (is the agent image {_image(entry)} on the node?)"
            )


def _image(status: Obj) -> str:
    return str(status.get("image") or "")


def _tail(api: KubeApi, ref: AgentRef) -> str:
    try:
        text = api.logs(ref.namespace, ref.pod, ref.container, tail_lines=5)
    except (NotFound, Invalid):
        return "no log"
    return " | ".join(line for line in text.strip().splitlines()[-5:]) or "no log"


def run_in(api: KubeApi, ref: AgentRef, argv: list[str], timeout: float = 30.0) -> ExecResult | None:
    """Exec ``argv`` in the agent's container; None when it is not running (nothing to exec into)."""
    if state(api, ref) != "running":
        return None
    try:
        return api.exec(ref.namespace, ref.pod, ref.container, argv, timeout=timeout)
    except (NotFound, Invalid):
        return None  # it ended between our look and the exec


SIGNAL_SNIPPET = """# chaosrunner-signal: signal every process whose argv holds MARKER, and return at once
import os, sys
marker, signum, me, hits = sys.argv[1].encode(), int(sys.argv[2]), os.getpid(), 0
for name in os.listdir("/proc"):
    if not name.isdigit() or int(name) == me:
        continue
    try:
        with open("/proc/%s/cmdline" % name, "rb") as handle:
            argv = handle.read().split(b"\\0")
    except OSError:
        continue
    if marker in argv and not any(part.startswith(b"# chaosrunner-signal") for part in argv):
        try:
            os.kill(int(name), signum)
            hits += 1
        except OSError:
            pass
print(hits)
"""
"""Run with the agent container's own python3 (stdlib only). It must not wait for its
targets to exit: when the agent's main process ends, its container ends, and an exec
still running in it may never see its stream closed (the dockershim does not)."""


def signal_argv(marker: str, signum: int) -> list[str]:
    return ["python3", "-c", SIGNAL_SNIPPET, marker, str(int(signum))]


def stop(api: KubeApi, ref: AgentRef, marker: str, timeout: float = 20.0) -> bool:
    """End the agent's processes (SIGTERM, then SIGKILL) and wait for its container to end.

    True once the kubelet reports the container terminated, or the pod is gone.
    The agent cleans up on SIGTERM; SIGKILL is for one that hangs, and leaves
    the cleanup to the caller. A state not reported (None) is not an end: a
    running agent's status can be missing for a moment, and a revert that once
    read that as "stopped" returned with the agent still delaying traffic. So
    the signal goes out as soon as the container is seen running, and only a
    reported end returns True.
    """
    for signum, patience in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if _signal_until_ended(api, ref, marker, signum, patience):
            return True
    return False


def _signal_until_ended(api: KubeApi, ref: AgentRef, marker: str, signum: int, patience: float) -> bool:
    deadline = time.monotonic() + patience
    acted = False
    while True:
        current = state(api, ref)
        if current in ENDED:
            return True
        if current == "running" and not acted:
            with contextlib.suppress(ExecTimedOut):  # the container ended under the exec: as asked
                acted = run_in(api, ref, signal_argv(marker, signum), timeout=10.0) is not None
        elif current == "waiting" and ref.placement == Placement.NODE and not acted:
            # Never started (restartPolicy Never: a wrong image, say), so nothing to clean. Forced,
            # since a graceful delete of such a pod took the kubelet 45 s here; should it start
            # meanwhile, the kubelet still gives it a SIGTERM (2 s at least) to clean up in.
            # An ephemeral container cannot be removed; it keeps its deadline.
            delete_pod(api, ref, grace_seconds=0)
            acted = True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)


def delete_pod(api: KubeApi, ref: AgentRef, grace_seconds: int = 15) -> None:
    if ref.placement == Placement.NODE:
        api.delete("pods", ref.pod, ref.namespace, grace_seconds=grace_seconds)
