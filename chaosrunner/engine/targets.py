"""What each fault would hit, asked of the live systems without touching them.

A fault's ``plan`` resolves its selector against the target (containers,
pods, processes, a database) and refuses what the safety rules forbid, with
no side effects (the protocol in ``chaosrunner.faults.base``). The runner
calls it as its first phase; ``chaosrunner plan --targets`` calls it ahead of
a run, so a selector that matches nothing or a blast radius above its maximum
is found before the gameday starts, not in front of the team.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosrunner.errors import EnvironmentProblem, FaultError
from chaosrunner.faults.base import FaultRequest, TargetRef
from chaosrunner.faults.registry import registry
from chaosrunner.scenario.models import FaultSpec, Mode, Scenario

DRY_RUN_ID = "plan-dry-run"
"""The run id a dry-run plan is made under: it names nothing that exists."""


def fault_request(scenario: Scenario, spec: FaultSpec, run_id: str, mode: Mode) -> FaultRequest:
    """The request a fault of ``scenario`` is planned and injected with."""
    return FaultRequest(
        run_id=run_id,
        name=spec.name,
        params=spec.params,
        selector=spec.selector,
        blast_radius=spec.blast_radius,
        connections=scenario.target,
        # In gameday mode a fault lasts until the team mitigates, whatever its duration says.
        duration=spec.duration if mode is Mode.AUTOMATED else None,
        max_duration=scenario.gameday.max_duration,
    )


@dataclass(frozen=True)
class ResolvedFault:
    """One fault's dry-run plan: its targets and summary, or why it was refused."""

    name: str
    kind: str
    targets: list[TargetRef]
    summary: str
    refused: str | None = None
    unreachable: str | None = None
    random_pick: bool = False

    @property
    def ok(self) -> bool:
        return self.refused is None and self.unreachable is None


def resolve_targets(scenario: Scenario, mode: Mode | None = None) -> list[ResolvedFault]:
    """Plan every fault against the live target; nothing is injected or changed."""
    resolved = []
    for spec in scenario.faults:
        fault_class = registry.get(spec.kind)
        if fault_class is None:  # the loader already refused unknown kinds
            raise LookupError(spec.kind)
        request = fault_request(scenario, spec, DRY_RUN_ID, mode or scenario.gameday.mode)
        random_pick = bool(getattr(spec.selector, "random", False))
        try:
            plan = fault_class().plan(request)
        except EnvironmentProblem as problem:
            resolved.append(ResolvedFault(spec.name, spec.kind, [], "", unreachable=str(problem)))
        except FaultError as refusal:
            resolved.append(ResolvedFault(spec.name, spec.kind, [], "", refused=str(refusal)))
        else:
            resolved.append(
                ResolvedFault(spec.name, spec.kind, plan.targets, plan.summary, random_pick=random_pick)
            )
    return resolved
