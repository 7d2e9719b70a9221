"""The runner: the state machine of one run, and the only place that decides what happens next.

    plan -> preflight -> [awaiting go] -> inject/observe -> revert -> verify -> finished

Design choices that matter for safety:

- Everything goes through ``emit``, which journals (fsync'd) first and only
  then tells listeners (console, Pushgateway). A crash after any step leaves
  a journal that ``chaosrunner recover`` can act on.
- The abort monitor runs in its own thread from preflight to the end of
  reverts; an abort sets ``_stop`` and the main loop, which only ever waits on
  that event, starts reverting at once - even while an inject is still
  running in its own thread (see engine.injection).
- Reverts happen in one ``finally`` that every exit path goes through:
  completion, abort, Ctrl-C, SIGTERM, SIGHUP, an exception. Signals only set
  the stop event (no KeyboardInterrupt in the middle of a revert), and a second
  Ctrl-C is reported, not obeyed.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Any

from chaosrunner.durations import format_duration
from chaosrunner.engine import killswitch
from chaosrunner.engine.alert_rules import alert_rules_fields
from chaosrunner.engine.conditions import ConditionStatus, all_hold, representative_value
from chaosrunner.engine.go_gate import wait_for_go
from chaosrunner.engine.http_checks import probe as probe_http
from chaosrunner.engine.injection import ActiveFault
from chaosrunner.engine.journal import JOURNAL_VERSION, Journal, JournalEvent
from chaosrunner.engine.monitor import AbortMonitor
from chaosrunner.engine.plan import plan_offline, unreachable_grace
from chaosrunner.engine.rundir import RunDir
from chaosrunner.engine.targets import fault_request
from chaosrunner.errors import (
    ChaosrunnerError,
    JournalUnwritable,
    PlanRefused,
    ServiceUnreachable,
    SteadyStateNotMet,
)
from chaosrunner.faults.holder import process_start_ticks
from chaosrunner.observe.metrics import MetricsSource
from chaosrunner.redaction import redact_text
from chaosrunner.scenario.models import Mode, Scenario

Listener = Callable[[JournalEvent], None]
WRITE_AHEAD_EVENTS = frozenset({"run_started", "fault_injecting"})
"""Events that must be durable before the side effect they announce."""
INJECT_WAIT_AFTER_ABORT = 30.0
"""How long reverting waits for injects still in flight (one deadline for all); one still
running after that is journaled as ``fault_still_in_flight`` and fails the run."""


def still_injected_detail(left: list[str]) -> str:
    """The run's last word when faults may still be in place: loud, named, and what to do."""
    return f"STILL INJECTED: {', '.join(left)}; run `chaosrunner recover`"


class RunStatus(StrEnum):
    COMPLETED = "completed"  # the hypothesis held
    ABORTED = "aborted"
    DEVIATED = "deviated"  # ran to the end, but the system did not come back
    FAILED = "failed"  # a revert failed: faults may be left in place
    REFUSED = "refused"  # nothing was touched


EXIT_CODES = {
    RunStatus.COMPLETED: 0,
    RunStatus.ABORTED: 1,
    RunStatus.DEVIATED: 1,
    RunStatus.FAILED: 1,
    RunStatus.REFUSED: 2,
}


@dataclass
class RunOptions:
    allow_production: bool = False
    mode: Mode | None = None
    handle_signals: bool = True


@dataclass
class RunResult:
    run_id: str
    status: RunStatus
    detail: str
    exit_code: int
    journal_path: Path
    signal: str | None = None  # the signal that stopped the run, so a daemon knows to stop too


@dataclass
class _AbortState:
    cause: str | None = None
    detail: str = ""
    at: float | None = None


@dataclass
class RunView:
    """What a console shows at a glance; updated by the runner, read by listeners."""

    run_id: str
    title: str
    phase: str = "starting"
    started: float = field(default_factory=time.monotonic)
    conditions: dict[str, ConditionStatus] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)


