"""The run sheet's events in words: the terminal console's lines and the debrief's timeline rows."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

from rich.console import Console

from chaosrunner.cli.console import LiveConsole, PlainConsole, describe_event
from chaosrunner.engine.journal import JournalEvent
from chaosrunner.engine.runner import RunView
from chaosrunner.report.sample import sample_run
from chaosrunner.report.timeline import SYSTEM, TEAM, timeline

GO = {
    "type": "go_decision",
    "decision": "go",
    "by": "fran",
    "role": "facilitator",
    "reason": "room ready",
    "unchecked": ["The pager routes to the gameday channel"],
}
NO_GO = {
    "type": "go_decision",
    "decision": "no_go",
    "by": "fran",
    "role": "facilitator",
    "reason": "",
    "unchecked": [],
}
TICK = {"type": "checklist", "item": 0, "text": "Dashboards open", "checked": True, "by": "fran"}
FIRED = {
    "type": "inject_fired",
    "name": "customer-report",
    "text": "Customers report failed payments",
    "audience": "responders",
    "at_offset_s": 300.0,
}
SKIPPED = {"type": "inject_skipped", "name": "customer-report", "reason": "detected at t0+2m10s by alice"}
WAITING = {"type": "phase", "phase": "awaiting_go"}


def test_console_lines_for_the_run_sheet() -> None:
    assert describe_event(WAITING) == "phase: awaiting_go - waiting for go/no-go from the facilitator"
    assert describe_event(GO) == (
        "GO from fran (facilitator): room ready [not ticked: The pager routes to the gameday channel]"
    )
    assert describe_event(NO_GO) == "NO-GO from fran (facilitator)"
    assert describe_event(TICK) == "checklist: fran ticked Dashboards open"
    assert describe_event({**TICK, "checked": False}) == "checklist: fran unticked Dashboards open"
    assert describe_event(FIRED) == (
        "inject customer-report (to responders, t0+5m): Customers report failed payments"
    )
    assert describe_event(SKIPPED) == "inject customer-report skipped: detected at t0+2m10s by alice"


def test_a_mark_s_role_shows_on_the_console() -> None:
    mark = {"type": "responder", "event": "ic", "value": "alice", "by": "bob", "role": "incident_commander"}
    assert describe_event(mark) == "team: bob (incident commander) ic alice"
    assert describe_event({**mark, "role": None}) == "team: bob ic alice"


def test_an_inject_s_text_is_text_on_the_console() -> None:
    line = describe_event({**FIRED, "text": "\x1b]0;pwned\x07[bold]loud[/]"})
    assert line is not None and "\x1b" not in line and "\x07" not in line
    assert "[bold]loud[/]" in line  # kept as the words they are; the live panel never parses markup


def test_the_plain_console_prints_the_wait(capsys: Any) -> None:
    PlainConsole()({**WAITING, "offset": 1.5})
    assert "waiting for go/no-go from the facilitator" in capsys.readouterr().out


def test_the_live_console_shows_the_wait_though_it_hides_other_phases() -> None:
    runner = SimpleNamespace(view=RunView("r", "t"), scenario=SimpleNamespace(abort_conditions=[]), faults=[])
    live = LiveConsole(runner, Console(file=io.StringIO(), force_terminal=True, width=120))
    try:
        live({"type": "phase", "phase": "preflight", "offset": 1.0})
        live({**WAITING, "offset": 1.2})
    finally:
        live.close()
    assert [line.strip() for line in live.events] == [
        "1.20s  phase: awaiting_go - waiting for go/no-go from the facilitator"
    ]


def journal_event(seconds: int, **fields: Any) -> JournalEvent:
    return JournalEvent(time=f"2026-11-27T14:00:{seconds:02d}.000000Z", offset=float(seconds), **fields)


def test_the_debrief_timeline_shows_the_run_sheet_with_who() -> None:
    debrief, _ = sample_run()
    extra = [
        journal_event(1, **WAITING),
        journal_event(2, **TICK),
        journal_event(3, **GO),
        journal_event(40, **FIRED),
        journal_event(41, **SKIPPED),
        journal_event(42, type="responder", event="ic", value="alice", by="bob", role="incident_commander"),
    ]
    extra[-1]["at"] = extra[-1]["time"]
    rows_in_order = timeline([*debrief.events, *extra], debrief.measurement)
    rows = {row.kind: row for row in rows_in_order}
    assert (rows["phase"].source, rows["phase"].what) == (SYSTEM, "waiting for go/no-go from the facilitator")
    assert (rows["checklist"].source, rows["checklist"].who, rows["checklist"].what) == (
        TEAM,
        "fran",
        "ticked prerequisite: Dashboards open",
    )
    go = rows["go_decision"]
    assert (go.source, go.who, go.emphasis) == (TEAM, "fran (facilitator)", True)
    assert go.what == (
        "GO: inject the faults - room ready (not ticked: The pager routes to the gameday channel)"
    )
    assert (
        rows["inject_fired"].what == "inject customer-report to responders: Customers report failed payments"
    )
    assert rows["inject_skipped"].what == "inject customer-report skipped: detected at t0+2m10s by alice"
    assert rows["inject_fired"].who == rows["inject_skipped"].who == "run sheet"
    assert "bob (incident commander)" in [row.who for row in rows_in_order if row.kind == "ic"]


def test_other_phases_stay_out_of_the_timeline() -> None:
    debrief, _ = sample_run()
    rows = timeline([*debrief.events, journal_event(1, type="phase", phase="preflight")], debrief.measurement)
    assert "phase" not in {row.kind for row in rows}


def test_a_no_go_reads_as_calling_the_gameday_off() -> None:
    debrief, _ = sample_run()
    rows = timeline([*debrief.events, journal_event(3, **NO_GO)], debrief.measurement)
    [row] = [row for row in rows if row.kind == "go_decision"]
    assert row.what == "NO-GO: call the gameday off"
