"""What a fault is: the protocol every backend implements.

A fault is one kind of failure (``docker.container-pause``,
``postgres.connection-exhaustion`` …). Its life has four steps, and the split
is what makes "always revert" possible:

``plan(request)``
    Resolve the targets, enforce the blast radius and the safety rules. No side
    effects. The returned ``FaultPlan`` already holds a *revert record*: enough
    to undo the fault even if ``inject`` dies half-way. The engine journals it
    (fsync'd) before calling ``inject``; that is the write-ahead rule.
``inject(plan)``
    Do it. Returns the final revert record (the planned one plus whatever was
    learnt while injecting, e.g. a holder's pid). JSON-serialisable.
``revert(record)``
    Undo it. Idempotent: safe to call twice, safe on a record whose inject never
    ran or only half ran, safe from another process after a crash.
``check(record)``
    Is the fault still in place? Lets the engine and ``recover`` tell a live
    fault from one that a dead-man's switch already ended.

One more, for kinds whose inject takes a while: ``halt()``. An abort does not
wait for a slow inject; the engine calls ``halt()`` and then reverts with the
planned record while inject still runs. A kind whose inject loops (a drain
retrying evictions a PodDisruptionBudget refuses, a pod-kill waiting for its
pods to be gone) checks ``halted()`` between steps and stops starting new
side effects, so nothing is done after the revert but a request already in
flight. The default costs nothing to kinds that ignore it.

Faults sit below the scenario layer: they know their own params and selector
models and the connection settings they need, never the scenario document.
"""

from __future__ import annotations

import math
import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chaosrunner.errors import PlanRefused
from chaosrunner.faults.connections import Connections

T = TypeVar("T")

RevertRecord = dict[str, Any]
"""JSON-serialisable facts that let ``revert`` undo a fault in any process."""

IN_EFFECT_SINCE = "in_effect_since"
"""Revert-record key: epoch seconds when the failure took effect, set by kinds
whose inject goes on afterwards (pod-kill waits for the recovery it measures)."""


class FaultParams(BaseModel):
    """Base of every fault's params model: strict, immutable, documented."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FaultSelector(BaseModel):
    """Base of every fault's selector model (which targets a fault may hit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(FaultParams):
    """For fault kinds that take no params."""


class BlastRadiusMode(StrEnum):
    ONE = "one"
    ALL = "all"
    COUNT = "count"
    PERCENT = "percent"