class Runner:
    def __init__(
        self,
        scenario: Scenario,
        source: str,
        metrics: MetricsSource | None,
        options: RunOptions | None = None,
        listeners: list[Listener] | None = None,
    ) -> None:
        self.scenario = scenario
        self.source = source
        self.metrics = metrics
        self.options = options or RunOptions()
        self.listeners = list(listeners or [])
        self.mode = self.options.mode or scenario.gameday.mode
        self._stop = threading.Event()
        self._abort = _AbortState()
        self._abort_lock = threading.Lock()
        self._signals_seen = 0
        self._signal_name: str | None = None
        self.run_dir: RunDir | None = None
        self.journal: Journal | None = None
        self.view: RunView | None = None
        self.faults: list[ActiveFault] = []
        self.monitor: AbortMonitor | None = None
        self.journal_failures: list[str] = []
        self._mitigation: str | None = None

    # -- events ---------------------------------------------------------------------------

    def emit(self, event_type: str, **fields: Any) -> JournalEvent:
        """Journal an event, then show it. A journal that cannot be written stops new
        injections (the write-ahead rule) but never a revert: a full disk must not
        leave a fault in place."""
        assert self.journal is not None
        event = self.journal.make_event(event_type, **fields)
        try:
            self.journal.write(event)
        except OSError as error:
            self.journal_failures.append(f"{event_type}: {error}")
            if event_type in WRITE_AHEAD_EVENTS:
                raise JournalUnwritable(f"cannot journal {event_type} before acting: {error}") from error
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # a broken display must never stop a revert
                continue
        return event

    def notify(self, event: JournalEvent) -> None:
        """Show listeners an event another process journaled (a `chaosrunner mark`)."""
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                continue

    def request_abort(self, cause: str, detail: str) -> None:
        with self._abort_lock:
            if self._abort.cause is not None:
                return
            self._abort = _AbortState(cause, detail, time.monotonic())
        self.emit("abort", cause=cause, detail=detail)
        self._stop.set()

    # -- the run --------------------------------------------------------------------------

    def run(self) -> RunResult:
        killswitch.refuse_if_engaged()
        offline = plan_offline(
            self.scenario, self.source, allow_production=self.options.allow_production, mode=self.mode
        )
        refusals = [check.detail for check in offline.checks if check.status.value == "fail"]
        if refusals:
            raise PlanRefused("; ".join(refusals))

        self.run_dir = RunDir.create()
        self.run_dir.hold_lock()
        self.journal = Journal(self.run_dir.journal_path)
        self.view = RunView(self.run_dir.run_id, self.scenario.metadata.title)
        self.emit(
            "run_started",
            run_id=self.run_dir.run_id,
            version=JOURNAL_VERSION,
            scenario_title=self.scenario.metadata.title,
            scenario_file=self.source,
            scenario=self.scenario.model_dump(mode="json", by_alias=True),
            mode=self.mode.value,
            pid=os.getpid(),
            pid_start_ticks=process_start_ticks(os.getpid()),
            host=socket.gethostname(),
            monotonic_start=self.journal.monotonic_start,
        )
        for condition in self.scenario.abort_conditions:  # which library file each came from (and shadows)
            if condition.origin != "inline":
                self.emit("abort_condition_source", name=condition.name, origin=condition.origin)
        try:
            with self._signals():
                status, detail = self._run_phases()
        finally:
            self.run_dir.release_lock()
        if self.journal_failures:  # the faults are reverted, but the record is incomplete
            status = RunStatus.FAILED
            detail = f"{detail}; the journal could not be written ({self.journal_failures[0]})"
        return RunResult(
            self.run_dir.run_id,
            status,
            redact_text(detail),  # printed, logged and posted to webhooks: like the journal's copy
            EXIT_CODES[status],
            self.run_dir.journal_path,
            self._signal_name,
        )

    def _phase(self, phase: str) -> None:
        assert self.view is not None
        self.view.phase = phase
        self.emit("phase", phase=phase)

    def _run_phases(self) -> tuple[RunStatus, str]:
        status, detail = RunStatus.COMPLETED, "the hypothesis held"
        try:
            self._phase("planning")
            self._plan_faults()
            self._phase("preflight")
            self._preflight()
            self._start_monitor()
            if self._await_go():
                self._phase("injecting")
                self._inject_and_observe()
        except ChaosrunnerError as error:
            touched = any(fault.state.value != "planned" for fault in self.faults)
            if touched:  # an error after injecting began: it is an abort, and reverts run
                self.request_abort("error", str(error))
            left = self._finish_reverts()
            status = RunStatus.ABORTED if touched else RunStatus.REFUSED
            self._finish_after_error(status, left, error)
            raise
        except BaseException as error:  # any other exit path still reverts everything
            self.request_abort("error", f"{type(error).__name__}: {error}")
            left = self._finish_reverts()
            self._finish_after_error(RunStatus.ABORTED, left, error)
            raise
        left = self._finish_reverts()
        if left:
            status, detail = RunStatus.FAILED, still_injected_detail(left)
        elif self._abort.cause is not None:
            status, detail = RunStatus.ABORTED, f"aborted ({self._abort.cause}): {self._abort.detail}"
        elif self._mitigation is not None:
            detail = f"the team mitigated: {self._mitigation}"
        if status is not RunStatus.FAILED and self._abort.cause != "prometheus_unreachable":
            self._phase("verifying")
            recovered, why = self._verify_steady_state()
            if not recovered and status is RunStatus.COMPLETED:
                status, detail = RunStatus.DEVIATED, why
        self._finish(status, detail)
        return status, detail

    def _finish_after_error(self, status: RunStatus, left: list[str], error: BaseException) -> None:
        if left:
            self._finish(RunStatus.FAILED, f"{error}; {still_injected_detail(left)}", error)
        else:
            self._finish(status, str(error), error)

    def _finish(self, status: RunStatus, detail: str, error: BaseException | None = None) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        exit_code = error.exit_code if isinstance(error, ChaosrunnerError) else EXIT_CODES[status]
        self._phase("finished")
        self.emit("run_finished", status=status.value, exit_code=exit_code, detail=detail)

    # -- phases ---------------------------------------------------------------------------

    def _plan_faults(self) -> None:
        assert self.run_dir is not None
        for spec in self.scenario.faults:
            request = fault_request(self.scenario, spec, self.run_dir.run_id, self.mode)
            active = ActiveFault(spec, request, self.emit)
            self.faults.append(active)
            active.make_plan()

    def _query(self, expr: str) -> Any:
        assert self.metrics is not None
        return self.metrics.instant(expr, timeout=5.0)

    def _preflight(self) -> None:
        needs_prometheus = bool(
            self.scenario.abort_conditions or self.scenario.steady_state or self.scenario.mitigation
        )
        if needs_prometheus and self.metrics is None:
            raise ServiceUnreachable("this scenario needs Prometheus, but none is configured")
        # Every loaded alert rule, for detection coverage; advisory, never stops the run.
        self.emit("alert_rules", **alert_rules_fields(self.scenario, self.metrics))
        for check in self.scenario.steady_state:
            sample = self._query(check.expr)
            value, _ = representative_value(check, sample)
            ok = all_hold(check, sample)
            self.emit(
                "check",
                name=f"steady state {check.name}",
                ok=ok,
                detail=f"value {value} ({check.describe()})",
            )
            if not ok:
                raise SteadyStateNotMet(
                    f"steady state {check.name!r} does not hold before injecting "
                    f"(value {value}, wanted {check.comparator.value} {check.threshold:g}): refusing to start"
                )
        for http_check in self.scenario.http_checks:
            result = probe_http(http_check)
            self.emit("check", **result.journal_fields())
            if not result.ok:
                raise SteadyStateNotMet(
                    f"steady state {http_check.name!r} does not hold before injecting "
                    f"({result.detail()}): refusing to start"
                )
        for condition in self.scenario.abort_conditions:
            value, holding = representative_value(condition, self._query(condition.expr))
            self.emit(
                "check", name=f"abort condition {condition.name}", ok=not holding, detail=f"value {value}"
            )
            if holding:
                raise SteadyStateNotMet(
                    f"abort condition {condition.name!r} already holds before injecting "
                    f"(value {value}): refusing to start"
                )

    def _await_go(self) -> bool:
        """Gameday mode with a go/no-go run sheet: wait for the facilitator's decision.

        True to inject. Otherwise nothing was injected and the run ends aborted: no-go,
        no decision within go_timeout, or the stop event (an abort condition, the kill
        switch, `chaosrunner abort`, a signal - the abort monitor runs during the wait).
        max_duration is not spent here: it counts from the injecting phase."""
        sheet = self.scenario.run_sheet
        if self.mode is not Mode.GAMEDAY or not sheet.go_no_go:
            return True
        assert self.run_dir is not None
        self._phase("awaiting_go")
        timeout = sheet.go_timeout.total_seconds()

        def give_up() -> None:
            self.request_abort(
                "go_timeout", f"no go/no-go decision within {format_duration(timeout)}: nothing was injected"
            )

        decision = wait_for_go(
            self.run_dir.journal_path, self._stop, timeout, on_timeout=give_up, on_event=self.notify
        )
        if decision is None or self._stop.is_set():
            return False
        if decision.get("decision") != "go":
            who = decision.get("by") or "the facilitator"
            reason = decision.get("reason") or "no reason given"
            self.request_abort("no_go", f"{who} said no-go: {reason}")
            return False
        return True

    def _start_monitor(self) -> None:
        assert self.run_dir is not None
        settings = self.scenario.gameday
        run_dir = self.run_dir

        def on_condition(status: ConditionStatus) -> None:
            assert self.view is not None
            self.view.conditions[status.name] = status
            condition = next(c for c in self.scenario.abort_conditions if c.name == status.name)
            self.emit(
                "condition",
                name=status.name,
                state=status.state.value,
                value=status.value,
                threshold=condition.threshold,
                comparator=condition.comparator.value,
            )

        self.monitor = AbortMonitor(
            list(self.scenario.abort_conditions),
            self.metrics,
            interval=settings.check_interval.total_seconds(),
            unreachable_grace=unreachable_grace(self.scenario).total_seconds(),
            on_abort=self.request_abort,
            on_condition_change=on_condition,
            on_prometheus_change=self._on_prometheus_change,
            abort_requested=run_dir.abort_requested,
        )
        self.monitor.start()

    def _on_prometheus_change(self, state: str, error: str) -> None:
        self.emit("prometheus", state=state, error=error)

    def _schedule(self) -> list[tuple[float, str, ActiveFault]]:
        """(offset, action, fault) in time order: each fault starts, and in automated
        mode ends after its duration. In gameday mode faults are held until the team
        mitigates (``end_faults``), an abort fires or max_duration passes."""
        events = []
        for fault in self.faults:
            start = fault.spec.start.total_seconds()
            events.append((start, "inject", fault))
            if fault.spec.duration is not None and self.mode is Mode.AUTOMATED:
                events.append((start + fault.spec.duration.total_seconds(), "revert", fault))
        return sorted(events, key=lambda event: (event[0], event[1] == "inject"))

    def end_faults(self, reason: str) -> None:
        """Gameday mode: the team mitigated; revert every fault and finish the run.

        Called by the gameday layer (SLI back within its objective, or a confirmed
        ``mitigated`` mark); the engine only provides the mechanism."""
        with self._abort_lock:
            if self._mitigation is not None or self._abort.cause is not None:
                return
            self._mitigation = reason
        self.emit("faults_ending", reason=reason)
        self._stop.set()

    def _inject_and_observe(self) -> None:
        started = time.monotonic()
        limit = self.scenario.gameday.max_duration.total_seconds()
        pending = self._schedule()

        def on_inject_failure(fault: ActiveFault, error: str) -> None:
            self.request_abort("fault_error", f"{fault.name} could not be injected: {error}")

        while not self._stop.is_set():
            now = time.monotonic() - started
            while pending and pending[0][0] <= now:
                _, action, fault = pending.pop(0)
                if action == "inject":
                    fault.start_inject(on_inject_failure)
                    self._set_fault_view(fault.name, "injecting")
                else:
                    fault.wait_for_inject(INJECT_WAIT_AFTER_ABORT)
                    fault.revert()
                    self._set_fault_view(fault.name, "reverted")
            if not pending and not any(fault.active() for fault in self.faults):
                return  # every fault ran its course
            if now >= limit:
                self.request_abort("max_duration", f"the run reached its max_duration of {limit:g}s")
                return
            next_due = min(pending[0][0], limit) if pending else limit
            self._stop.wait(max(0.0, min(next_due - now, 0.5)))

    def _set_fault_view(self, name: str, state: str) -> None:
        if self.view is not None:
            self.view.faults[name] = state

    def _finish_reverts(self) -> list[str]:
        """Revert every fault that may be in place, concurrently; return those that may still be.

        Bounded: an inject still running ``INJECT_WAIT_AFTER_ABORT`` after the
        reverts is journaled as ``fault_still_in_flight`` and counted as not
        reverted - it may put its fault in place after we reverted the planned
        record, so the run must not say everything is back.
        """
        candidates = [fault for fault in self.faults if fault.state.value not in ("planned", "reverted")]
        if not candidates and not any(fault.inject_running() for fault in self.faults):
            return []
        self._phase("reverting")
        with ThreadPoolExecutor(max_workers=max(1, len(self.faults)), thread_name_prefix="revert") as pool:
            list(pool.map(lambda fault: fault.revert(), self.faults))
        deadline = time.monotonic() + INJECT_WAIT_AFTER_ABORT
        for fault in self.faults:  # an inject that outlived the abort reverts itself when it returns
            if fault.inject_running():
                fault.wait_for_inject(max(0.0, deadline - time.monotonic()))
        left = []
        for fault in self.faults:
            if fault.inject_running():
                fault.still_in_flight(INJECT_WAIT_AFTER_ABORT)
                left.append(f"{fault.name} (inject still in flight)")
                self._set_fault_view(fault.name, "still in flight")
                continue
            self._set_fault_view(fault.name, fault.state.value)
            if fault.state.value not in ("planned", "reverted", "inject_failed"):
                left.append(f"{fault.name} ({fault.state.value.replace('_', ' ')})")
        return left

    def _verify_steady_state(self) -> tuple[bool, str]:
        checks = self.scenario.steady_state if self.metrics is not None else []
        http_checks = self.scenario.http_checks
        if not checks and not http_checks:
            return True, "no steady state to verify"
        deadline = time.monotonic() + self.scenario.gameday.steady_state_timeout.total_seconds()
        interval = self.scenario.gameday.check_interval.total_seconds()
        failing: list[str] = []
        while True:
            failing = []
            for check in checks:
                try:
                    if not all_hold(check, self._query(check.expr)):
                        failing.append(check.name)
                except ChaosrunnerError as error:
                    failing.append(f"{check.name} ({error})")
            for http_check in http_checks:
                result = probe_http(http_check)
                if not result.ok:
                    failing.append(f"{http_check.name} ({result.detail()})")
            if not failing:
                self.emit(
                    "check", name="steady state returned", ok=True, detail="every check holds after revert"
                )
                return True, "steady state returned"
            if time.monotonic() >= deadline:
                detail = f"steady state did not return within the timeout: {', '.join(failing)}"
                self.emit("check", name="steady state returned", ok=False, detail=detail)
                return False, detail
            time.sleep(interval)

    # -- signals --------------------------------------------------------------------------

    @contextmanager
    def _signals(self) -> Iterator[None]:
        if not self.options.handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: FrameType | None) -> None:
            self._signals_seen += 1
            name = signal.Signals(signum).name
            self._signal_name = self._signal_name or name
            if self._signals_seen == 1:
                threading.Thread(
                    target=self.request_abort, args=("signal", f"received {name}: reverting"), daemon=True
                ).start()
            else:
                threading.Thread(
                    target=self.emit,
                    args=("signal_ignored",),
                    kwargs={"signal": name, "detail": "still reverting; faults are never left behind"},
                    daemon=True,
                ).start()

        previous = {
            signum: signal.signal(signum, handler)
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
        try:
            yield
        finally:
            for signum, old in previous.items():
                signal.signal(signum, old)
