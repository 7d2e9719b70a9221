"""The run journal: one append-only JSON-lines file per run, the single source of truth.

Everything that matters about a run is written here *before* it is acted on
or shown: the console, ``chaosrunner recover``, the scorer and the report all
read this file, and nothing important lives only in memory. Each event is one
line, written with a single ``write`` under an exclusive ``flock`` (so
``chaosrunner mark`` from another terminal can append safely), flushed and
``fsync``'d before ``append`` returns. A ``kill -9`` can at worst leave a
partial last line, which readers skip.

Schema (``version`` 1). Every line is an object with

``type``
    the event type (below);
``time``
    UTC wall-clock time, ISO 8601 with microseconds and ``Z``;
``offset``
    seconds since the run started, from the system-wide monotonic clock (so
    other processes on the machine compute it the same way);

plus the type's own fields:

=====================  =======================================================
run_started            run_id, version, scenario_title, scenario_file, scenario
                       (the validated document), mode, pid, pid_start_ticks,
                       host, monotonic_start
abort_condition_source name, origin: the library file a ``use:`` condition came
                       from, then ``; shadows FILE`` for each definition it hides
phase                  phase: planning | preflight | awaiting_go | injecting |
                       reverting | verifying | finished (awaiting_go: a gameday
                       whose run sheet has go_no_go waits for the decision)
check                  name, ok, detail (preflight and verification checks)
fault_planned          fault, kind, targets [{id, name}], summary, revert_record
fault_injecting        fault, kind, revert_record - written BEFORE the side effect
fault_injected         fault, kind, revert_record (complete), in_effect_since
                       (only when the failure began before inject returned)
fault_inject_failed    fault, kind, error
fault_reverting        fault, kind
fault_reverted         fault, kind, attempts, by ("runner" or "recover")
fault_revert_failed    fault, kind, error, attempts
fault_still_in_flight  fault, kind, waited, revert_record - an inject that outlived
                       the reverts; recover reverts it like a failed revert
fault_outcome          fault, kind, targets [per-target aftermath, kind-specific:
                       for docker kill/stop/restart came_back, came_back_at,
                       came_back_by, seconds_down; for node-drain node, evicted,
                       held_back, longest_hold_seconds, refused, schedulable;
                       each with a one-line summary], error (when unreadable)
condition              name, state (ok | pending | firing | no_data), value,
                       threshold, comparator - written when the state changes
prometheus             state (unreachable | recovered), error
abort                  cause (condition | kill_switch | operator | signal |
                       max_duration | prometheus_unreachable | fault_error |
                       no_go | go_timeout), detail
faults_ending          reason (faults are about to be reverted)
signal_ignored         signal, detail (a signal that arrived while reverting)
run_finished           status (completed | aborted | deviated | failed |
                       refused), exit_code, detail
toxic_switched         fault, toxic, enabled, proxies [addresses], by - from
                       ``chaosrunner toxic`` in any terminal
responder              event (detected | mitigated | ... | note), at, by,
                       value, via, role (facilitator | incident_commander |
                       responder; only when given) - from ``chaosrunner mark``,
                       the endpoint, the console or the demo's responder;
                       ``at`` may precede ``time``
checklist              item (index into the run sheet's prerequisites), text,
                       checked, by - the facilitator ticking a prerequisite
go_decision            decision (go | no_go), by, role, reason, unchecked
                       (prerequisites not ticked) - one per run, written by
                       ``chaosrunner go`` or the console while awaiting_go
inject_fired           name, text, audience (responders | everyone),
                       at_offset_s (seconds after t0 it was due) - gameday
inject_skipped         name, reason (the ``unless`` mark the team had made)
responder_endpoint     url (gameday: where the team may POST marks), console_url (the
                       facilitator console; no token: links are printed, never journaled)
alert                  source, name, state, since, layer (gameday: alerts the
                       watcher saw change)
alert_rules            rules [name, group, file, expr, for_seconds, labels,
                       layer], source (prometheus | unavailable), error - every
                       alerting rule Prometheus had loaded at preflight
mitigation_unconfirmed detail (a ``mitigated`` mark the SLI does not confirm)
escalation_due         detail, severity
webhook                event, url, ok, error
=====================  =======================================================

Unknown event types are kept (as ``JournalEvent``) so older readers survive
newer journals. Every string in an event, except the ``scenario`` copy and
revert records, is scrubbed of credential-shaped text (``chaosrunner.redaction``)
before it is written or shown.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaosrunner.redaction import redact_fields

JOURNAL_VERSION = 1
FILE_NAME = "journal.jsonl"
VERBATIM_FIELDS = ("scenario", "revert_record")


def format_time(moment: datetime) -> str:
    """A journal timestamp: ISO 8601 with microseconds, ``Z`` for UTC."""
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def utc_now() -> str:
    return format_time(datetime.now(UTC))


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def in_effect_since(event: dict[str, Any]) -> datetime:
    """When a ``fault_injected`` event's failure took effect.

    Usually the event's own time; a kind whose inject goes on after the
    failure starts (pod-kill waits for the recovery it measures) says when in
    ``in_effect_since``, so t0 is not late by that wait.
    """
    return parse_time(event.get("in_effect_since") or event["time"])


def outcome_summary(event: dict[str, Any]) -> str:
    """One line for a ``fault_outcome`` event: each target's own summary."""
    if event.get("error"):
        return f"could not be read ({event['error']})"
    return "; ".join(str(target.get("summary", target)) for target in event.get("targets", []))


