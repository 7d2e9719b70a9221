"""Recording responder events into a run's journal, from any process.

``chaosrunner mark`` in another terminal, the live HTTP endpoint and the
demo's scripted responder all call ``record``: it validates the event against
the run (the time must fall inside it, never in the future) and appends a
``responder`` event under the journal's lock, so it interleaves safely with
the live runner's own events. Sources that receive a document rather than
arguments (the endpoint's JSON body, later the web console and chat) go
through ``record_fields``, which checks the document's shape first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from chaosrunner.engine.journal import parse_time
from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import UnknownRun, UsageError
from chaosrunner.gameday.responder import Mark, ResponderEvent, make_event, parse_at


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
    role: str | None = None,
    source: str | None = None,
) -> ResponderEvent:
    """Validate and journal one responder event; returns it. ``role`` (facilitator,
    incident_commander, responder) and ``source`` (``slack``, ``mattermost``: the chat
    platform it came from) are journaled only when given."""
    target = run if isinstance(run, RunDir) else RunDir.find(run)
    when = at if isinstance(at, datetime) else parse_at(at)
    event = make_event(
        mark,
        value,
        by=by,
        at=when,
        via=via,
        run_started=run_started_at(target),
        role=role,
        source=source,
    )
    target.journal().append("responder", **event.as_fields())
    return event


MARK_FIELDS = ("event", "value", "by", "at", "via", "role")


def record_fields(run: RunDir, fields: Any) -> ResponderEvent:
    """Validate and journal a mark given as a document: ``{"event": ..., "value": ..., ...}``.

    ``event`` is required; ``value``, ``by``, ``at``, ``via`` and ``role`` are strings
    or absent (null counts as absent); any other field is a mistake worth
    naming rather than ignoring. Then the same checks as ``record``.
    """
    if not isinstance(fields, Mapping):
        raise UsageError('expected a JSON object such as {"event": "detected", "by": "alice"}')
    unknown = sorted(str(name) for name in fields if name not in MARK_FIELDS)
    if unknown:
        raise UsageError(f"unknown field {unknown[0]!r}; expected: {', '.join(MARK_FIELDS)}")
    for name in MARK_FIELDS:
        if fields.get(name) is not None and not isinstance(fields[name], str):
            raise UsageError(f"field {name!r} must be a string, not {type(fields[name]).__name__}")
    if not fields.get("event"):
        raise UsageError(f'field "event" is required: one of {", ".join(m.value for m in Mark)}')
    return record(
        run,
        fields["event"],
        fields.get("value"),
        by=fields.get("by") or "",
        at=fields.get("at"),
        via=fields.get("via"),
        role=fields.get("role"),
    )


def responder_events(events: Iterable[Mapping[str, Any]]) -> list[ResponderEvent]:
    """The responder events of a journal, ordered by when they happened (late entries included)."""
    found = [ResponderEvent.from_journal(dict(event)) for event in events if event["type"] == "responder"]
    return sorted(found, key=lambda event: event.at)
