"""Container lifecycle faults: kill, stop, pause, restart.

These are the classic "the process died / hung / bounced" failures. Each is
planned against running, unpaused containers only: a paused container is
someone else's experiment (or incident), and reverting a pause we did not make
would undo it.

What "revert" means differs, and the differences are deliberate:

``docker.container-stop``
    revert starts every recorded container that is not running.
``docker.container-pause``
    revert unpauses every recorded container that is paused.
``docker.container-kill``
    a kill cannot be undone, and whether the container *comes back by itself*
    is usually the point of the experiment. So inject records each container's
    restart policy and start time, ``outcome()`` reports whether and when it
    came back, and revert only starts a container that is still down AND had
    nothing that would bring it back: no restart policy, or a kill through the
    API (which Docker treats as a manual stop, so no policy applies). A
    container whose restart policy failed to revive it is left down - forcing
    it up would hide the very finding the gameday is after - and ``check``
    keeps saying the fault is in place.
``docker.container-restart``
    over once the container runs again; revert starts it if it is down (a
    restart that died half-way).

Kill, stop and pause arm the watchdog (dead-man's switch, see ``watchdog``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal as signals
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from chaosrunner.durations import Duration
from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults.base import FaultPlan, FaultRequest, RevertRecord
from chaosrunner.faults.docker.client import ContainerGone, DockerApi, DockerConflict
from chaosrunner.faults.docker.fault import DockerFault, DockerFaultParams, exclusions_note
from chaosrunner.faults.docker.hostaccess import host_process_problem, signal_process
from chaosrunner.faults.docker.selection import names, select_and_choose
from chaosrunner.faults.docker.snapshot import ContainerInfo, parse_docker_time, utc_now_text
from chaosrunner.faults.registry import register


def running_and_unpaused(container: ContainerInfo) -> str | None:
    if container.paused:
        return "is paused (not by this fault; left alone)"
    if not container.running:
        return "is not running"
    return None


def container_entry(container: ContainerInfo) -> dict[str, Any]:
    """What a lifecycle revert and report need about one container, as plan saw it."""
    return {
        "id": container.id,
        "name": container.name,
        "restart_policy": container.restart_policy or "no",
        "started_at": container.started_at,
        "restart_count": container.restart_count,
    }


class _LifecycleFault(DockerFault):
    """Shared plan/check skeleton; subclasses say what to do and what "in place" means."""

    verb: str = ""

    def plan(self, request: FaultRequest) -> FaultPlan:
        with self.docker(self.host_of(request)) as api:
            targets, selection = select_and_choose(
                api, request, running_and_unpaused, self._own_container_ids
            )
        self.refuse_unreachable(request, targets)
        record = self.record_for(request, [container_entry(c) for c in targets], **self.extra(request))
        summary = f"{self.describe(request)} {names(targets)}{exclusions_note(selection.excluded)}"
        return self.plan_for(request, targets, record, summary)

    def refuse_unreachable(self, request: FaultRequest, targets: list[ContainerInfo]) -> None:
        """Refuse targets this kind cannot act on (only kill-via-process has any)."""

    def extra(self, request: FaultRequest) -> dict[str, Any]:
        return {}

    def describe(self, request: FaultRequest) -> str:
        return self.verb

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = self.arm_watchdog(copy.deepcopy(plan.revert_record))
        with self.docker(record["docker_host"]) as api:
            for entry in record["containers"]:
                current = api.inspect(entry["id"])
                if current is None or not current.running or current.paused:
                    entry["skipped"] = "not running (or paused) when the fault was injected"
                    continue
                entry["started_at"] = current.started_at
                entry["restart_count"] = current.restart_count
                self.hit(api, current, record)
                entry["hit_at"] = utc_now_text()
        return record

    def hit(self, api: DockerApi, container: ContainerInfo, record: RevertRecord) -> None:
        raise NotImplementedError

    def check(self, record: RevertRecord) -> bool:
        with self.docker(record["docker_host"]) as api:
            for entry in record["containers"]:
                current = api.inspect(entry["id"])
                if current is not None and self.in_place(current):
                    return True
        return False

    def in_place(self, container: ContainerInfo) -> bool:
        return not container.running or container.restarting

    @staticmethod
    def start_if_down(api: DockerApi, container_id: str) -> None:
        current = api.inspect(container_id)
        if current is None or (current.running and not current.restarting):
            return
        try:
            api.start(container_id)
        except (ContainerGone, DockerConflict):
            # Removed, or started by someone else (the watchdog, Docker) meanwhile.
            current = api.inspect(container_id)
            if current is not None and not current.running:
                raise

    def outcome(self, record: RevertRecord) -> list[dict[str, Any]] | None:
        """Per hit container: did it come back, when, and how many restarts Docker counted."""
        report = []
        with self.docker(record["docker_host"]) as api:
            for entry in record["containers"]:
                report.append(came_back(entry, api.inspect(entry["id"])))
        return report


def came_back(entry: dict[str, Any], current: ContainerInfo | None) -> dict[str, Any]:
    """Whether a container hit at ``entry['hit_at']`` runs again, judged by its start time.

    Docker counts only the restarts its policy made (``RestartCount``), which
    tells "the restart policy brought it back" from "someone started it" (a
    person, or revert).
    """
    result: dict[str, Any] = {
        "id": entry["id"],
        "name": entry["name"],
        "restart_policy": entry.get("restart_policy", "no"),
        "hit_at": entry.get("hit_at"),
        "exists": current is not None,
        "running": bool(current and current.running),
        "came_back": False,
        "came_back_at": None,
        "came_back_by": None,
        "seconds_down": None,
        "restarts_by_docker": None,
    }
    if current is None or "hit_at" not in entry:
        result["summary"] = f"{entry['name']} " + ("is gone" if current is None else "was not hit")
        return result
    before = parse_docker_time(entry.get("started_at", ""))
    now = parse_docker_time(current.started_at)
    restarts = current.restart_count - int(entry.get("restart_count", 0))
    result["restarts_by_docker"] = restarts
    if current.running and now is not None and (before is None or now > before):
        hit_at = parse_docker_time(entry["hit_at"])
        result["came_back"] = True
        result["came_back_at"] = current.started_at
        result["came_back_by"] = "restart policy" if restarts > 0 else "a start (by hand or by revert)"
        result["seconds_down"] = round((now - hit_at).total_seconds(), 3) if hit_at else None
    result["summary"] = _came_back_summary(result)
    return result


def _came_back_summary(result: dict[str, Any]) -> str:
    name = result["name"]
    if not result["came_back"]:
        return f"{name} is still down" if not result["running"] else f"{name} kept running"
    after = f" after {result['seconds_down']:g} s" if result["seconds_down"] is not None else ""
    return f"{name} came back{after} ({result['came_back_by']})"


def _normalise_signal(value: str | int) -> str:
    text = str(value).strip().upper()
    if text.isdigit():
        try:
            return signals.Signals(int(text)).name
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a signal number") from exc
    name = text if text.startswith("SIG") else f"SIG{text}"
    if name not in signals.Signals.__members__:
        raise ValueError(f"{value!r} is not a signal name (try SIGKILL, SIGTERM, SIGINT)")
    return name


class KillParams(DockerFaultParams):
    signal: str = Field(
        "SIGKILL", description="signal to send: a name (SIGKILL, TERM) or a number; kept as SIGNAME"
    )
    via: Literal["process", "api"] = Field(
        "process",
        description=(
            "process: signal the container's main process from the host, like a crash, so restart "
            "policies apply (needs the daemon on this host); api: docker kill, which Docker treats as "
            "a manual stop (no restart policy brings it back)"
        ),
    )
    start_on_revert: bool = Field(
        True,
        description=(
            "revert starts a killed container that is still down when nothing else will "
            "(no restart policy, or via: api); false leaves it to the team"
        ),
    )

    @field_validator("signal", mode="before")
    @classmethod
    def _known_signal(cls, value: Any) -> str:
        return _normalise_signal(value)


@register
class ContainerKill(_LifecycleFault):
    kind = "docker.container-kill"
    summary = (
        "Send a signal to containers (a crash by default) and record whether their restart policy "
        "brings them back; revert starts those with no policy that are still down."
    )
    Params = KillParams
    verb = "kill"

    def describe(self, request: FaultRequest) -> str:
        params = request.params
        assert isinstance(params, KillParams)
        return f"send {params.signal} (via {params.via}) to"

    def extra(self, request: FaultRequest) -> dict[str, Any]:
        params = request.params
        assert isinstance(params, KillParams)
        return {"signal": params.signal, "via": params.via, "start_on_revert": params.start_on_revert}

    def refuse_unreachable(self, request: FaultRequest, targets: list[ContainerInfo]) -> None:
        params = request.params
        assert isinstance(params, KillParams)
        if params.via != "process":
            return
        problems = [f"{c.name} {problem}" for c in targets if (problem := host_process_problem(c))]
        if problems:
            raise PlanRefused(
                f"fault {request.name!r}: via: process signals the container's process from this host, "
                f"but {'; '.join(problems)}. Use via: api (Docker then treats the kill as a manual stop)."
            )

    def hit(self, api: DockerApi, container: ContainerInfo, record: RevertRecord) -> None:
        if record["via"] == "process":
            signal_process(container, signals.Signals[record["signal"]].value)
        else:
            # A conflict means it stopped between inspect and kill: the effect we wanted.
            with contextlib.suppress(DockerConflict):
                api.kill(container.id, record["signal"])

    def revert(self, record: RevertRecord) -> None:
        self.disarm_watchdog(record)
        if not record.get("start_on_revert", True):
            return
        with self.docker(record["docker_host"]) as api:
            for entry in record["containers"]:
                policy_will_act = entry.get("restart_policy", "no") not in ("", "no") and (
                    record.get("via") == "process"
                )
                if not policy_will_act:
                    self.start_if_down(api, entry["id"])


class StopParams(DockerFaultParams):
    grace_period: Duration = Field(
        timedelta(seconds=10), description="time between SIGTERM and SIGKILL (docker stop --time)"
    )


@register
class ContainerStop(_LifecycleFault):
    kind = "docker.container-stop"
    summary = "Stop containers (SIGTERM, then SIGKILL after a grace period); revert starts them again."
    Params = StopParams
    verb = "stop"

    def extra(self, request: FaultRequest) -> dict[str, Any]:
        params = request.params
        assert isinstance(params, StopParams)
        return {"grace_seconds": math.ceil(params.grace_period.total_seconds())}

    def hit(self, api: DockerApi, container: ContainerInfo, record: RevertRecord) -> None:
        api.stop(container.id, timeout=int(record["grace_seconds"]))

    def revert(self, record: RevertRecord) -> None:
        self.disarm_watchdog(record)
        with self.docker(record["docker_host"]) as api:
            for entry in record["containers"]:
                self.start_if_down(api, entry["id"])


@register
class ContainerPause(_LifecycleFault):
    kind = "docker.container-pause"
    summary = "Freeze every process of containers (docker pause: a hang); revert unpauses them."
    Params = DockerFaultParams
    verb = "pause"

    def hit(self, api: DockerApi, container: ContainerInfo, record: RevertRecord) -> None:
        api.pause(container.id)

    def in_place(self, container: ContainerInfo) -> bool:
        return container.paused

    def outcome(self, record: RevertRecord) -> list[dict[str, Any]] | None:
        return None  # a paused container never stopped, so nothing "came back"

    def revert(self, record: RevertRecord) -> None:
        self.disarm_watchdog(record)
        with self.docker(record["docker_host"]) as api:
            for entry in record["containers"]:
                current = api.inspect(entry["id"])
                if current is None or not current.paused:
                    continue
                try:
                    api.unpause(entry["id"])
                except (ContainerGone, DockerConflict):
                    current = api.inspect(entry["id"])
                    if current is not None and current.paused:
                        raise


class RestartParams(DockerFaultParams):
    grace_period: Duration = Field(
        timedelta(seconds=10), description="time between SIGTERM and SIGKILL before starting again"
    )


@register
class ContainerRestart(_LifecycleFault):
    kind = "docker.container-restart"
    summary = "Restart containers (docker restart); over once they run again, revert starts any left down."
    Params = RestartParams
    verb = "restart"
    arms_watchdog = False

    def extra(self, request: FaultRequest) -> dict[str, Any]:
        params = request.params
        assert isinstance(params, RestartParams)
        return {"grace_seconds": math.ceil(params.grace_period.total_seconds())}

    def hit(self, api: DockerApi, container: ContainerInfo, record: RevertRecord) -> None:
        try:
            api.restart(container.id, timeout=int(record["grace_seconds"]))
        except ContainerGone as exc:
            raise FaultError(f"container {container.name} vanished while restarting") from exc

    def revert(self, record: RevertRecord) -> None:
        with self.docker(record["docker_host"]) as api:
            for entry in record["containers"]:
                self.start_if_down(api, entry["id"])
