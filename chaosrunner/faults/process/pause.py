"""``process.pause``: SIGSTOP the selected processes; revert sends SIGCONT.

A stopped process must never outlive the fault by accident, so the stopping
is done by a watchdog holder process (``chaosrunner.faults.holder``), not by
chaosrunner: the holder sends SIGSTOP, says ready once every target is really
stopped (state ``T``), waits, and sends SIGCONT when it is told to stop
(revert) or at its deadline - the fault's duration plus ``grace``, or
``max_hold`` without a duration - whatever happened to chaosrunner meanwhile.
Stop and resume live in the same process, so no crash of ours can leave one
without the other.

``revert`` stops the watchdog (which resumes the targets) and then sends
SIGCONT itself to every recorded (pid, start time) still alive: the fallback
when the watchdog was killed, and harmless otherwise. Idempotent. Two faults
pausing the same process overlap: the first revert resumes it.
"""

from __future__ import annotations

import re
import signal
import time
from datetime import timedelta
from typing import Any

from pydantic import Field

from chaosrunner.durations import Duration
from chaosrunner.errors import FaultError
from chaosrunner.faults import holder
from chaosrunner.faults.base import Fault, FaultParams, FaultPlan, FaultRequest, RevertRecord
from chaosrunner.faults.holder import HolderSession
from chaosrunner.faults.process import procfs
from chaosrunner.faults.process.procfs import ProcessInfo
from chaosrunner.faults.process.selection import ProcessSelector
from chaosrunner.faults.process.victims import as_target, choose, names
from chaosrunner.faults.registry import register

WATCHDOG_MODULE = "chaosrunner.faults.process.pause"
STOP_CONFIRM_SECONDS = 5.0


class PauseParams(FaultParams):
    grace: Duration = Field(
        timedelta(seconds=5),
        description="the watchdog resumes the processes this long after the fault's duration, even "
        "if chaosrunner is gone (dead-man's switch)",
    )
    max_hold: Duration = Field(
        timedelta(minutes=10),
        description="the watchdog's lifetime when the fault has no duration (dead-man's switch)",
    )


@register
class ProcessPause(Fault):
    kind = "process.pause"
    summary = (
        "SIGSTOP processes chosen by pid file, name or command line; revert sends SIGCONT, and a "
        "watchdog holder sends it at the deadline if chaosrunner is gone."
    )
    Params = PauseParams
    Selector = ProcessSelector

    def plan(self, request: FaultRequest) -> FaultPlan:
        params = request.params
        assert isinstance(params, PauseParams)
        _, victims = choose(request, refuse=_already_stopped)
        span = request.hold_for + params.grace if request.hold_for is not None else params.max_hold
        label = "pause-" + re.sub(r"[^A-Za-z0-9_.-]", "-", f"{request.run_id}-{request.name}")
        record: RevertRecord = {
            "victims": victims,
            "label": label,
            "lifetime": span.total_seconds(),
            "holder": None,
            "deadline": None,
        }
        return FaultPlan(
            fault=request.name,
            kind=self.kind,
            targets=[as_target(victim) for victim in victims],
            revert_record=record,
            summary=f"SIGSTOP {names(victims)}; SIGCONT on revert or at the latest after "
            f"{span.total_seconds():g}s",
        )

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = dict(plan.revert_record)
        deadline = time.time() + float(record["lifetime"])
        watchdog = holder.spawn(
            WATCHDOG_MODULE,
            {"victims": record["victims"]},
            deadline=deadline,
            label=record["label"],
            ready_timeout=STOP_CONFIRM_SECONDS + 30,
        )
        record["holder"] = watchdog.as_dict()
        record["deadline"] = deadline
        return record

    def revert(self, record: RevertRecord) -> None:
        if record.get("holder"):
            holder.stop(holder.HolderRecord.from_dict(record["holder"]))
        resume(record["victims"])

    def check(self, record: RevertRecord) -> bool:
        """True while a target is stopped."""
        return any(
            procfs.state_of(victim["pid"], victim["start_ticks"]) == "T" for victim in record["victims"]
        )


def _already_stopped(info: ProcessInfo) -> str | None:
    """Someone else stopped it (a debugger, an operator): our SIGCONT would undo *their* pause."""
    if info.state in ("T", "t"):
        return "already stopped; resuming it on revert would undo someone else's pause"
    return None


def resume(victims: list[dict[str, Any]]) -> None:
    """SIGCONT every victim that is still the process we stopped; idempotent."""
    for victim in victims:
        procfs.send_signal(victim["pid"], victim["start_ticks"], signal.SIGCONT)


# ----------------------------------------------------------------------------- the watchdog side


def hold(spec: dict[str, Any], session: HolderSession) -> None:
    """SIGSTOP the victims, report ready once they are stopped, SIGCONT them at the end."""
    victims = spec["victims"]
    try:
        stopped = [v for v in victims if procfs.send_signal(v["pid"], v["start_ticks"], signal.SIGSTOP)]
        if not stopped:
            raise FaultError("none of the targets was still running to be paused")
        _wait_until_stopped(stopped)
        session.ready()
        session.wait()
    finally:
        resume(victims)


def _wait_until_stopped(victims: list[dict[str, Any]]) -> None:
    give_up = time.monotonic() + STOP_CONFIRM_SECONDS
    while time.monotonic() < give_up:
        states = [procfs.state_of(v["pid"], v["start_ticks"]) for v in victims]
        if all(state in ("T", None) for state in states):
            return
        time.sleep(0.01)
    raise FaultError("the targets did not stop within 5 s of SIGSTOP")
