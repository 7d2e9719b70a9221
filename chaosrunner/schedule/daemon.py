"""The schedule daemon: unattended chaos for a staging host.

One loop, one run at a time per daemon, and for each slot that comes due it
decides - and writes down in the history - exactly one of:

- ``run``: inside a window, not a blackout date, under max_runs_per_day, the
  target's lock free: the scenario runs in automated mode (its faults keep
  their durations), its report is written, its outcome pushed for alerting
  and announced to the webhooks;
- ``skipped``: one of those conditions said no (the reason is kept);
- ``missed``: the slot passed while the daemon was down. Missed slots are
  logged and dropped, never run in a burst when the daemon comes back.

Time comes from a ``Clock`` so tests can drive weeks of schedule through a
fake one; the run itself comes from an ``Executor`` so the same daemon runs
real scenarios in production and in the end-to-end test. On SIGTERM the
current run reverts (the runner's own signal handling) and the daemon exits.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from chaosrunner.scenario.models import Scenario
from chaosrunner.schedule.history import History, Record
from chaosrunner.schedule.loader import LoadedSchedule
from chaosrunner.schedule.locks import target_lock
from chaosrunner.schedule.models import ResolvedEntry, WebhookEvent
from chaosrunner.schedule.notify import notify
from chaosrunner.schedule.timing import Occurrence, jitter_for, refusal, slots
from chaosrunner.signals import set_event_handler

LATE_TOLERANCE = timedelta(minutes=1)
"""A slot found later than this after its start is missed, not run."""


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float, stop: threading.Event) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(max(0.0, seconds))


@dataclass(frozen=True)
class RunOutcome:
    run_id: str | None
    status: str
    exit_code: int
    detail: str
    signal: str | None = None
    report: str | None = None


Executor = Callable[[ResolvedEntry, Scenario, Path], RunOutcome]
Log = Callable[[str], None]


class ScheduleDaemon:
    def __init__(
        self,
        loaded: LoadedSchedule,
        execute: Executor,
        *,
        clock: Clock | None = None,
        history: History | None = None,
        log: Log = lambda line: None,
        publish: Callable[[ResolvedEntry, RunOutcome, dict[str, int]], None] | None = None,
        webhook_timeout: float = 5.0,
    ) -> None:
        self.loaded = loaded
        self.execute = execute
        self.clock = clock or SystemClock()
        self.history = history or History(loaded.name)
        self.log = log
        self.publish = publish
        self.webhook_timeout = webhook_timeout
        self.stop = threading.Event()
        self.cursor: dict[str, datetime] = {}

    # -- start-up: account for the slots that passed while we were down -------------------------

    def start(self) -> None:
        now = self.clock.now()
        for entry in self.loaded.entries:
            last = self.history.last_slot(entry.name)
            if last is None:
                self.cursor[entry.name] = now  # a new schedule starts from now, without a backlog
                continue
            self.cursor[entry.name] = last
            for slot in slots(entry, last, now - LATE_TOLERANCE):
                self._record(entry, slot, "missed", detail="the daemon was not running")
                self.cursor[entry.name] = slot

    # -- the loop ---------------------------------------------------------------------------------

    def next_occurrence(self) -> tuple[ResolvedEntry, Occurrence] | None:
        best: tuple[ResolvedEntry, Occurrence] | None = None
        for entry in self.loaded.entries:
            slot = next(
                slots(entry, self.cursor[entry.name], self.cursor[entry.name] + timedelta(days=366)), None
            )
            if slot is None:
                continue
            occurrence = Occurrence(slot + jitter_for(entry, slot), slot, entry.name)
            if best is None or occurrence < best[1]:
                best = (entry, occurrence)
        return best

    def run_forever(self) -> None:
        self.start()
        while not self.stop.is_set():
            if not self.step():
                return

    def step(self) -> bool:
        """Wait for the next occurrence and handle it; False when the daemon must stop."""
        upcoming = self.next_occurrence()
        if upcoming is None:
            self.log("nothing left to schedule within a year")
            return False
        entry, occurrence = upcoming
        wait = (occurrence.start - self.clock.now()).total_seconds()
        if wait > 0:
            self.clock.sleep(min(wait, 60.0), self.stop)
            return not self.stop.is_set()
        self.cursor[entry.name] = occurrence.slot
        if -wait > LATE_TOLERANCE.total_seconds():
            self._record(entry, occurrence.slot, "missed", detail=f"found {-wait:.0f}s late")
            return True
        outcome = self._handle(entry, occurrence)
        return outcome is None or outcome.signal is None

    def _handle(self, entry: ResolvedEntry, occurrence: Occurrence) -> RunOutcome | None:
        why_not = refusal(entry, occurrence.start) or self._over_daily_limit(entry, occurrence)
        if why_not:
            self._record(entry, occurrence.slot, "skipped", detail=why_not)
            return None
        with target_lock(entry.lock) as held:
            if not held:
                self._record(
                    entry,
                    occurrence.slot,
                    "skipped",
                    detail=f"target lock {entry.lock!r} is held by another run",
                )
                return None
            scenario = self.loaded.scenarios[entry.name]
            facts = {"schedule": self.loaded.name, "entry": entry.name, "scenario": scenario.metadata.title}
            self._notify(entry, WebhookEvent.START, facts)
            slot = f"{occurrence.slot:%Y-%m-%d %H:%M} UTC"
            self.log(f"{entry.name}: starting {scenario.metadata.title!r} (slot {slot})")
            outcome = self.execute(entry, scenario, self.loaded.scenario_paths[entry.name])
        self._record(entry, occurrence.slot, "run", run=outcome)
        self.log(f"{entry.name}: {outcome.status} (exit {outcome.exit_code}) {outcome.detail}")
        final = {
            **facts,
            "run_id": outcome.run_id,
            "status": outcome.status,
            "exit_code": outcome.exit_code,
            "detail": outcome.detail,
            "report": outcome.report,
        }
        if outcome.status not in ("completed",):
            self._notify(entry, WebhookEvent.ABORT, final)
        self._notify(entry, WebhookEvent.FINISH, final)
        if self.publish is not None:
            try:
                self.publish(entry, outcome, self.counts(entry.name))
            except Exception as error:  # monitoring is best effort; the history has it
                self.log(f"{entry.name}: publishing the outcome failed: {type(error).__name__}")
        return outcome

    def _over_daily_limit(self, entry: ResolvedEntry, occurrence: Occurrence) -> str | None:
        if entry.max_runs_per_day is None:
            return None
        zone = ZoneInfo(entry.timezone)
        day = occurrence.start.astimezone(zone).date()
        runs = [
            record
            for record in self.history.records()
            if record.entry == entry.name
            and record.outcome == "run"
            and record.slot_time.astimezone(zone).date() == day
        ]
        if len(runs) >= entry.max_runs_per_day:
            return f"max_runs_per_day ({entry.max_runs_per_day}) reached for {day}"
        return None

    def counts(self, entry: str) -> dict[str, int]:
        totals: dict[str, int] = {}
        for record in self.history.records():
            if record.entry == entry and record.outcome == "run" and record.status:
                totals[record.status] = totals.get(record.status, 0) + 1
        return totals

    def _record(
        self,
        entry: ResolvedEntry,
        slot: datetime,
        outcome: str,
        *,
        detail: str = "",
        run: RunOutcome | None = None,
    ) -> None:
        self.history.append(
            Record(
                entry=entry.name,
                slot=slot.isoformat(),
                outcome=outcome,
                at=self.clock.now().isoformat(),
                run_id=run.run_id if run else None,
                status=run.status if run else None,
                exit_code=run.exit_code if run else None,
                detail=detail or (run.detail if run else ""),
            )
        )
        if run is None:
            self.log(f"{entry.name}: {outcome} the {slot:%Y-%m-%d %H:%M} UTC slot: {detail}")

    def _notify(self, entry: ResolvedEntry, event: WebhookEvent, facts: Mapping[str, Any]) -> None:
        """Best effort, bounded by ``webhook_timeout``: no notification may stop the loop."""
        try:
            errors = notify(entry.webhooks, event, facts, timeout=self.webhook_timeout)
        except Exception as unexpected:  # notify reports failures; this guards its own bugs
            errors = [f"{type(unexpected).__name__} (not sent)"]
        for failure in errors:
            self.log(f"{entry.name}: {event.value} webhook failed: {failure}")

    def install_signal_handlers(self) -> None:
        """Outside runs, SIGTERM/SIGINT stop the loop; during a run the runner reverts first."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, set_event_handler(self.stop))