class JournalEvent(dict[str, Any]):
    """One journal line. A dict (it is JSON) with typed accessors for the envelope."""

    @property
    def type(self) -> str:
        return str(self["type"])

    @property
    def time(self) -> datetime:
        return parse_time(self["time"])

    @property
    def offset(self) -> float:
        return float(self["offset"])


class Journal:
    """Appends events to one run's journal file; safe across threads and processes."""

    def __init__(self, path: Path, monotonic_start: float | None = None) -> None:
        self.path = path
        self.monotonic_start = monotonic_start if monotonic_start is not None else time.monotonic()

    @classmethod
    def open_existing(cls, path: Path) -> Journal:
        """A journal to append to from another process (``mark``, ``recover``)."""
        first = next(read_events(path), None)
        start = float(first["monotonic_start"]) if first and first.type == "run_started" else None
        return cls(path, start)

    def append(self, event_type: str, **fields: Any) -> JournalEvent:
        """Write one event durably (fsync'd) and return it; raises OSError if it cannot."""
        event = self.make_event(event_type, **fields)
        self.write(event)
        return event

    def make_event(self, event_type: str, **fields: Any) -> JournalEvent:
        # Text from libraries and people is scrubbed of credentials before anyone sees it;
        # the scenario copy and revert records stay exact (debrief and recover need them).
        return JournalEvent(
            type=event_type,
            time=utc_now(),
            offset=round(time.monotonic() - self.monotonic_start, 6),
            **redact_fields(fields, keep=VERBATIM_FIELDS),
        )

    def write(self, event: JournalEvent) -> None:
        line = (json.dumps(event, default=str, separators=(",", ":")) + "\n").encode()
        # 0600, and never through a symlink planted where the journal should be.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the flock


def read_events(path: Path) -> Iterator[JournalEvent]:
    """Every complete event in order; a torn last line (kill -9 mid-write) is skipped."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                return
            try:
                yield JournalEvent(json.loads(raw))
            except (ValueError, UnicodeDecodeError):
                continue


class JournalTail:
    """The events appended to a journal since the last read, by any process.

    A live watcher reads only what is new instead of the whole file on every
    tick; a torn last line is left for the next read, when it is complete.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def read_new(self) -> list[JournalEvent]:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return []
        events = []
        with handle:
            handle.seek(self._offset)
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break
                self._offset += len(raw)
                try:
                    events.append(JournalEvent(json.loads(raw)))
                except (ValueError, UnicodeDecodeError):
                    continue
        return events