class BlastRadius(BaseModel):
    """How many of the selected targets one fault may hit.

    ``maximum`` is a hard ceiling: a plan that would hit more targets is
    refused, never silently trimmed, because the author's picture of the
    target was wrong and that is worth stopping for.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: BlastRadiusMode = Field(BlastRadiusMode.ONE, description="one, all, count or percent")
    count: int | None = Field(None, ge=1, description="targets to hit when mode is count")
    percent: float | None = Field(
        None, gt=0, le=100, description="share of the matched targets when mode is percent"
    )
    maximum: int | None = Field(None, ge=1, description="never hit more targets than this")

    @model_validator(mode="after")
    def _mode_has_its_amount(self) -> Self:
        if self.mode is BlastRadiusMode.COUNT and self.count is None:
            raise ValueError("mode 'count' needs 'count' (how many targets to hit)")
        if self.mode is BlastRadiusMode.PERCENT and self.percent is None:
            raise ValueError("mode 'percent' needs 'percent' (a share from 0 to 100)")
        if self.mode is not BlastRadiusMode.COUNT and self.count is not None:
            raise ValueError(f"'count' only applies to mode 'count', not {self.mode.value!r}")
        if self.mode is not BlastRadiusMode.PERCENT and self.percent is not None:
            raise ValueError(f"'percent' only applies to mode 'percent', not {self.mode.value!r}")
        return self

    def describe(self) -> str:
        if self.mode is BlastRadiusMode.COUNT:
            amount = f"{self.count} targets"
        elif self.mode is BlastRadiusMode.PERCENT:
            amount = f"{self.percent:g}% of matched targets"
        else:
            amount = "one target" if self.mode is BlastRadiusMode.ONE else "every matched target"
        return amount + (f", at most {self.maximum}" if self.maximum else "")


def choose_targets(
    fault_name: str,
    candidates: Sequence[T],
    blast_radius: BlastRadius,
    rng: random.Random | None = None,
    *,
    spread_by: Callable[[T], Hashable] | None = None,
) -> list[T]:
    """Pick which of ``candidates`` a fault hits, or refuse the plan.

    Random choice (not "the first N") so repeated runs spread over the fleet.
    Percentages are of ``candidates``: what is left after the selector and the
    safety rules. With ``spread_by`` (a pod's node), the picks cover the groups
    evenly: round-robin over the groups in random order, a random member of
    each, so no group gives two victims before every group has given one (group
    sizes allowing).
    """
    if not candidates:
        raise PlanRefused(f"fault {fault_name!r}: the selector matched no targets")
    wanted = {
        BlastRadiusMode.ONE: 1,
        BlastRadiusMode.ALL: len(candidates),
        BlastRadiusMode.COUNT: blast_radius.count or 1,
        BlastRadiusMode.PERCENT: max(1, math.ceil(len(candidates) * (blast_radius.percent or 0) / 100)),
    }[blast_radius.mode]
    if wanted > len(candidates):
        raise PlanRefused(
            f"fault {fault_name!r}: blast radius asks for {wanted} targets "
            f"but the selector matched only {len(candidates)}"
        )
    if blast_radius.maximum is not None and wanted > blast_radius.maximum:
        raise PlanRefused(
            f"fault {fault_name!r}: would hit {wanted} targets, "
            f"above the blast radius maximum of {blast_radius.maximum}"
        )
    rng = rng or random.Random()
    if spread_by is None:
        return rng.sample(list(candidates), wanted)
    return spread_sample(candidates, wanted, spread_by, rng)


def spread_sample(
    candidates: Sequence[T], wanted: int, group_of: Callable[[T], Hashable], rng: random.Random
) -> list[T]:
    """``wanted`` of ``candidates``, round-robin over their groups (random order, random members)."""
    groups: dict[Hashable, list[T]] = {}
    for candidate in candidates:
        groups.setdefault(group_of(candidate), []).append(candidate)
    queues = list(groups.values())
    rng.shuffle(queues)
    for queue in queues:
        rng.shuffle(queue)
    chosen: list[T] = []
    while len(chosen) < wanted:
        for queue in queues:
            if queue and len(chosen) < wanted:
                chosen.append(queue.pop())
        queues = [queue for queue in queues if queue]
    return chosen


class FaultRequest(BaseModel):
    """Everything ``plan`` may look at: one fault of one run, fully validated."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    run_id: str
    name: str
    params: FaultParams
    selector: FaultSelector | None = None
    blast_radius: BlastRadius = BlastRadius()
    connections: Connections = Connections()
    duration: timedelta | None = Field(
        None, description="how long the fault should last; None: until the team mitigates (gameday mode)"
    )
    max_duration: timedelta | None = Field(
        None, description="the run's own limit: the longest an open-ended fault can be wanted"
    )

    @property
    def hold_for(self) -> timedelta | None:
        """How long the fault may be needed: what dead-man's switches add their grace to."""
        return self.duration if self.duration is not None else self.max_duration


class TargetRef(BaseModel):
    """One thing a fault hits, named for people and identified for machines."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str


class FaultPlan(BaseModel):
    """The outcome of ``plan``: what will be hit, and how to undo it."""

    model_config = ConfigDict(frozen=True)

    fault: str
    kind: str
    targets: list[TargetRef]
    revert_record: RevertRecord
    summary: str = ""


class Fault(ABC):
    """A fault kind. Subclasses set the class attributes and the four steps.

    Register a subclass with ``chaosrunner.faults.registry.register``; the
    registry checks the class attributes and names the plug-in in its errors.
    """

    kind: ClassVar[str]
    """Registry key, ``backend.name`` in lower case (``docker.container-pause``)."""
    summary: ClassVar[str]
    """One sentence for the catalog: what it does and how it is reverted."""
    Params: ClassVar[type[FaultParams]] = NoParams
    Selector: ClassVar[type[FaultSelector] | None] = None
    """``None`` when the kind has no targets to choose (it acts on a connection)."""

    @abstractmethod
    def plan(self, request: FaultRequest) -> FaultPlan:
        """Resolve targets and refuse unsafe requests; no side effects."""

    @abstractmethod
    def inject(self, plan: FaultPlan) -> RevertRecord:
        """Cause the failure; return the complete revert record."""

    @abstractmethod
    def revert(self, record: RevertRecord) -> None:
        """Undo the failure; idempotent and safe after a crash."""

    @abstractmethod
    def check(self, record: RevertRecord) -> bool:
        """True while the failure is still in place."""

    def halt(self) -> None:
        """Ask an inject in flight to start no further side effects (the engine reverts next)."""
        self._halt_event().set()

    def halted(self) -> bool:
        """True once ``halt`` was called: an inject's loops check it between steps."""
        return self._halt_event().is_set()

    def _halt_event(self) -> threading.Event:
        # Created on first use so that kinds need no __init__ of the base; dict.setdefault is atomic.
        event: threading.Event = self.__dict__.setdefault("_halt", threading.Event())
        return event

    def outcome(self, record: RevertRecord) -> list[dict[str, Any]] | None:
        """What became of each target, read once the fault is reverted; ``None`` by default.

        A kind overrides this when the aftermath is worth journaling (did a
        killed container come back, when, and by whose hand). It must be
        read-only: the runner calls it after the revert, off the abort path.
        """
        return None
