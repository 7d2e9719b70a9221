"""Marks imported from a chat export, kept apart from the journal, counted by the debrief.

``chaosrunner import-chat RUN EXPORT --channel NAME`` reads what the team
wrote in the incident channel (``exports``), keeps the messages written
inside the run's window - from ``run_started`` to ``run_finished``, nothing
after: a status update posted once the run was over did not inform anyone
during it - and turns the ones that say something the scorer counts into
marks (``recognise``), with the message's real time and author.

They are stored beside the journal, never in it: the journal is what
happened live, written ahead by the runner, and an import is an
after-the-fact reading that may be redone with a better export.
``<run folder>/chat-import.jsonl`` (0600) holds one mark a line - event,
at, by, value, via, source (``slack-export`` | ``mattermost-export``), quote
(the message, bounded), channel - and is replaced whole, atomically, by the
next import of the run. ``gameday.debrief`` merges them with the journal's
responder events for measuring and scoring, as ``responder`` events that
carry their ``source`` and ``quote``, so the report can show them as imported
and quote them.

A message that repeats a mark already made live (the same kind and value
within two minutes: the slash command and the message that echoed it) is
skipped, so nothing counts twice. Text is scrubbed of credential-shaped
strings (``redaction``) before it is stored, like everything journaled.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chaosrunner.engine.journal import JournalEvent, format_time, parse_time
from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import UnknownRun, UsageError
from chaosrunner.gameday.chat.exports import ChatMessage, day_range, read_export
from chaosrunner.gameday.chat.recognise import recognise
from chaosrunner.gameday.marks import responder_events
from chaosrunner.gameday.responder import Mark, ResponderEvent, make_event
from chaosrunner.private_files import read_no_follow, write_private
from chaosrunner.redaction import redact_text

FILE_NAME = "chat-import.jsonl"
SOURCES = {"slack": "slack-export", "mattermost": "mattermost-export"}
IMPORTED_SOURCES = frozenset(SOURCES.values())
MAX_QUOTE = 500
"""Characters of the message kept as the mark's quote: enough to read it in a report, not a pasted log."""
SAME_AS_LIVE = timedelta(minutes=2)
MAX_STORE_BYTES = 64 * 1024 * 1024

SKIP_REASONS = (
    "outside the run",
    "from bots",
    "system messages",
    "no mark recognised",
    "already marked live",
)


@dataclass
class ImportOutcome:
    """What an import found: the marks (as stored), the window, and what was left out and why."""

    export_format: str
    channel: str
    window: tuple[datetime, datetime]
    marks: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    messages: int = 0

    def counts(self) -> Counter[str]:
        return Counter(str(mark["event"]) for mark in self.marks)


def run_window(events: list[JournalEvent], run_id: str) -> tuple[datetime, datetime]:
    """From run_started to run_finished; a run still going (or cut short) has no window to import into."""
    started = next((event for event in events if event.type == "run_started"), None)
    if started is None:
        raise UnknownRun(f"run {run_id!r} has no run_started event: its journal is damaged")
    finished = next((event for event in reversed(events) if event.type == "run_finished"), None)
    if finished is None:
        raise UsageError(
            f"run {run_id} has not finished (no run_finished in its journal): import its chat once it "
            "has, or after `chaosrunner recover` for a run that died"
        )
    return started.time, finished.time


