"""The facilitator's run sheet during a live gameday: the checklist, go/no-go, and injects.

The scenario's ``run_sheet`` says what to check before anything is injected,
whether the run waits for a go, and which injects to give the room when.
This module writes the facilitator's side into the journal, whichever door
it came through (the console page or ``chaosrunner go``):

- ``record_checklist``: a ``checklist`` event (a prerequisite ticked or not);
- ``record_decision``: the one ``go_decision`` the runner's gate waits for
  (engine.go_gate), refused unless the run is waiting for it;

and decides, as a pure function the watcher calls each tick, which injects
are due and whether each fires or is skipped (``due_injects``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from chaosrunner.durations import format_duration
from chaosrunner.engine.go_gate import decision_lock
from chaosrunner.engine.journal import JournalEvent
from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import UsageError
from chaosrunner.gameday.debrief import scenario_of
from chaosrunner.gameday.responder import ResponderEvent, parse_role
from chaosrunner.scenario.models import Inject

DECISIONS = ("go", "no_go")


def unchecked_prerequisites(prerequisites: Sequence[str], events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Prerequisites whose latest ``checklist`` event is not a tick (never ticked included)."""
    checked = [False] * len(prerequisites)
    for event in events:
        item = event.get("item")
        if event["type"] == "checklist" and isinstance(item, int) and 0 <= item < len(checked):
            checked[item] = bool(event.get("checked"))
    return [text for text, ticked in zip(prerequisites, checked, strict=True) if not ticked]


def _refuse_if_finished(run: RunDir, events: list[JournalEvent]) -> None:
    if any(event.type == "run_finished" for event in events):
        raise UsageError(f"run {run.run_id} has finished")
    if not run.is_live():
        raise UsageError(f"run {run.run_id} is not live (its runner is gone)")


def _awaiting_go(events: list[JournalEvent]) -> str | None:
    """None when the run is waiting for a decision; otherwise why not, in a few words."""
    phases = [event["phase"] for event in events if event.type == "phase"]
    if "awaiting_go" not in phases:
        if "injecting" in phases:
            return "it is already injecting"
        return "it has not reached the go/no-go (or its run sheet has no go_no_go)"
    decided = next((event for event in events if event.type == "go_decision"), None)
    if decided is not None:
        return f"{decided.get('by') or 'someone'} already decided {decided.get('decision')}"
    aborted = next((event for event in events if event.type == "abort"), None)
    if aborted is not None:
        return f"it was aborted ({aborted.get('cause')})"
    return None


def record_decision(
    run: RunDir, decision: str, *, by: str, role: str = "facilitator", reason: str = ""
) -> JournalEvent:
    """Journal the go/no-go the runner's gate waits for; UsageError (exit 2, HTTP 409) when
    the run is not waiting for one. Two decisions at once: the first wins, the second is refused."""
    if decision not in DECISIONS:
        raise UsageError(f"decision {decision!r}: expected go or no_go")
    who = by.strip() or "unknown"
    chosen_role = parse_role(role)
    with decision_lock(run.path):
        events = run.events()
        _refuse_if_finished(run, events)
        why_not = _awaiting_go(events)
        if why_not is not None:
            raise UsageError(f"run {run.run_id} is not awaiting go: {why_not}")
        scenario = scenario_of(events, run.run_id)
        return run.journal().append(
            "go_decision",
            decision=decision,
            by=who,
            role=chosen_role.value if chosen_role else "facilitator",
            reason=reason.strip(),
            unchecked=unchecked_prerequisites(scenario.run_sheet.prerequisites, events),
        )


def record_checklist(run: RunDir, item: int, checked: bool, *, by: str) -> JournalEvent:
    """Journal a prerequisite ticked (or unticked) by the facilitator."""
    if isinstance(item, bool) or not isinstance(item, int):
        raise UsageError(f"item must be a whole number, not {item!r}")
    if not isinstance(checked, bool):
        raise UsageError(f"checked must be true or false, not {checked!r}")
    events = run.events()
    _refuse_if_finished(run, events)
    prerequisites = scenario_of(events, run.run_id).run_sheet.prerequisites
    if not 0 <= item < len(prerequisites):
        if not prerequisites:
            raise UsageError("the scenario's run sheet lists no prerequisites")
        raise UsageError(f"item {item} is not a prerequisite: expected 0 to {len(prerequisites) - 1}")
    return run.journal().append(
        "checklist", item=item, text=prerequisites[item], checked=checked, by=by.strip() or "unknown"
    )


# -- injects --------------------------------------------------------------------------------


class DueInject(NamedTuple):
    inject: Inject
    fire: bool
    reason: str  # why it is skipped; "" when it fires


def _offset_text(seconds: float) -> str:
    sign = "-" if seconds < 0 else "+"
    return f"t0{sign}{format_duration(round(abs(seconds)))}"


def due_injects(
    injects: Sequence[Inject],
    seconds_since_t0: float,
    marks: Sequence[ResponderEvent],
    handled: set[str] | frozenset[str],
    *,
    t0: datetime,
) -> list[DueInject]:
    """The injects whose time has come and that are not ``handled`` yet, in time order.

    Each fires, or is skipped when it has an ``unless`` mark the team made at or
    before the moment it was due (``t0 + at``): "unless detected" means the team
    did not need the hint.
    """
    due = []
    for inject in sorted(injects, key=lambda inject: inject.at):
        at = inject.at.total_seconds()
        if inject.name in handled or at > seconds_since_t0:
            continue
        moment = t0 + timedelta(seconds=at)
        made = next(
            (mark for mark in marks if mark.mark.value == inject.unless and mark.at <= moment),
            None,
        )
        if made is None:
            due.append(DueInject(inject, True, ""))
        else:
            since = (made.at - t0).total_seconds()
            due.append(DueInject(inject, False, f"{inject.unless} at {_offset_text(since)} by {made.by}"))
    return due
