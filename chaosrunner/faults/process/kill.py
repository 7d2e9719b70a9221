"""``process.kill``: send a signal to the selected processes, once.

Killing cannot be undone by us: whatever supervises the process (systemd,
a container runtime, a shell loop) restarts it, or nobody does - which is
what the gameday is about. So ``revert`` is a no-op, and the record says
what happened instead: which (pid, start time) got the signal and whether and
when each exited. ``check`` says the fault is "still in place" while a killed
process has not come back: a victim is gone and the selector matches no
replacement.
"""

from __future__ import annotations

import signal
import time
from datetime import timedelta
from typing import Any, Literal, get_args

from pydantic import Field

from chaosrunner.durations import Duration
from chaosrunner.errors import ChaosrunnerError, FaultError
from chaosrunner.faults.base import Fault, FaultParams, FaultPlan, FaultRequest, RevertRecord
from chaosrunner.faults.process import procfs
from chaosrunner.faults.process.selection import ProcessSelector, resolve
from chaosrunner.faults.process.victims import as_target, choose, names
from chaosrunner.faults.registry import register

KillSignal = Literal["SIGTERM", "SIGKILL", "SIGINT", "SIGHUP", "SIGQUIT", "SIGABRT", "SIGUSR1", "SIGUSR2"]
"""Signals that end (or poke) a process; SIGSTOP/SIGCONT belong to process.pause."""
KILL_SIGNALS: tuple[str, ...] = get_args(KillSignal)


def signal_number(name: str) -> int:
    if name not in KILL_SIGNALS:
        raise FaultError(f"process.kill does not send {name!r}; expected one of {', '.join(KILL_SIGNALS)}")
    return int(signal.Signals[name])


class KillParams(FaultParams):
    signal: KillSignal = Field("SIGTERM", description="the signal to send")
    confirm_exit: Duration = Field(
        timedelta(seconds=5),
        description="wait up to this long for each process to exit; the outcome is recorded, not required",
    )


@register
class ProcessKill(Fault):
    kind = "process.kill"
    summary = (
        "Send a signal (SIGTERM by default) to processes chosen by pid file, name or command line; "
        "nothing to revert, the record says whether and when they exited."
    )
    Params = KillParams
    Selector = ProcessSelector

    def plan(self, request: FaultRequest) -> FaultPlan:
        params = request.params
        assert isinstance(params, KillParams)
        selector, victims = choose(request)
        record: RevertRecord = {
            "signal": params.signal,
            "confirm_exit": params.confirm_exit.total_seconds(),
            "selector": selector.model_dump(mode="json"),
            "victims": victims,
        }
        return FaultPlan(
            fault=request.name,
            kind=self.kind,
            targets=[as_target(victim) for victim in victims],
            revert_record=record,
            summary=f"send {params.signal} to {names(victims)}",
        )

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = dict(plan.revert_record)
        signum = signal_number(record["signal"])
        victims = [dict(victim) for victim in record["victims"]]
        sent_at = time.monotonic()
        for victim in victims:
            victim["signalled"] = procfs.send_signal(victim["pid"], victim["start_ticks"], signum)
        if not any(victim["signalled"] for victim in victims):
            raise FaultError(f"none of the targets was still running to receive {record['signal']}")
        _wait_for_exits(victims, sent_at, float(record["confirm_exit"]))
        record["victims"] = victims
        return record

    def revert(self, record: RevertRecord) -> None:
        """Nothing to undo: a signal cannot be taken back (restarting is the supervisor's job)."""

    def check(self, record: RevertRecord) -> bool:
        """True while a victim is gone and the selector matches no replacement."""
        victims = record.get("victims", [])
        if not any(not procfs.is_alive(victim["pid"], victim["start_ticks"]) for victim in victims):
            return False
        selector = ProcessSelector.model_validate(record["selector"])
        killed = {(victim["pid"], victim["start_ticks"]) for victim in victims}
        try:
            replacements = [
                info for info in resolve("check", selector) if (info.pid, info.start_ticks) not in killed
            ]
        except ChaosrunnerError:
            return True  # nothing matches: still down
        return not replacements


def _wait_for_exits(victims: list[dict[str, Any]], sent_at: float, timeout: float) -> None:
    """Record, for each signalled victim, whether it exited and how long that took."""
    pending = [victim for victim in victims if victim["signalled"]]
    for victim in victims:
        victim["exited"] = False
    while pending:
        for victim in list(pending):
            if not procfs.is_alive(victim["pid"], victim["start_ticks"]):
                victim["exited"] = True
                victim["exited_after"] = round(time.monotonic() - sent_at, 3)
                pending.remove(victim)
        if not pending or time.monotonic() - sent_at >= timeout:
            break
        time.sleep(0.02)