def plan_import(
    run: RunDir, export: Path, channel: str, export_format: str | None = None, *, now: datetime | None = None
) -> ImportOutcome:
    """Read the export and decide the marks; writes nothing."""
    events = run.events()
    start, end = run_window(events, run.run_id)
    read = read_export(export, channel, export_format, days=day_range(start, end))
    outcome = ImportOutcome(read.format, read.channel, (start, end))
    outcome.skipped["system messages"] = read.system_skipped
    live = [mark for mark in responder_events(events) if mark.source not in IMPORTED_SOURCES]
    current = now or datetime.now(UTC)
    for message in read.messages:
        outcome.messages += 1
        if not start <= message.at <= end:
            outcome.skipped["outside the run"] += 1
            continue
        if message.bot:
            outcome.skipped["from bots"] += 1
            continue
        found = recognise(message)
        if found is None:
            outcome.skipped["no mark recognised"] += 1
            continue
        event = make_event(  # the one validation every mark goes through
            found.mark.value,
            found.value or None,
            by=redact_text(message.author),
            at=message.at,
            via=found.via.value if found.via else None,
            run_started=start,
            now=current,
            source=SOURCES[read.format],
        )
        if _made_live(event, live):
            outcome.skipped["already marked live"] += 1
            continue
        outcome.marks.append(_stored(event, message, read.channel))
    return outcome


def _made_live(event: ResponderEvent, live: list[ResponderEvent]) -> bool:
    return any(
        mark.mark is event.mark
        and mark.value.casefold() == event.value.casefold()
        and abs(mark.at - event.at) <= SAME_AS_LIVE
        for mark in live
    )


def _stored(event: ResponderEvent, message: ChatMessage, channel: str) -> dict[str, Any]:
    quote = " ".join(message.text.split())
    if len(quote) > MAX_QUOTE:
        quote = quote[: MAX_QUOTE - 3] + "..."
    fields = event.as_fields()
    fields["value"] = redact_text(event.value)
    fields["quote"] = redact_text(quote)
    fields["channel"] = channel
    return fields


def import_chat(
    run: RunDir | str,
    export: Path,
    channel: str,
    export_format: str | None = None,
    *,
    now: datetime | None = None,
) -> ImportOutcome:
    """Read, recognise and store: the run's imported marks are replaced by this export's."""
    target = run if isinstance(run, RunDir) else RunDir.find(run)
    outcome = plan_import(target, export, channel, export_format, now=now)
    save(target, outcome.marks)
    return outcome


def store_path(run: RunDir) -> Path:
    return run.path / FILE_NAME


def save(run: RunDir, marks: list[dict[str, Any]]) -> None:
    lines = "".join(json.dumps(mark, ensure_ascii=False, sort_keys=True) + "\n" for mark in marks)
    write_private(store_path(run), lines)


def load(run: RunDir) -> list[JournalEvent]:
    """The run's imported marks as ``responder`` events (``time`` = when the message was written)."""
    path = store_path(run)
    try:
        data = read_no_follow(path, limit=MAX_STORE_BYTES)
    except FileNotFoundError:
        return []
    except OSError as error:
        raise UsageError(f"{path}: cannot read the imported chat marks: {error.strerror}") from None
    found = []
    for number, line in enumerate(data.decode(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
            if not isinstance(fields, dict):
                raise ValueError("not an object")
            Mark(fields["event"])
            at = parse_time(fields["at"])
        except (ValueError, KeyError, TypeError) as error:
            raise UsageError(
                f"{path}:{number}: not an imported mark ({error}); import the chat again to rewrite it"
            ) from None
        found.append(JournalEvent(type="responder", time=format_time(at), **fields))
    return found


def with_imported(events: list[JournalEvent], imported: list[JournalEvent]) -> list[JournalEvent]:
    """The journal with the imported marks inserted where they happened (after run_started, before
    run_finished: they lie inside the window), the journal's own order untouched."""
    if not imported:
        return events
    started = events[0].time if events else None
    pending = sorted(imported, key=lambda event: event.time)
    merged: list[JournalEvent] = []
    for event in events:
        if event.type != "run_started":
            while pending and (pending[0].time < event.time or event.type == "run_finished"):
                merged.append(_with_offset(pending.pop(0), started))
        merged.append(event)
    merged.extend(_with_offset(event, started) for event in pending)  # a journal cut short: at its end
    return merged


def _with_offset(event: JournalEvent, started: datetime | None) -> JournalEvent:
    offset = round((event.time - started).total_seconds(), 6) if started else 0.0
    return JournalEvent(event, offset=offset)
