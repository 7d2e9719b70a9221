"""``kubernetes.cpu-stress`` and ``kubernetes.memory-stress``: load inside pods until a deadline.

The load is the Docker backend's stressor (``chaosrunner.faults.docker.
stressor``: busy workers, or memory allocated and touched), run in an
ephemeral container added to the target pod. An ephemeral container needs no
interpreter in the application's image (only in the agent image), shares the
pod's resources - on a kubelet with pod-level cgroups (the default,
``--cgroups-per-qos``) its load is charged to the pod and counts against the
pod's limits - and ``targetContainerName`` puts it in the target container's
PID namespace, so the stress shows in that container's process list.

Dead-man's switch: the stressor ends itself at the fault's duration plus
``deadman_grace`` (its loops watch the deadline, ``alarm()`` backs them up);
the ephemeral container then stays in the pod, terminated, for good - it can
never be removed. Revert ends it early: it runs the stressor's ``stop`` mode
in the same container (``exec``), which finds the stress processes by the
marker in their command line.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

from pydantic import Field

from chaosrunner.errors import FaultError
from chaosrunner.faults.base import FaultPlan, FaultRequest, RevertRecord, TargetRef
from chaosrunner.faults.kubernetes import agents, ephemeral, ownership
from chaosrunner.faults.kubernetes.agents import AgentParams, AgentRef, Placement
from chaosrunner.faults.kubernetes.api import KubeApi
from chaosrunner.faults.kubernetes.fault import KubernetesFault
from chaosrunner.faults.kubernetes.selection import PodInfo, PodSelector, names, pods_for, running
from chaosrunner.faults.registry import register

READY_POLL = 0.3


def stressor(marker: str, mode: str, *args: str) -> list[str]:
    """The stressor's command line: its source through ``python3 -c`` (no chaosrunner needed in the image)."""
    from chaosrunner.faults.docker.stress import stressor_source

    return ["python3", "-c", stressor_source(), marker, mode, *args]


def marker_for(run_id: str, fault: str) -> str:
    from chaosrunner.faults.docker.stress import stress_marker

    return stress_marker(run_id, fault)


class CpuStressParams(AgentParams):
    workers: int = Field(1, ge=1, le=64, description="busy processes; at load 100 each uses one CPU core")
    load: int = Field(100, ge=1, le=100, description="percent of each 100 ms slice a worker spends busy")
    container: str | None = Field(
        None, min_length=1, description="container whose processes the stress joins; default: the first"
    )


class MemoryStressParams(AgentParams):
    megabytes: int = Field(
        64, ge=1, le=1 << 20, description="MiB to allocate, touch (so they are resident) and hold"
    )
    container: str | None = Field(
        None, min_length=1, description="container whose processes the stress joins; default: the first"
    )


