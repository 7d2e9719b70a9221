"""``inprocess.flag``: a fault that flips a switch inside this process.

It exists so the engine's state machine can be tested quickly and exactly
(pre-emption of a slow inject, reverts on every exit path, idempotency) without
a Docker daemon. It is a real registered kind with the same protocol as every
backend, not a mock: only its target is imaginary.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from pydantic import Field

from chaosrunner.durations import Duration
from chaosrunner.faults.base import (
    Fault,
    FaultParams,
    FaultPlan,
    FaultRequest,
    RevertRecord,
    TargetRef,
)
from chaosrunner.faults.registry import register

ACTIVE_FLAGS: set[str] = set()
"""Flags currently raised; tests read this to see the fault's effect."""
_lock = threading.Lock()


class FlagParams(FaultParams):
    flag: str = Field(min_length=1, description="name of the in-process flag to raise")
    inject_delay: Duration = Field(
        timedelta(0), description="sleep this long while injecting (to test pre-emption)"
    )
    revert_delay: Duration = Field(
        timedelta(0), description="sleep this long while reverting (to test signals during reverts)"
    )


@register
class FlagFault(Fault):
    kind = "inprocess.flag"
    summary = "Raise a named flag inside the chaosrunner process; revert lowers it (for tests)."
    Params = FlagParams

    def plan(self, request: FaultRequest) -> FaultPlan:
        assert isinstance(request.params, FlagParams)
        flag = request.params.flag
        return FaultPlan(
            fault=request.name,
            kind=self.kind,
            targets=[TargetRef(id=flag, name=f"flag {flag}")],
            revert_record={
                "flag": flag,
                "inject_delay": request.params.inject_delay.total_seconds(),
                "revert_delay": request.params.revert_delay.total_seconds(),
            },
            summary=f"raise in-process flag {flag!r}",
        )

    def inject(self, plan: FaultPlan) -> RevertRecord:
        delay = plan.revert_record.get("inject_delay", 0.0)
        if delay:
            time.sleep(delay)
        with _lock:
            ACTIVE_FLAGS.add(plan.revert_record["flag"])
        return dict(plan.revert_record)

    def revert(self, record: RevertRecord) -> None:
        if record.get("revert_delay"):
            time.sleep(record["revert_delay"])
        with _lock:
            ACTIVE_FLAGS.discard(record["flag"])

    def check(self, record: RevertRecord) -> bool:
        return record["flag"] in ACTIVE_FLAGS
