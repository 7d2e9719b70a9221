"""The run sheet during a live run: the checklist, the go/no-go decision, injects due, roles on marks.

A real run folder and journal; the "runner" is this process holding the run's
lock, so the liveness check is the real one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.engine.go_gate import wait_for_go
from chaosrunner.engine.journal import Journal
from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import UsageError
from chaosrunner.gameday.marks import record, record_fields
from chaosrunner.gameday.responder import Mark, ResponderEvent, Role
from chaosrunner.gameday.run_sheet import (
    due_injects,
    record_checklist,
    record_decision,
    unchecked_prerequisites,
)
from chaosrunner.scenario.models import Inject
from tests.unit.scenario_factory import scenario_data

PREREQUISITES = ["Dashboards open", "Pager routes to the gameday channel", "Rollback tested"]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunDir]:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    folder = RunDir.create()
    folder.hold_lock()
    data = scenario_data(run_sheet={"prerequisites": PREREQUISITES, "go_no_go": True})
    data["abort_conditions"] = data["abort_conditions"][:1]  # the journal's copy is expanded: no `use:`
    journal = Journal(folder.journal_path)
    journal.append(
        "run_started", run_id=folder.run_id, scenario=data, monotonic_start=journal.monotonic_start
    )
    yield folder
    folder.release_lock()


def journal(run: RunDir, event_type: str, **fields: Any) -> None:
    Journal(run.journal_path).append(event_type, **fields)


def awaiting(run: RunDir) -> RunDir:
    journal(run, "phase", phase="preflight")
    journal(run, "phase", phase="awaiting_go")
    return run


def types(run: RunDir) -> list[str]:
    return [event.type for event in run.events()]


# -- go/no-go -------------------------------------------------------------------------------


def test_a_go_is_journaled_with_who_and_what_was_not_ticked(run: RunDir) -> None:
    awaiting(run)
    record_checklist(run, 0, True, by="fran")
    record_checklist(run, 1, True, by="fran")
    record_checklist(run, 1, False, by="fran")  # the latest tick counts
    event = record_decision(run, "go", by="fran", reason="  room is ready ")
    assert {k: event[k] for k in ("type", "decision", "by", "role", "reason", "unchecked")} == {
        "type": "go_decision",
        "decision": "go",
        "by": "fran",
        "role": "facilitator",
        "reason": "room is ready",
        "unchecked": PREREQUISITES[1:],
    }
    assert run.events()[-1] == event


def test_a_decision_is_refused_before_the_run_waits_for_one(run: RunDir) -> None:
    journal(run, "phase", phase="preflight")
    with pytest.raises(UsageError, match="is not awaiting go: it has not reached the go/no-go"):
        record_decision(run, "go", by="fran")
    assert "go_decision" not in types(run)


def test_a_second_decision_is_refused_naming_the_first(run: RunDir) -> None:
    awaiting(run)
    record_decision(run, "no_go", by="fran", reason="pager broken")
    with pytest.raises(UsageError, match="fran already decided no_go"):
        record_decision(run, "go", by="gus")
    assert types(run).count("go_decision") == 1


def test_a_decision_after_an_abort_or_the_end_is_refused(run: RunDir) -> None:
    awaiting(run)
    journal(run, "abort", cause="go_timeout", detail="no decision")
    with pytest.raises(UsageError, match=r"it was aborted \(go_timeout\)"):
        record_decision(run, "go", by="fran")
    journal(run, "run_finished", status="aborted", exit_code=1, detail="x")
    with pytest.raises(UsageError, match="has finished"):
        record_decision(run, "go", by="fran")


def test_a_decision_for_a_dead_runner_is_refused(run: RunDir) -> None:
    awaiting(run)
    run.release_lock()
    with pytest.raises(UsageError, match="is not live"):
        record_decision(RunDir.find(run.run_id), "go", by="fran")


@pytest.mark.parametrize(
    ("decision", "role", "message"),
    [
        ("maybe", "facilitator", "expected go or no_go"),
        ("go", "observer", "role 'observer': expected one of"),
    ],
)
def test_a_malformed_decision_is_refused(run: RunDir, decision: str, role: str, message: str) -> None:
    awaiting(run)
    with pytest.raises(UsageError, match=message):
        record_decision(run, decision, by="fran", role=role)
    assert "go_decision" not in types(run)


def test_two_goes_at_once_journal_one_decision(run: RunDir) -> None:
    awaiting(run)
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def click(who: str) -> None:
        start.wait()
        try:
            record_decision(RunDir.find(run.run_id), "go", by=who)
            outcomes.append("journaled")
        except UsageError:
            outcomes.append("refused")

    threads = [threading.Thread(target=click, args=(f"person{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["journaled"] + ["refused"] * 7
    assert types(run).count("go_decision") == 1


def test_the_gate_gives_up_under_the_decision_lock_so_a_late_go_is_refused(run: RunDir) -> None:
    awaiting(run)
    timed_out: list[bool] = []

    def give_up() -> None:
        timed_out.append(True)
        journal(run, "abort", cause="go_timeout", detail="no decision")

    assert wait_for_go(run.journal_path, threading.Event(), 0.2, on_timeout=give_up) is None
    assert timed_out == [True]
    with pytest.raises(UsageError, match="aborted"):
        record_decision(run, "go", by="fran")


def test_the_gate_returns_the_decision_and_shows_the_checklist(run: RunDir) -> None:
    awaiting(run)
    record_checklist(run, 2, True, by="fran")
    record_decision(run, "go", by="fran")
    seen: list[str] = []
    decision = wait_for_go(
        run.journal_path,
        threading.Event(),
        5,
        on_timeout=lambda: None,
        on_event=lambda e: seen.append(e.type),
    )
    assert decision is not None and decision["decision"] == "go"
    assert seen == ["checklist", "go_decision"]


def test_the_gate_stops_waiting_when_the_run_stops(run: RunDir) -> None:
    awaiting(run)
    stop = threading.Event()
    stop.set()
    assert wait_for_go(run.journal_path, stop, 60, on_timeout=pytest.fail) is None


# -- the checklist --------------------------------------------------------------------------


def test_a_tick_is_journaled_with_the_prerequisite_s_text(run: RunDir) -> None:
    event = record_checklist(run, 1, True, by=" fran ")
    assert {k: event[k] for k in ("type", "item", "text", "checked", "by")} == {
        "type": "checklist",
        "item": 1,
        "text": PREREQUISITES[1],
        "checked": True,
        "by": "fran",
    }


@pytest.mark.parametrize(
    ("item", "checked", "message"),
    [
        (3, True, "item 3 is not a prerequisite: expected 0 to 2"),
        (-1, True, "item -1 is not a prerequisite"),
        (True, True, "item must be a whole number"),
        ("1", True, "item must be a whole number"),
        (0, "yes", "checked must be true or false"),
    ],
)
def test_a_wrong_tick_is_refused(run: RunDir, item: Any, checked: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        record_checklist(run, item, checked, by="fran")
    assert "checklist" not in types(run)


def test_no_ticks_after_the_run_finished(run: RunDir) -> None:
    journal(run, "run_finished", status="aborted", exit_code=1, detail="x")
    with pytest.raises(UsageError, match="has finished"):
        record_checklist(run, 0, True, by="fran")


def test_unchecked_prerequisites_follow_the_latest_tick() -> None:
    events = [
        {"type": "checklist", "item": 0, "checked": True},
        {"type": "checklist", "item": 2, "checked": True},
        {"type": "checklist", "item": 2, "checked": False},
        {"type": "checklist", "item": 9, "checked": True},  # a scenario with fewer items: ignored
        {"type": "responder", "item": 1, "checked": True},
    ]
    assert unchecked_prerequisites(PREREQUISITES, events) == PREREQUISITES[1:]


# -- injects due ----------------------------------------------------------------------------

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
REPORT = Inject(name="customer-report", at="5m", unless="detected", text="Customers report failures")
HINT = Inject(name="hint", at="2m", text="Look at the pool")


def mark(kind: str, seconds: float, by: str = "alice") -> ResponderEvent:
    return ResponderEvent(mark=Mark(kind), at=T0 + timedelta(seconds=seconds), by=by)


def test_nothing_is_due_before_its_time() -> None:
    assert due_injects([REPORT, HINT], 119.9, [], set(), t0=T0) == []


def test_injects_fire_in_time_order_once() -> None:
    due = due_injects([REPORT, HINT], 300, [], set(), t0=T0)
    assert [(d.inject.name, d.fire, d.reason) for d in due] == [
        ("hint", True, ""),
        ("customer-report", True, ""),
    ]
    assert due_injects([REPORT, HINT], 400, [], {"hint", "customer-report"}, t0=T0) == []


def test_an_inject_is_skipped_when_the_team_already_made_its_mark() -> None:
    [(inject, fire, reason)] = due_injects([REPORT], 301, [mark("detected", 130)], set(), t0=T0)
    assert (inject.name, fire, reason) == ("customer-report", False, "detected at t0+2m10s by alice")


def test_a_mark_made_after_the_inject_was_due_does_not_skip_it() -> None:
    # Marks arrive late (--at, a slow network): one made after t0+5m did not need the hint to be skipped.
    [due] = due_injects([REPORT], 320, [mark("detected", 310), mark("severity", 10)], set(), t0=T0)
    assert due.fire is True


def test_a_mark_before_t0_counts() -> None:
    [due] = due_injects([REPORT], 300, [mark("detected", -5, by="bob")], set(), t0=T0)
    assert (due.fire, due.reason) == (False, "detected at t0-5s by bob")


# -- roles on marks -------------------------------------------------------------------------


def test_a_role_is_journaled_only_when_given(run: RunDir) -> None:
    with_role = record(run, "ic", "alice", by="alice", role="incident_commander")
    without = record(run, "detected", by="bob")
    assert with_role.role is Role.INCIDENT_COMMANDER and without.role is None
    first, second = [event for event in run.events() if event.type == "responder"]
    assert first["role"] == "incident_commander"
    assert "role" not in second
    assert ResponderEvent.from_journal(dict(first)).role is Role.INCIDENT_COMMANDER


def test_a_document_may_carry_a_role(run: RunDir) -> None:
    event = record_fields(run, {"event": "severity", "value": "P2", "by": "fran", "role": "facilitator"})
    assert event.as_fields()["role"] == "facilitator"


@pytest.mark.parametrize(
    ("role", "message"),
    [
        ("observer", "role 'observer': expected one of: facilitator, incident_commander, responder"),
        (3, "must be"),
    ],
)
def test_an_unknown_role_is_refused(run: RunDir, role: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        record_fields(run, {"event": "detected", "by": "x", "role": role})
    assert "responder" not in types(run)
