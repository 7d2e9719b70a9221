"""Recording responder events into a run's journal, from any process.

``chaosrunner mark`` in another terminal, the live HTTP endpoint and the
demo's scripted responder all call ``record``: it validates the event against
the run (the time must fall inside it, never in the future) and appends a
``responder`` event under the journal's lock, so it interleaves safely with
the live runner's own events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from chaosrunner.engine.journal import parse_time
from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import UnknownRun
from chaosrunner.gameday.responder import ResponderEvent, make_event, parse_at


def run_started_at(run: RunDir) -> datetime:
    first = next(iter(run.events()), None)
    if first is None or first.type != "run_started":
        raise UnknownRun(f"run {run.run_id!r} has no run_started event: its journal is damaged")
    return parse_time(first["time"])


def record(
    run: RunDir | str,
    mark: str,
    value: str | None = None,
    *,
    by: str = "",
    at: str | datetime | None = None,
    via: str | None = None,
) -> ResponderEvent:
    """Validate and journal one responder event; returns it."""
    target = run if isinstance(run, RunDir) else RunDir.find(run)
    when = at if isinstance(at, datetime) else parse_at(at)
    event = make_event(mark, value, by=by, at=when, via=via, run_started=run_started_at(target))
    target.journal().append("responder", **event.as_fields())
    return event


def responder_events(events: Iterable[Mapping[str, Any]]) -> list[ResponderEvent]:
    """The responder events of a journal, ordered by when they happened (late entries included)."""
    found = [ResponderEvent.from_journal(dict(event)) for event in events if event["type"] == "responder"]
    return sorted(found, key=lambda event: event.at)
