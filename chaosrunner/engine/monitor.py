"""The abort monitor: a thread that watches every abort condition at a fixed rate.

It runs beside the runner from preflight to the end of reverts and never waits
for it: a slow inject cannot delay a check. Each tick it

- queries every condition concurrently (one slow expression does not hold up
  the others) with a timeout shorter than the tick,
- fails closed: when Prometheus has not answered for longer than the grace,
  that is an abort ("we are blind, stop"),
- looks at the global kill switch and at this run's abort request,

and calls ``on_abort(cause, detail)`` once. Ticks are scheduled on a fixed
grid (start + k x interval) so the rate does not drift with query latency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from chaosrunner.engine import killswitch
from chaosrunner.engine.conditions import ConditionState, ConditionStatus, ConditionTracker
from chaosrunner.errors import ChaosrunnerError
from chaosrunner.observe.metrics import MetricsSource, Sample
from chaosrunner.scenario.models import AbortCondition

AbortCallback = Callable[[str, str], None]
StatusCallback = Callable[[ConditionStatus], None]
HealthCallback = Callable[[str, str], None]


class AbortMonitor:
    def __init__(
        self,
        conditions: list[AbortCondition],
        metrics: MetricsSource | None,
        *,
        interval: float,
        unreachable_grace: float,
        on_abort: AbortCallback,
        on_condition_change: StatusCallback,
        on_prometheus_change: HealthCallback,
        abort_requested: Callable[[], str | None],
    ) -> None:
        self.trackers = [ConditionTracker(condition) for condition in conditions]
        self.metrics = metrics
        self.interval = interval
        self.unreachable_grace = unreachable_grace
        self.on_abort = on_abort
        self.on_condition_change = on_condition_change
        self.on_prometheus_change = on_prometheus_change
        self.abort_requested = abort_requested
        self._stop = threading.Event()
        self._fired = False
        self._last_answer = time.monotonic()
        self._blind_since: float | None = None
        self._thread = threading.Thread(target=self._loop, name="abort-monitor", daemon=True)
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, len(self.trackers)), thread_name_prefix="abort-query"
        )
        self.ticks = 0

    def start(self) -> None:
        self._last_answer = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def statuses(self) -> list[ConditionStatus]:
        return [tracker.status for tracker in self.trackers]

    def _abort(self, cause: str, detail: str) -> None:
        if not self._fired:
            self._fired = True
            self.on_abort(cause, detail)

    def _loop(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as error:  # a monitor that dies silently would fail open
                self._abort("error", f"the abort monitor failed: {type(error).__name__}: {error}")
                return
            self.ticks += 1
            next_tick = started + self.ticks * self.interval
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

    def tick(self) -> None:
        switch = killswitch.engaged()
        if switch is not None:
            self._abort("kill_switch", f"global kill switch engaged by {switch.get('by', 'unknown')}")
            return
        requested = self.abort_requested()
        if requested is not None:
            self._abort("operator", requested)
            return
        if not self.trackers or self.metrics is None:
            return
        self._evaluate_conditions()

    def _evaluate_conditions(self) -> None:
        assert self.metrics is not None
        metrics = self.metrics
        # Short enough that a hung Prometheus is noticed well inside the grace.
        timeout = min(0.5, self.unreachable_grace / 4)
        futures = [
            (tracker, self._pool.submit(metrics.instant, tracker.condition.expr, timeout))
            for tracker in self.trackers
        ]
        now = time.monotonic()
        failures = []
        for tracker, future in futures:
            try:
                sample: Sample = future.result(timeout=timeout + 0.5)
            except ChaosrunnerError as exc:
                failures.append(str(exc))
                continue
            except Exception as exc:  # a hung or crashed query: the same as no answer
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            before = tracker.status.state
            status = tracker.observe(sample, now)
            if status.state is not before:
                self.on_condition_change(status)
            if status.state is ConditionState.FIRING:
                condition = tracker.condition
                self._abort(
                    "condition",
                    f"{condition.name}: {status.value:g} {condition.comparator.value} {condition.threshold:g}"
                    + (f" for {condition.for_.total_seconds():g}s" if condition.for_.total_seconds() else ""),
                )
        self._account_health(failures, now)

    def _account_health(self, failures: list[str], now: float) -> None:
        if not failures:
            if self._blind_since is not None:
                self.on_prometheus_change("recovered", "")
            self._blind_since = None
            self._last_answer = now
            return
        if self._blind_since is None:
            self._blind_since = now
            self.on_prometheus_change("unreachable", failures[0])
        blind_for = now - self._last_answer
        if blind_for > self.unreachable_grace:
            self._abort(
                "prometheus_unreachable",
                f"no answer from Prometheus for {blind_for:.1f}s "
                f"(grace {self.unreachable_grace:g}s): {failures[0]}",
            )
