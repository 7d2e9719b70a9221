"""The live console: what a facilitator watches while a run is live.

On a terminal it is a rich live panel - phase, elapsed time, every abort
condition's current value against its threshold, the faults and their state,
and the latest events. When output is not a terminal (CI logs, a pipe, the
scheduler) it prints one plain line per event instead, which greps well.
Either way it only *reads*: the runner's journaled events and its RunView.

Every word on either console that came from outside - a responder's note, a
library's error, a scenario's title - is *text*: never rich markup (a note
``disk [/var/lib/pg] full`` once crashed the run), never a terminal control
sequence, and scrubbed of anything that looks like a credential. ``safe_text``
is the one door such text comes through; the live panel builds rich ``Text``
objects from it, so nothing is ever parsed as markup.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Any

import click

from chaosrunner.durations import format_duration
from chaosrunner.engine.journal import outcome_summary
from chaosrunner.redaction import redact_text
from chaosrunner.terminal_escapes import strip_terminal_escapes

QUIET_EVENTS = {"phase"}


def describe_event(event: dict[str, Any]) -> str | None:
    """One human line per journal event (None for events not worth a line)."""
    kind = event["type"]
    fault = event.get("fault", "")
    lines = {
        "run_started": lambda: (
            f"run {event['run_id']} started: {event['scenario_title']} ({event['mode']} mode)"
        ),
        "abort_condition_source": lambda: (
            ("WARNING: " if "; shadows " in event["origin"] else "")
            + f"abort condition {event['name']} from {event['origin']}"
        ),
        "phase": lambda: (
            "phase: awaiting_go - waiting for go/no-go from the facilitator"
            if event["phase"] == "awaiting_go"
            else f"phase: {event['phase']}"
        ),
        "checklist": lambda: (
            f"checklist: {event['by']} {'ticked' if event['checked'] else 'unticked'} {event['text']}"
        ),
        "go_decision": lambda: describe_go(event),
        "inject_fired": lambda: (
            f"inject {event['name']} (to {event['audience']}, t0+{format_duration(event['at_offset_s'])}): "
            + event["text"]
        ),
        "inject_skipped": lambda: f"inject {event['name']} skipped: {event['reason']}",
        "check": lambda: f"{'ok' if event['ok'] else 'FAILED'}: {event['name']} - {event['detail']}",
        "fault_planned": lambda: (
            f"planned {fault}: {event['summary'] or event['kind']}"
            + f" -> {', '.join(t['name'] for t in event['targets'])}"
        ),
        "fault_injecting": lambda: f"injecting {fault} ({event['kind']})",
        "fault_injected": lambda: f"injected {fault}",
        "fault_inject_failed": lambda: f"INJECT FAILED {fault}: {event['error']}",
        "fault_reverting": lambda: f"reverting {fault}",
        "fault_reverted": lambda: (
            f"reverted {fault}" + (" (by recover)" if event.get("by") == "recover" else "")
        ),
        "toxic_switched": lambda: (
            f"{event['by'] or 'someone'} switched {event['toxic']} of {fault} "
            + ("on" if event["enabled"] else "off")
        ),
        "fault_outcome": lambda: f"aftermath of {fault}: {outcome_summary(event)}",
        "fault_revert_failed": lambda: f"REVERT FAILED {fault}: STILL INJECTED ({event['error']})",
        "condition": lambda: describe_condition(event),
        "prometheus": lambda: (
            f"Prometheus {event['state']}" + (f": {event['error']}" if event.get("error") else "")
        ),
        "abort": lambda: f"ABORT ({event['cause']}): {event['detail']}",
        "signal_ignored": lambda: f"{event['signal']} ignored: {event['detail']}",
        "run_finished": lambda: f"run finished: {event['status']} - {event['detail']}",
        "responder": lambda: (
            f"team: {event['by']}"
            + (f" ({event['role'].replace('_', ' ')})" if event.get("role") else "")
            + f" {event['event']}"
            + (f" {event['value']}" if event.get("value") else "")
            + (f" (via {event['via']})" if event.get("via") else "")
        ),
        "responder_endpoint": lambda: f"responder endpoint: POST JSON events to {event['url']}",
        "alert": lambda: (
            f"alert {event['name']} {event['state']} ({event['source']}, since {event['since'][11:19]})"
        ),
        "alert_rules": lambda: describe_alert_rules(event),
        "faults_ending": lambda: f"mitigated: {event['reason']} - reverting",
        "mitigation_unconfirmed": lambda: f"not yet: {event['detail']}",
        "escalation_due": lambda: f"ESCALATION DUE: {event['detail']}",
    }
    render = lines.get(kind)
    line = (
        render()
        if render
        else f"{kind}: "
        + ", ".join(f"{k}={v}" for k, v in event.items() if k not in ("type", "time", "offset"))
    )
    return safe_text(line)


def describe_alert_rules(event: dict[str, Any]) -> str:
    # One line, not the rules themselves: there may be hundreds, and the report lists them.
    if event.get("error"):
        return f"alert rules: not read ({event['error']}); detection coverage will lack this run"
    count = len(event.get("rules") or [])
    return (
        f"alert rules: {count} read from Prometheus for detection coverage"
        if count
        else ("alert rules: Prometheus has none loaded; detection coverage will be empty")
    )


def describe_go(event: dict[str, Any]) -> str:
    """``GO from alice (facilitator): reason`` and what was not ticked when it was said."""
    said = "GO" if event["decision"] == "go" else "NO-GO"
    line = f"{said} from {event['by']} ({str(event.get('role') or 'facilitator').replace('_', ' ')})"
    if event.get("reason"):
        line += f": {event['reason']}"
    if event.get("unchecked"):
        line += f" [not ticked: {'; '.join(event['unchecked'])}]"
    return line


def describe_condition(event: dict[str, Any]) -> str:
    """``abort condition NAME ok: 1 (aborts when < 1)``: the value, then the rule it is held to.

    The state says whether the run is in danger; "ok (value 1 < 1)" read as a
    false statement, so the comparison is spelled as the rule, never as a claim.
    """
    name = f"abort condition {event['name']}"
    rule = f"aborts when {event['comparator']} {event['threshold']:g}"
    state = event["state"]
    if event.get("value") is None or state == "no_data":
        return f"{name} no data ({rule})"
    value = _number(event["value"])
    if state == "firing":
        return f"{name} BREACHED: {value} ({rule})"
    if state == "pending":
        return f"{name} pending: {value} ({rule} for long enough)"
    return f"{name} {state}: {value} ({rule})"


def safe_text(text: str) -> str:
    """Outside text made fit for a terminal: no escape sequences, no credentials."""
    return strip_terminal_escapes(redact_text(text))


def _number(value: Any) -> str:
    return "no data" if value is None else f"{value:.4g}"


STATE_WORDS = {"firing": "BREACHED", "no_data": "no data"}
STATE_STYLES = {"firing": "bold red", "pending": "yellow", "ok": "green"}


class PlainConsole:
    """One line per event on stdout: for pipes, logs and CI."""

    def __call__(self, event: dict[str, Any]) -> None:
        line = describe_event(event)
        if line is not None:
            # A note over several lines must not print a line that reads like an event.
            click.echo(f"[{event['offset']:8.2f}s] {line}".replace("\n", "\n" + " " * 13))

    def close(self) -> None:
        return None


class LiveConsole:
    """A rich live panel refreshed a few times a second, fed by the runner's events."""

    def __init__(self, runner: Any, console: Any = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.runner = runner
        self.events: deque[str] = deque(maxlen=12)
        self.console = console or Console()
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
        self._stop = threading.Event()
        self.live.start()
        self._thread = threading.Thread(target=self._refresh, name="console", daemon=True)
        self._thread.start()

    def __call__(self, event: dict[str, Any]) -> None:
        line = describe_event(event)
        waiting = event["type"] == "phase" and event.get("phase") == "awaiting_go"  # the room must know
        if line is not None and (event["type"] not in QUIET_EVENTS or waiting):
            self.events.append(f"{event['offset']:7.2f}s  {line}")

    def _refresh(self) -> None:
        while not self._stop.wait(0.25):
            self.live.update(self._render())

    def _render(self) -> Any:
        # Every cell is a Text built from plain strings: rich parses markup in a bare str.
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        view = self.runner.view
        if view is None:
            return Panel(Text("starting..."))
        elapsed = format_duration(round(time.monotonic() - view.started))
        header = Text.assemble(
            (safe_text(view.title), "bold"),
            f"  run {view.run_id}  phase ",
            (safe_text(view.phase), "bold cyan"),
            f"  elapsed {elapsed}",
        )
        conditions = Table(title="abort conditions", expand=True, title_justify="left")
        for column in ("condition", "value", "aborts when", "state"):
            conditions.add_column(column)
        for condition in self.runner.scenario.abort_conditions:
            status = view.conditions.get(condition.name)
            value = _number(status.value) if status else "-"
            state = status.state.value if status else "waiting"
            conditions.add_row(
                Text(safe_text(condition.name)),
                Text(value),
                Text(f"{condition.comparator.value} {condition.threshold:g}"),
                Text(STATE_WORDS.get(state, state), style=STATE_STYLES.get(state, "dim")),
            )
        faults = Table(title="faults", expand=True, title_justify="left")
        for column in ("fault", "kind", "state"):
            faults.add_column(column)
        for fault in self.runner.faults:
            faults.add_row(
                *(Text(safe_text(cell)) for cell in (fault.name, fault.spec.kind, fault.state.value))
            )
        events = Text("\n".join(self.events))
        return Panel(Group(header, conditions, faults, events), title="chaosrunner")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self.live.update(self._render())
        self.live.stop()


def make_console(runner: Any, force_plain: bool = False) -> PlainConsole | LiveConsole:
    if force_plain or not sys.stdout.isatty():
        return PlainConsole()
    return LiveConsole(runner)
