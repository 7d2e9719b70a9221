"""One fault's life inside a run: plan, inject (write-ahead), revert (retried, idempotent).

The rules that make "always revert" true live here:

- the revert record is journaled (fsync'd) *before* ``inject`` is called;
- ``revert`` may be called while ``inject`` is still running (an abort does
  not wait for a slow inject): it first tells the fault to ``halt`` (its inject
  starts no further side effects), reverts with the planned record at once,
  and the inject thread reverts again with the complete record when it returns;
- a failed inject is reverted too, since it may have half-happened;
- reverts retry with tenacity (bounded) and a revert of a reverted fault is a
  no-op, so every exit path can simply call ``revert`` without bookkeeping;
- a revert that still fails leaves the fault STILL INJECTED, and the journal
  says so (``fault_revert_failed``), so ``chaosrunner recover`` picks it up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from chaosrunner.engine.journal import format_time
from chaosrunner.faults.base import IN_EFFECT_SINCE, Fault, FaultPlan, FaultRequest, RevertRecord
from chaosrunner.faults.registry import registry
from chaosrunner.scenario.models import FaultSpec

REVERT_ATTEMPTS = 5

Emit = Callable[..., Any]


class FaultState(StrEnum):
    PLANNED = "planned"
    INJECTING = "injecting"
    INJECTED = "injected"
    INJECT_FAILED = "inject_failed"
    REVERTED = "reverted"
    REVERT_FAILED = "revert_failed"


def retry_revert(fault: Fault, record: RevertRecord) -> int:
    """Revert with bounded retries; return the attempts used (raises the last error)."""
    from tenacity import Retrying, stop_after_attempt, wait_exponential

    attempts = 0
    for attempt in Retrying(
        stop=stop_after_attempt(REVERT_ATTEMPTS),
        wait=wait_exponential(multiplier=0.1, max=2.0),
        reraise=True,
    ):
        with attempt:
            attempts += 1
            fault.revert(record)
    return attempts


def _effect_time(record: RevertRecord) -> dict[str, str]:
    since = record.get(IN_EFFECT_SINCE)
    if not isinstance(since, int | float):
        return {}
    return {"in_effect_since": format_time(datetime.fromtimestamp(since, UTC))}


class ActiveFault:
    def __init__(self, spec: FaultSpec, request: FaultRequest, emit: Emit) -> None:
        fault_class = registry.get(spec.kind)
        if fault_class is None:  # the loader already refused unknown kinds
            raise LookupError(spec.kind)
        self.spec = spec
        self.request = request
        self.fault = fault_class()
        self.emit = emit
        self.state = FaultState.PLANNED
        self.plan: FaultPlan | None = None
        self.record: RevertRecord = {}
        self.inject_error: str | None = None
        self._lock = threading.RLock()
        self._stopping = False
        self._outcome_told = False
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def make_plan(self) -> FaultPlan:
        plan = self.fault.plan(self.request)
        self.plan = plan
        self.record = dict(plan.revert_record)
        self.emit(
            "fault_planned",
            fault=self.name,
            kind=self.spec.kind,
            targets=[target.model_dump() for target in plan.targets],
            summary=plan.summary,
            revert_record=plan.revert_record,
        )
        return plan

    def start_inject(self, on_failure: Callable[[ActiveFault, str], None]) -> None:
        """Inject in a thread of its own, so a slow backend never blocks an abort."""
        assert self.plan is not None
        with self._lock:
            if self._stopping:
                return
            self.emit("fault_injecting", fault=self.name, kind=self.spec.kind, revert_record=self.record)
            self.state = FaultState.INJECTING
        self._thread = threading.Thread(
            target=self._inject, args=(on_failure,), name=f"inject-{self.name}", daemon=True
        )
        self._thread.start()

    def _inject(self, on_failure: Callable[[ActiveFault, str], None]) -> None:
        assert self.plan is not None
        try:
            record = self.fault.inject(self.plan)
        except Exception as exc:
            self.inject_error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self.state = FaultState.INJECT_FAILED
                self.emit(
                    "fault_inject_failed", fault=self.name, kind=self.spec.kind, error=self.inject_error
                )
            self.revert()  # it may have half-happened
            on_failure(self, self.inject_error)
            return
        with self._lock:
            self.record = record
            reverted_meanwhile = self.state is not FaultState.INJECTING
            self.state = FaultState.INJECTED
            self.emit(
                "fault_injected",
                fault=self.name,
                kind=self.spec.kind,
                revert_record=record,
                **_effect_time(record),
            )
        if reverted_meanwhile or self._stopping:
            self.revert(force=True)

    def wait_for_inject(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def inject_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def still_in_flight(self, waited: float) -> None:
        """Journal that inject has not returned after the run stopped waiting for it.

        Its planned record was reverted, but the backend may put the fault in
        place after that; the event reopens the fault for ``chaosrunner
        recover`` with the record it has (the inject thread, if it ever returns,
        still reverts with the complete one).
        """
        with self._lock:
            record = dict(self.record)
        self.emit(
            "fault_still_in_flight",
            fault=self.name,
            kind=self.spec.kind,
            waited=waited,
            revert_record=record,
        )

    def revert(self, *, force: bool = False) -> bool:
        """Undo the fault if it may be in place. True when nothing is left."""
        with self._lock:
            self._stopping = True
            if self.state is FaultState.PLANNED:
                return True
            if self.state is FaultState.REVERTED and not force:
                return True
            if self.state is FaultState.INJECTING:
                self.fault.halt()  # before the revert: no eviction or kill may follow it
            record = dict(self.record)
            # Only the complete record (inject returned) says what was hit.
            tell_outcome = self.state is FaultState.INJECTED and not self._outcome_told
            self._outcome_told = self._outcome_told or tell_outcome
            self.emit("fault_reverting", fault=self.name, kind=self.spec.kind)
            try:
                attempts = retry_revert(self.fault, record)
            except Exception as exc:
                self.state = FaultState.REVERT_FAILED
                self.emit(
                    "fault_revert_failed",
                    fault=self.name,
                    kind=self.spec.kind,
                    error=f"{type(exc).__name__}: {exc}",
                    attempts=REVERT_ATTEMPTS,
                )
                return False
            self.state = FaultState.REVERTED
            self.emit("fault_reverted", fault=self.name, kind=self.spec.kind, attempts=attempts, by="runner")
        if tell_outcome:
            self._journal_outcome(record)
        return True

    def _journal_outcome(self, record: RevertRecord) -> None:
        """Journal what the fault left behind; reading it must never fail a revert."""
        try:
            targets = self.fault.outcome(record)
        except Exception as exc:
            self.emit("fault_outcome", fault=self.name, kind=self.spec.kind, targets=[], error=str(exc))
            return
        if targets is not None:
            self.emit("fault_outcome", fault=self.name, kind=self.spec.kind, targets=targets)

    def active(self) -> bool:
        return self.state in (FaultState.INJECTING, FaultState.INJECTED)