class _StressFault(KubernetesFault):
    Selector = PodSelector
    mode: ClassVar[str]

    def stress_args(self, params: Any) -> list[str]:
        raise NotImplementedError

    def describe(self, params: Any) -> str:
        raise NotImplementedError

    def ready(self, processes: list[dict[str, Any]], args: list[str]) -> bool:
        raise NotImplementedError

    def plan(self, request: FaultRequest) -> FaultPlan:
        params = request.params
        assert isinstance(params, CpuStressParams | MemoryStressParams)
        assert isinstance(request.selector, PodSelector)

        def suitable(pod: PodInfo) -> str | None:
            why = running(pod)
            if why is None and params.container and params.container not in pod.containers:
                why = f"has no running container {params.container!r}"
            return why

        target = self.target_of(request)
        with self.kube(target) as api:
            chosen = pods_for(api, request, suitable)
            version = api.server_version()
        container = ownership.ephemeral_name(request.run_id, request.name, "stress")
        record = self.spine(
            request,
            target,
            namespace=chosen.namespace,
            version=list(version),
            marker=marker_for(request.run_id, request.name),
            mode=self.mode,
            stress_args=self.stress_args(params),
            image=params.agent_image,
            pull_policy=params.image_pull_policy.value,
            start_timeout=params.agent_start_timeout.total_seconds(),
            targets=[
                {
                    "pod": pod.name,
                    "uid": pod.uid,
                    "container": params.container or pod.container_names()[0],
                    "agent": AgentRef(Placement.EPHEMERAL, pod.namespace, pod.name, container).as_dict(),
                }
                for pod in chosen.targets
            ],
        )
        summary = (
            f"{self.describe(params)} in {names(chosen.targets)} ({chosen.namespace}) for at most "
            f"{record['hold_seconds']:g}s, from an ephemeral container{chosen.note()}"
        )
        return self.plan_for(
            request, [TargetRef(id=pod.uid, name=pod.ref) for pod in chosen.targets], record, summary
        )

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = dict(plan.revert_record)
        record["deadline"] = time.time() + float(record["hold_seconds"])
        version = (record["version"][0], record["version"][1])
        with self.kube(record["connection"]) as api:
            for entry in record["targets"]:
                ref = AgentRef.from_dict(entry["agent"])
                seconds = f"{record['deadline'] - time.time():.3f}"
                container = ephemeral.container_spec(
                    ref.container,
                    record["image"],
                    stressor(record["marker"], record["mode"], seconds, *record["stress_args"]),
                    pull_policy=record["pull_policy"],
                    target_container=entry["container"],
                )
                agents.launch_ephemeral(
                    api,
                    ref.namespace,
                    ref.pod,
                    container,
                    version,
                    run_id=record["run_id"],
                    kind="stress",
                    marker=record["marker"],
                )
                ephemeral.wait_started(
                    api, ref.namespace, ref.pod, ref.container, float(record["start_timeout"])
                )
                self._wait_ready(api, ref, record)
        return record

    def _wait_ready(self, api: KubeApi, ref: AgentRef, record: RevertRecord) -> None:
        deadline = time.monotonic() + float(record["start_timeout"])
        processes: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            processes = find(api, ref, record["marker"])
            if self.ready(processes, record["stress_args"]):
                return
            if agents.state(api, ref) != "running":
                raise FaultError(
                    f"the stressor in {ref.where} ended at once (a memory limit lower than the stress?)"
                )
            time.sleep(READY_POLL)
        raise FaultError(f"the stressor in {ref.where} was not fully working in time: {processes}")

    def revert(self, record: RevertRecord) -> None:
        with self.kube(record["connection"]) as api:
            for entry in record["targets"]:
                ref = AgentRef.from_dict(entry["agent"])
                if not agents.stop(api, ref, record["marker"]):
                    raise FaultError(
                        f"the stressor in {ref.where} did not stop; it ends by itself at its deadline"
                    )
                agents.unmark_pod(api, ref)

    def check(self, record: RevertRecord) -> bool:
        with self.kube(record["connection"]) as api:
            return any(agents.may_be_acting(api, AgentRef.from_dict(e["agent"])) for e in record["targets"])


def find(api: KubeApi, ref: AgentRef, marker: str) -> list[dict[str, Any]]:
    """The stress processes of ``marker`` in the agent's container (empty when it is not running)."""
    result = agents.run_in(api, ref, stressor(marker, "find"))
    if result is None:
        return []
    if result.exit_code != 0:
        raise FaultError(f"cannot list the stress processes in {ref.where}: {result.stderr.strip()}")
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


@register
class CpuStress(_StressFault):
    kind = "kubernetes.cpu-stress"
    summary = "Burn CPU in pods from an ephemeral container until a deadline; revert stops it early."
    Params = CpuStressParams
    mode = "cpu"

    def stress_args(self, params: CpuStressParams) -> list[str]:
        return [str(params.workers), str(params.load)]

    def describe(self, params: CpuStressParams) -> str:
        return f"burn {params.workers} worker(s) at {params.load}% CPU"

    def ready(self, processes: list[dict[str, Any]], args: list[str]) -> bool:
        return sum(1 for process in processes if process["role"] == "worker") >= int(args[0])


@register
class MemoryStress(_StressFault):
    kind = "kubernetes.memory-stress"
    summary = (
        "Allocate and hold memory in pods from an ephemeral container until a deadline; revert frees it."
    )
    Params = MemoryStressParams
    mode = "memory"

    def stress_args(self, params: MemoryStressParams) -> list[str]:
        return [str(params.megabytes)]

    def describe(self, params: MemoryStressParams) -> str:
        return f"allocate and hold {params.megabytes} MiB"

    def ready(self, processes: list[dict[str, Any]], args: list[str]) -> bool:
        # Most of it resident is "in place": the interpreter's own few MiB blur the exact figure.
        return sum(process["rss_kb"] for process in processes) >= 0.9 * int(args[0]) * 1024
