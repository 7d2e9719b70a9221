"""Resource faults: burn CPU or hold memory inside a target container.

The load is made by ``stressor.py`` run with ``docker exec`` and the
container's own Python, so it is charged to the container's cgroup like the
application's own load: it competes for the container's CPU quota, counts
against its memory limit (the kernel's OOM killer may pick the stressor or the
application - that is the experiment), and shows in ``docker stats``. Going
through the Engine also works with a remote daemon, which a host process moved
into the container's cgroup would not.

The price is an interpreter in the image: the plan probes each target for
``python3`` or ``python`` 3.7+ (a read-only ``exec``) and refuses the plan when
one has none, rather than failing half-way through inject.

Dead-man's switch: the stressor ends itself at the fault's duration plus
``deadman_grace`` (its loops watch the deadline, ``alarm()`` backs them up),
so there is no watchdog to arm. Revert ends it early by running the stressor's
``stop`` mode, which finds the processes by the marker in their command line.
"""

from __future__ import annotations

import copy
import json
import re
import time
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults.base import FaultPlan, FaultRequest, RevertRecord
from chaosrunner.faults.docker.client import ContainerGone, DockerApi
from chaosrunner.faults.docker.fault import DockerFault, DockerFaultParams, exclusions_note
from chaosrunner.faults.docker.lifecycle import running_and_unpaused
from chaosrunner.faults.docker.selection import names, select_and_choose
from chaosrunner.faults.docker.snapshot import ContainerInfo
from chaosrunner.faults.registry import register

INTERPRETERS = ("python3", "python")
VERSION_PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"
MINIMUM_PYTHON = (3, 7)
READY_POLL = 0.2
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@cache
def stressor_source() -> str:
    return Path(__file__).with_name("stressor.py").read_text()


def stress_marker(run_id: str, fault: str) -> str:
    return f"chaosrunner-stress:{_UNSAFE.sub('_', run_id)}:{_UNSAFE.sub('_', fault)}"


def stressor_argv(python: str, marker: str, mode: str, *args: str) -> list[str]:
    """The exec command line; every value is a separate argument (no shell)."""
    return [python, "-c", stressor_source(), marker, mode, *args]


def find_interpreter(api: DockerApi, container: ContainerInfo) -> str | None:
    """The first Python >= 3.7 the container can run, probed with a read-only exec."""
    for python in INTERPRETERS:
        try:
            result = api.exec(container.id, [python, "-c", VERSION_PROBE])
        except FaultError:
            continue
        if result.exit_code != 0:
            continue
        try:
            version = tuple(int(part) for part in result.stdout.strip().split("."))
        except ValueError:
            continue
        if version >= MINIMUM_PYTHON:
            return python
    return None


class CpuStressParams(DockerFaultParams):
    workers: int = Field(1, ge=1, le=64, description="busy processes; at load 100 each uses one CPU core")
    load: int = Field(100, ge=1, le=100, description="percent of each 100 ms slice a worker spends busy")


class MemoryStressParams(DockerFaultParams):
    megabytes: int = Field(
        256, ge=1, le=1 << 20, description="MiB to allocate, touch (so they are resident) and hold"
    )


