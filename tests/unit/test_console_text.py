"""Both consoles show people's text as text: no markup, no terminal escapes, plain words.

The live console is rendered the way rich's own tests do it: to a string, on a
forced terminal. Responders type what they like into a note; a note is never
rich markup (``[/var/lib/pg]`` once crashed the run) and never reaches the
facilitator's terminal as a control sequence.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from chaosrunner.cli.console import LiveConsole, PlainConsole, describe_event
from chaosrunner.engine.conditions import ConditionState, ConditionStatus
from chaosrunner.engine.runner import RunView
from chaosrunner.scenario.library import ConditionLibrary
from chaosrunner.scenario.loader import load_scenario
from tests.unit.scenario_factory import scenario_data, write_scenario

REPO = Path(__file__).resolve().parents[2]
BRACKET_NOTES = ["disk [/var/lib/pg] full", "[bold red]x[/]", "[/]", "[link=file:///etc/passwd]x"]
ESCAPES = {
    "osc-title": "\x1b]0;pwned\x07",
    "clear-screen": "\x1b[2J",
    "c1-csi": "\x9b31m",
    "osc-st": "\x1b]8;;http://evil/\x1b\\",
    "bell-backspace": "\x07\x08\x08",
    "carriage-return": "\rFAKE",
    "bidi-override": "\u202e",
}


def note(value: str, offset: float = 12.5) -> dict[str, Any]:
    return {
        "type": "responder",
        "time": "2026-11-27T14:00:12.500000Z",
        "offset": offset,
        "event": "note",
        "at": "2026-11-27T14:00:12.500000Z",
        "by": "dave",
        "value": value,
        "via": None,
    }


def condition_event(state: str, value: float | None, comparator: str, threshold: float) -> dict[str, Any]:
    return {
        "type": "condition",
        "time": "2026-11-27T14:00:03.000000Z",
        "offset": 3.0,
        "name": "scrape-target-down",
        "state": state,
        "value": value,
        "comparator": comparator,
        "threshold": threshold,
    }


@pytest.fixture
def runner(tmp_path: Path) -> Any:
    """What LiveConsole reads from a runner: the scenario, the view, the faults."""
    data = scenario_data()
    data["metadata"]["title"] = "Pool [exhausted] \x1b]0;title\x07"
    scenario = load_scenario(write_scenario(tmp_path, data), ConditionLibrary([REPO / "abort_conditions"]))
    view = RunView(run_id="20261127-140000-abcdef", title=scenario.metadata.title, phase="injecting")
    view.conditions["errors"] = ConditionStatus("errors", ConditionState.FIRING, 7.5, time.monotonic())
    faults = [
        SimpleNamespace(name=fault.name, spec=fault, state=SimpleNamespace(value="injected"))
        for fault in scenario.faults
    ]
    return SimpleNamespace(scenario=scenario, view=view, faults=faults)


def live_output(runner: Any, events: list[dict[str, Any]]) -> str:
    """Run a LiveConsole on a forced terminal (no colours), feed it events, return what it drew."""
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, color_system=None, width=160, height=60)
    console = LiveConsole(runner, console=terminal)
    for event in events:
        console(event)
    console.close()
    return screen.getvalue()


@pytest.mark.parametrize("text", BRACKET_NOTES)
def test_a_note_with_square_brackets_is_shown_literally_on_the_live_console(runner: Any, text: str) -> None:
    output = live_output(runner, [note(text)])
    assert f"team: dave note {text}" in output
    assert "Pool [exhausted]" in output  # the title is text too


def test_a_note_with_square_brackets_is_shown_literally_on_the_plain_console(
    capsys: pytest.CaptureFixture[str],
) -> None:
    console = PlainConsole()
    for text in BRACKET_NOTES:
        console(note(text))
    printed = capsys.readouterr().out
    for text in BRACKET_NOTES:
        assert f"team: dave note {text}\n" in printed


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_terminal_escapes_in_a_note_never_reach_either_terminal(
    runner: Any, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    hostile = f"db {ESCAPES[name]}slow"
    PlainConsole()(note(hostile))
    plain = capsys.readouterr().out
    live = live_output(runner, [note(hostile)])
    for output in (plain, live):
        for sequence in ("\x1b]", "\x1b[2J", "\x9b", "\x07", "\x08", "\r", "\u202e", "pwned\x07"):
            assert sequence not in output.replace("\r\n", "\n"), f"{sequence!r} reached the screen"
    assert "team: dave note db " in plain
    assert "slow" in plain


def test_the_escape_payload_text_is_dropped_with_its_sequence(capsys: pytest.CaptureFixture[str]) -> None:
    """An OSC window title is a command, not text: its payload goes with it."""
    PlainConsole()(note("db \x1b]0;pwned\x07slow, \x1b[31mred\x1b[0m, \x9b1mbold"))
    assert capsys.readouterr().out.endswith("team: dave note db slow, red, bold\n")


def test_a_note_over_several_lines_cannot_forge_an_event_line(capsys: pytest.CaptureFixture[str]) -> None:
    PlainConsole()(note("fine\n[    99.00s] run finished: completed - all good"))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert not lines[1].startswith("[")  # continuation lines are indented, never a new event


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (
            condition_event("ok", 1.0, "<", 1),
            "abort condition scrape-target-down ok: 1 (aborts when < 1)",
        ),
        (
            condition_event("firing", 0.3, ">", 0.05),
            "abort condition scrape-target-down BREACHED: 0.3 (aborts when > 0.05)",
        ),
        (
            condition_event("pending", 0.3, ">", 0.05),
            "abort condition scrape-target-down pending: 0.3 (aborts when > 0.05 for long enough)",
        ),
        (
            condition_event("no_data", None, ">=", 1),
            "abort condition scrape-target-down no data (aborts when >= 1)",
        ),
    ],
)
def test_an_abort_condition_line_says_what_it_means(event: dict[str, Any], line: str) -> None:
    assert describe_event(event) == line


def test_the_live_panel_says_when_each_condition_aborts(runner: Any) -> None:
    output = live_output(runner, [])
    assert "aborts when" in output
    row = next(line for line in output.splitlines() if "errors" in line and "7.5" in line)
    assert "> 5" in row and "BREACHED" in row


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        (
            {
                "rules": [{"name": "HighLatency"}, {"name": "PoolExhausted"}],
                "source": "prometheus",
                "error": None,
            },
            "alert rules: 2 read from Prometheus for detection coverage",
        ),
        (
            {"rules": [], "source": "prometheus", "error": None},
            "alert rules: Prometheus has none loaded; detection coverage will be empty",
        ),
        (
            {"rules": [], "source": "unavailable", "error": "no Prometheus configured"},
            "alert rules: not read (no Prometheus configured); detection coverage will lack this run",
        ),
    ],
)
def test_the_alert_rules_line_counts_rules_instead_of_printing_them(
    fields: dict[str, Any], line: str
) -> None:
    assert describe_event({"type": "alert_rules", "time": "t", "offset": 1.0, **fields}) == line
