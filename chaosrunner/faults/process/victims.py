"""A targeted process as a revert record holds it: pid *and* start time, plus a name for people.

The command line is deliberately not recorded: it may hold a secret of the
target application, and the journal must never leak one.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import FaultRequest, TargetRef, choose_targets
from chaosrunner.faults.process.procfs import ProcessInfo
from chaosrunner.faults.process.selection import ProcessSelector, resolve


def as_record(info: ProcessInfo) -> dict[str, Any]:
    return {"pid": info.pid, "start_ticks": info.start_ticks, "comm": info.comm}


def as_target(victim: dict[str, Any]) -> TargetRef:
    return TargetRef(
        id=f"{victim['pid']}@{victim['start_ticks']}", name=f"{victim['comm']} (pid {victim['pid']})"
    )


def names(victims: list[dict[str, Any]]) -> str:
    """The victims as people read them: ``comm (pid N)``, comma-separated."""
    return ", ".join(as_target(victim).name for victim in victims)


def choose(
    request: FaultRequest,
    refuse: Callable[[ProcessInfo], str | None] | None = None,
    rng: random.Random | None = None,
) -> tuple[ProcessSelector, list[dict[str, Any]]]:
    """Resolve the request's selector and apply its blast radius; PlanRefused on no match."""
    selector = request.selector
    if not isinstance(selector, ProcessSelector):
        raise PlanRefused(f"fault {request.name!r}: needs a selector (pid_file, name or cmdline)")
    chosen = choose_targets(request.name, resolve(request.name, selector, refuse), request.blast_radius, rng)
    return selector, [as_record(info) for info in sorted(chosen, key=lambda info: info.pid)]
