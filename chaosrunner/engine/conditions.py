"""Abort-condition state: turning samples into ok / pending / firing, honouring ``for``.

Pure logic, no clock of its own: callers pass the monotonic time of each
sample, so tests replay exact timelines. Reductions err on the safe side: a
condition holds when *any* series breaches, and the value shown is the
breaching one (or, when none breaches, the one closest to the threshold).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chaosrunner.observe.metrics import Sample
from chaosrunner.scenario.models import AbortCondition, PromCheck


class ConditionState(StrEnum):
    OK = "ok"
    PENDING = "pending"  # holding, but not yet for its `for` duration
    FIRING = "firing"
    NO_DATA = "no_data"


@dataclass(frozen=True)
class ConditionStatus:
    name: str
    state: ConditionState
    value: float | None
    holding_since: float | None


def representative_value(check: PromCheck, sample: Sample) -> tuple[float | None, bool]:
    """(value to show, whether any series holds) for one sample."""
    values = sample.finite()
    if not values:
        return None, False
    holding = [value for value in values if check.holds(value)]
    if holding:
        return holding[0], True
    return min(values, key=lambda value: abs(value - check.threshold)), False


def all_hold(check: PromCheck, sample: Sample) -> bool:
    """For steady state and SLIs: every series must be healthy, and there must be data."""
    values = sample.finite()
    return bool(values) and all(check.holds(value) for value in values)


class ConditionTracker:
    def __init__(self, condition: AbortCondition) -> None:
        self.condition = condition
        self._holding_since: float | None = None
        self.status = ConditionStatus(condition.name, ConditionState.NO_DATA, None, None)

    def observe(self, sample: Sample, now: float) -> ConditionStatus:
        value, holding = representative_value(self.condition, sample)
        if value is None:
            self._holding_since = None
            state = ConditionState.NO_DATA
        elif not holding:
            self._holding_since = None
            state = ConditionState.OK
        else:
            if self._holding_since is None:
                self._holding_since = now
            held_for = now - self._holding_since
            state = (
                ConditionState.FIRING
                if held_for >= self.condition.for_.total_seconds()
                else ConditionState.PENDING
            )
        self.status = ConditionStatus(self.condition.name, state, value, self._holding_since)
        return self.status