class _StressFault(DockerFault):
    mode: ClassVar[str]
    arms_watchdog = False  # the stressor's own deadline is the dead-man's switch

    def stress_args(self, request: FaultRequest) -> list[str]:
        raise NotImplementedError

    def describe(self, request: FaultRequest) -> str:
        raise NotImplementedError

    def plan(self, request: FaultRequest) -> FaultPlan:
        with self.docker(self.host_of(request)) as api:
            targets, selection = select_and_choose(
                api, request, running_and_unpaused, self._own_container_ids
            )
            interpreters = {container.id: find_interpreter(api, container) for container in targets}
        without = [container.name for container in targets if interpreters[container.id] is None]
        if without:
            raise PlanRefused(
                f"fault {request.name!r}: the stressor needs python3 or python >= 3.7 in the container, "
                f"and {', '.join(without)} has none"
            )
        entries = [
            {"id": container.id, "name": container.name, "python": interpreters[container.id]}
            for container in targets
        ]
        record = self.record_for(
            request,
            entries,
            marker=stress_marker(request.run_id, request.name),
            mode=self.mode,
            stress_args=self.stress_args(request),
        )
        summary = (
            f"{self.describe(request)} in {names(targets)} for at most "
            f"{record['hold_seconds']:g}s{exclusions_note(selection.excluded)}"
        )
        return self.plan_for(request, targets, record, summary)

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = copy.deepcopy(plan.revert_record)
        record["deadline"] = time.time() + record["hold_seconds"]
        with self.docker(record["docker_host"]) as api:
            for entry in record["containers"]:
                current = api.inspect(entry["id"])
                if current is None or not current.running or current.paused:
                    entry["skipped"] = "not running (or paused) when the fault was injected"
                    continue
                if not self.find(api, entry, record):
                    argv = stressor_argv(
                        entry["python"],
                        record["marker"],
                        record["mode"],
                        f"{record['deadline'] - time.time():.3f}",
                        *record["stress_args"],
                    )
                    exec_id = api.exec_detached(entry["id"], argv)
                    entry["processes"] = self.wait_until_ready(api, entry, record, exec_id)
        return record

    def ready(self, processes: list[dict[str, Any]], record: RevertRecord) -> bool:
        raise NotImplementedError

    def wait_until_ready(
        self, api: DockerApi, entry: dict[str, Any], record: RevertRecord, exec_id: str
    ) -> list[dict[str, Any]]:
        patience = self.ready_timeout(record)
        deadline = time.monotonic() + patience
        processes: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            processes = self.find(api, entry, record)
            if self.ready(processes, record):
                return processes
            running, exit_code = api.exec_state(exec_id)
            if not running and not processes:
                raise FaultError(
                    f"the stressor in {entry['name']} exited at once (exit code {exit_code}); "
                    "a memory limit lower than the stress, or a read-only /proc?"
                )
            time.sleep(READY_POLL)
        raise FaultError(
            f"the stressor in {entry['name']} was not fully working after {patience:g}s: {processes}"
        )

    def ready_timeout(self, record: RevertRecord) -> float:
        return 15.0

    @staticmethod
    def find(api: DockerApi, entry: dict[str, Any], record: RevertRecord) -> list[dict[str, Any]]:
        result = api.exec(entry["id"], stressor_argv(entry["python"], record["marker"], "find"))
        if result.exit_code != 0:
            raise FaultError(f"cannot list stress processes in {entry['name']}: {result.stderr.strip()}")
        found: list[dict[str, Any]] = json.loads(result.stdout)
        return found

    def revert(self, record: RevertRecord) -> None:
        with self.docker(record["docker_host"]) as api:
            for entry in record["containers"]:
                current = api.inspect(entry["id"])
                if current is None or not current.running:
                    continue  # the stressor died with the container
                if current.paused:
                    raise FaultError(
                        f"{entry['name']} is paused, so its stressor cannot be stopped now; "
                        "it ends by itself at its deadline"
                    )
                try:
                    result = api.exec(entry["id"], stressor_argv(entry["python"], record["marker"], "stop"))
                except ContainerGone:
                    continue
                if result.exit_code != 0:
                    raise FaultError(f"cannot stop the stressor in {entry['name']}: {result.stderr.strip()}")

    def check(self, record: RevertRecord) -> bool:
        with self.docker(record["docker_host"]) as api:
            for entry in record["containers"]:
                current = api.inspect(entry["id"])
                if current is None or not current.running:
                    continue
                if current.paused or self.find(api, entry, record):
                    return True  # a paused stressor is still there, only frozen
        return False


@register
class CpuStress(_StressFault):
    kind = "docker.cpu-stress"
    summary = "Burn CPU inside containers (busy workers in their cgroup) until a deadline; revert stops them."
    Params = CpuStressParams
    mode = "cpu"

    def stress_args(self, request: FaultRequest) -> list[str]:
        params = request.params
        assert isinstance(params, CpuStressParams)
        return [str(params.workers), str(params.load)]

    def describe(self, request: FaultRequest) -> str:
        params = request.params
        assert isinstance(params, CpuStressParams)
        return f"burn {params.workers} worker(s) at {params.load}% CPU"

    def ready(self, processes: list[dict[str, Any]], record: RevertRecord) -> bool:
        workers = sum(1 for process in processes if process["role"] == "worker")
        return workers >= int(record["stress_args"][0])


@register
class MemoryStress(_StressFault):
    kind = "docker.memory-stress"
    summary = (
        "Allocate and hold memory inside containers (counted against their limit) until a deadline; "
        "revert frees it."
    )
    Params = MemoryStressParams
    mode = "memory"

    def stress_args(self, request: FaultRequest) -> list[str]:
        params = request.params
        assert isinstance(params, MemoryStressParams)
        return [str(params.megabytes)]

    def describe(self, request: FaultRequest) -> str:
        params = request.params
        assert isinstance(params, MemoryStressParams)
        return f"allocate and hold {params.megabytes} MiB"

    def ready(self, processes: list[dict[str, Any]], record: RevertRecord) -> bool:
        wanted_kb = int(record["stress_args"][0]) * 1024
        # Most of it resident is "in place"; the interpreter's own few MiB blur the exact figure.
        return sum(process["rss_kb"] for process in processes) >= 0.9 * wanted_kb

    def ready_timeout(self, record: RevertRecord) -> float:
        return 15.0 + int(record["stress_args"][0]) / 200.0
