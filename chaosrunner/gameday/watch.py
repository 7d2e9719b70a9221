"""The gameday watcher: the team's side of a live run.

It runs beside the runner once the first fault is in place (t0) and, every
check interval:

- records the detection alerts as Prometheus and Alertmanager report them
  (``alert`` events with ``activeAt``/``startsAt``: evidence for TTD that does
  not depend on when we happened to poll);
- ends the faults when the team has mitigated: the scenario's SLI back within
  its objective for the confirmation window after having left it, or a
  ``mitigated`` mark (confirmed by the SLI when one is configured);
- announces once that escalation is due when the target time to mitigate has
  passed unmitigated: on the console, in the journal, and to a webhook;
- gives the room the run sheet's timed injects (gameday mode): each once, as
  ``inject_fired`` when its time after t0 comes, or ``inject_skipped`` when the
  team already made its ``unless`` mark (gameday.run_sheet.due_injects).

It decides nothing about the experiment's safety - the abort monitor does -
and it measures nothing: TTD and TTM are computed afterwards from Prometheus
data (gameday.measure), so their error is the scrape interval, not our poll.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from chaosrunner.engine.conditions import all_hold
from chaosrunner.engine.journal import JournalTail, in_effect_since
from chaosrunner.engine.runner import Runner
from chaosrunner.errors import ChaosrunnerError
from chaosrunner.gameday.responder import Mark, ResponderEvent
from chaosrunner.gameday.run_sheet import due_injects
from chaosrunner.observe.metrics import MetricsSource
from chaosrunner.scenario.models import Mode, PromCheck


class GamedayWatcher:
    def __init__(
        self,
        runner: Runner,
        metrics: MetricsSource | None,
        *,
        alertmanager: Any | None = None,
        escalation_webhook: str | None = None,
    ) -> None:
        self.runner = runner
        self.scenario = runner.scenario
        self.metrics = metrics
        self.alertmanager = alertmanager
        self.escalation_webhook = escalation_webhook
        self.interval = self.scenario.gameday.check_interval.total_seconds()
        self.t0: float | None = None
        self.t0_time: datetime | None = None  # the same moment on the wall clock (marks carry wall time)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gameday-watcher", daemon=True)
        self._seen_alerts: dict[tuple[str, str, str], str] = {}
        self._sli_breached = False
        self._sli_met_since: float | None = None
        self._escalation_announced = False
        self._unconfirmed_announced = False
        self._journal: JournalTail | None = None
        self._marks: list[ResponderEvent] = []
        self._injects_handled: set[str] = set()
        self.errors: list[str] = []

    # A runner listener: starts the clock at t0 and stops with the run.
    def __call__(self, event: dict[str, Any]) -> None:
        if event["type"] == "fault_injected" and self.t0 is None:
            lag = max(0.0, (datetime.now(UTC) - in_effect_since(event)).total_seconds())
            self.t0 = time.monotonic() - lag
            self.t0_time = datetime.now(UTC) - timedelta(seconds=lag)
            self._thread.start()
        elif event["type"] in ("run_finished", "faults_ending", "abort"):
            self._stop.set()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception as error:  # the watcher is advisory: the abort monitor guards safety
                self.errors.append(f"{type(error).__name__}: {error}")

    def tick(self) -> None:
        self._read_journal()
        self._record_alerts()
        if self.runner.mode is Mode.GAMEDAY:
            self._check_injects()
            self._check_mitigation()
        self._check_escalation()

    def _read_journal(self) -> None:
        """Marks and toxic switches come from other processes straight into the journal: show them live."""
        if self._journal is None:
            assert self.runner.run_dir is not None
            self._journal = JournalTail(self.runner.run_dir.journal_path)
        new_marks = False
        for event in self._journal.read_new():
            if event.type in ("responder", "toxic_switched"):
                self.runner.notify(event)
            if event.type == "responder":
                self._marks.append(ResponderEvent.from_journal(dict(event)))
                new_marks = True
        if new_marks:  # late entries (--at) may predate earlier marks
            self._marks.sort(key=lambda mark: mark.at)

    # -- the run sheet's injects ----------------------------------------------------------

    def _check_injects(self) -> None:
        injects = self.scenario.run_sheet.injects
        if not injects or self.t0 is None or self.t0_time is None:
            return
        elapsed = time.monotonic() - self.t0
        for inject, fire, reason in due_injects(
            injects, elapsed, self._marks, self._injects_handled, t0=self.t0_time
        ):
            self._injects_handled.add(inject.name)
            if fire:
                self.runner.emit(
                    "inject_fired",
                    name=inject.name,
                    text=inject.text,
                    audience=inject.audience,
                    at_offset_s=inject.at.total_seconds(),
                )
            else:
                self.runner.emit("inject_skipped", name=inject.name, reason=reason)

    # -- detection evidence ---------------------------------------------------------------

    def _record_alerts(self) -> None:
        wanted = set(self.scenario.detection.all_alerts())
        if not wanted:
            return
        found: list[tuple[str, str, str, str]] = []  # (source, name, state, since)
        if self.metrics is not None:
            try:
                for alert in self.metrics.alerts():
                    if alert.name in wanted:
                        found.append(("prometheus", alert.name, alert.state, alert.active_at.isoformat()))
            except ChaosrunnerError as error:
                self.errors.append(str(error))
        if self.alertmanager is not None:
            try:
                for alert in self.alertmanager.alerts():
                    if alert.name in wanted:
                        found.append(("alertmanager", alert.name, alert.state, alert.active_at.isoformat()))
            except ChaosrunnerError as error:
                self.errors.append(str(error))
        for source, name, state, since in found:
            key = (source, name, since)
            if self._seen_alerts.get(key) == state:
                continue
            self._seen_alerts[key] = state
            self.runner.emit(
                "alert",
                source=source,
                name=name,
                state=state,
                since=since,
                layer=self.scenario.detection.layer_of(name),
            )

    # -- mitigation -----------------------------------------------------------------------

    def _sli_met(self) -> bool | None:
        mitigation = self.scenario.mitigation
        if mitigation is None or self.metrics is None:
            return None
        check = PromCheck(
            name="sli", expr=mitigation.sli, comparator=mitigation.comparator, threshold=mitigation.objective
        )
        try:
            return all_hold(check, self.metrics.instant(mitigation.sli, timeout=1.0))
        except ChaosrunnerError as error:
            self.errors.append(str(error))
            return None

    def _check_mitigation(self) -> None:
        now = time.monotonic()
        met = self._sli_met()
        mitigation = self.scenario.mitigation
        if met is False:
            self._sli_breached = True
            self._sli_met_since = None
        elif met and self._sli_breached:
            self._sli_met_since = self._sli_met_since or now
            assert mitigation is not None
            if now - self._sli_met_since >= mitigation.confirm_for.total_seconds():
                self.runner.end_faults(
                    f"SLI back within its objective ({mitigation.comparator.value} {mitigation.objective:g}) "
                    f"for {mitigation.confirm_for.total_seconds():g}s"
                )
                return
        mark = next((mark for mark in self._marks if mark.mark is Mark.MITIGATED), None)
        if mark is None:
            return
        if mitigation is None:
            self.runner.end_faults(f"{mark.by} marked the incident mitigated")
        elif met:
            self.runner.end_faults(f"{mark.by} marked mitigated, confirmed by the SLI")
        elif not self._unconfirmed_announced:
            self._unconfirmed_announced = True
            self.runner.emit(
                "mitigation_unconfirmed",
                detail=f"{mark.by} marked mitigated, but the SLI is still outside its objective",
            )

    # -- escalation -----------------------------------------------------------------------

    def _check_escalation(self) -> None:
        if self._escalation_announced or self.t0 is None:
            return
        target = self.scenario.gameday.ttm_target.total_seconds()
        if time.monotonic() - self.t0 < target:
            return
        marks = self._marks
        if any(mark.mark in (Mark.MITIGATED, Mark.ESCALATED) for mark in marks):
            return
        self._escalation_announced = True
        severity = next((mark.value for mark in reversed(marks) if mark.mark is Mark.SEVERITY), None)
        detail = (
            f"not mitigated {target:g}s after the fault began (target time to mitigate"
            + (f" for {severity}" if severity else "")
            + "): escalate one level"
        )
        self.runner.emit("escalation_due", detail=detail, severity=severity)
        if self.escalation_webhook:
            self._post_webhook(detail)

    def _post_webhook(self, detail: str) -> None:
        assert self.runner.run_dir is not None
        payload = {
            "text": f"chaosrunner gameday '{self.scenario.metadata.title}': escalation due - {detail}",
            "run": self.runner.run_dir.run_id,
            "scenario": self.scenario.metadata.title,
            "event": "escalation_due",
            "at": datetime.now(UTC).isoformat(),
        }
        request = urllib.request.Request(
            self.escalation_webhook or "",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=5).close()
            self.runner.emit("webhook", event="escalation_due", url=self.escalation_webhook, ok=True)
        except OSError as error:
            self.runner.emit(
                "webhook", event="escalation_due", url=self.escalation_webhook, ok=False, error=str(error)
            )
