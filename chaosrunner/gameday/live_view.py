"""The live view of a run for the facilitator console: snapshots, series and live TTD/TTM.

The console's stream (``gameday.server``) replays the journal; this module
adds what the journal does not hold, as messages handed to ``publish``:

- ``snapshot`` every second while the run is live: the phase, the time
  elapsed and left, every abort condition's state and value, every fault's
  state, and one fresh sample of the mitigation SLI and of each steady-state
  check (instant queries);
- ``measured`` whenever the live measurement changes: TTD (with the layer
  that saw it), TTM and TTR so far, from ``gameday.measure.measure`` over the
  journal so far - the same function the debrief uses, so the page's figures
  are the report's figures, only earlier;

and keeps every sample it took (bounded) so a page that connects late draws
the whole chart at once (``series``).

It is advisory. Two threads of its own do the work - never the runner's
listener call, which must return at once, and never the abort monitor's
thread: queries here have short timeouts and run concurrently, so a slow
Prometheus delays a snapshot, never an abort. Nothing here raises into the
runner; the last error is kept in ``last_error`` for whoever wants to show it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from chaosrunner.engine.journal import JournalEvent, JournalTail, format_time
from chaosrunner.engine.runner import Runner
from chaosrunner.gameday.measure import Measurement, measure
from chaosrunner.observe.metrics import MetricsSource, Sample
from chaosrunner.scenario.models import Comparator

log = logging.getLogger("chaosrunner.live_view")

Publish = Callable[[str, dict[str, Any]], None]
Measurer = Callable[..., Measurement]

SNAPSHOT_EVERY = 1.0
MEASURE_AT_MOST_EVERY = 2.0
QUERY_TIMEOUT = 0.8
"""Seconds an instant query may take: under the snapshot period, so a hung Prometheus
costs one late snapshot, not a backlog."""
MAX_POINTS = 20_000
"""Samples kept per series: at one a second, five and a half hours - longer than any gameday."""
CLOSE_TIMEOUT = 3.0

_MARKS_THAT_MOVE_FIGURES = frozenset({"detected", "mitigated"})


def moves_figures(event: dict[str, Any]) -> bool:
    """Can this event change t0, TTD, TTM or TTR? Only those trigger a (costly) measurement."""
    kind = event.get("type")
    if kind in ("fault_injected", "alert", "faults_ending", "run_finished"):
        return True
    if kind == "responder":
        return event.get("event") in _MARKS_THAT_MOVE_FIGURES
    return kind == "check" and event.get("name") == "steady state returned"


def finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity (a browser's JSON.parse refuses them): no value instead."""
    return value if value is not None and math.isfinite(value) else None


def health_value(sample: Sample, comparator: Comparator, target: float) -> float | None:
    """One number for a health check (SLI, steady state) that may return several series.

    The reduction ``engine.conditions.representative_value`` makes for abort
    conditions, in the health sense: the first series that is *not* healthy
    when there is one (a page must not show a healthy value while another
    series fails), otherwise the one closest to its objective.
    """
    values = [value for value in sample.finite() if math.isfinite(value)]
    if not values:
        return None
    failing = [value for value in values if not comparator.holds(value, target)]
    if failing:
        return failing[0]
    return min(values, key=lambda value: abs(value - target))


def figures(measurement: Measurement) -> dict[str, Any]:
    """The ``measured`` message: what the page shows beside its TTD and TTM targets."""

    def seconds(value: Any) -> float | None:
        return round(value.total_seconds(), 3) if value is not None else None

    return {
        "t0": format_time(measurement.t0) if measurement.t0 is not None else None,
        "ttd_s": seconds(measurement.ttd),
        "ttd_layer": measurement.detection_layer,
        "ttm_s": seconds(measurement.ttm),
        "ttr_s": seconds(measurement.ttr),
    }


class Throttle:
    """At most one go every ``interval`` seconds; ``wait`` says how long until the next may start."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: float | None = None

    def wait(self) -> float:
        if self._last is None:
            return 0.0
        return max(0.0, self._last + self.interval - self.clock())

    def went(self) -> None:
        self._last = self.clock()


class LiveView:
    """Snapshots every second and live measurements for one run; a runner listener."""

    def __init__(
        self,
        runner: Runner,
        metrics: MetricsSource | None,
        publish: Publish,
        *,
        snapshot_every: float = SNAPSHOT_EVERY,
        measure_every: float = MEASURE_AT_MOST_EVERY,
        max_points: int = MAX_POINTS,
        measurer: Measurer = measure,
    ) -> None:
        self.runner = runner
        self.scenario = runner.scenario
        self.metrics = metrics
        self.publish = publish
        self.snapshot_every = snapshot_every
        self.measurer = measurer
        self.last_error: str | None = None
        self.last_measured: dict[str, Any] | None = None
        self.measurements = 0
        self._live = True
        self._injecting_since: float | None = None
        self._stop = threading.Event()  # abandon whatever is still running
        self._closing = threading.Event()  # finish up: the last snapshot, the pending measurement
        self._finished = threading.Event()  # wakes the sampler for the last, "not live" snapshot
        self._wake = threading.Event()  # wakes the measurer
        self._pending = False  # an event that can move a figure has not been measured yet
        self._throttle = Throttle(measure_every)
        self._lock = threading.Lock()  # the series: appended by the sampler, copied by the server
        self._sli: deque[list[float | None]] = deque(maxlen=max_points)
        self._steady: dict[str, deque[list[float | None]]] = {
            check.name: deque(maxlen=max_points) for check in self.scenario.steady_state
        }
        self._events: list[JournalEvent] = []
        self._tail: JournalTail | None = None
        queries = (1 if self.scenario.mitigation else 0) + len(self.scenario.steady_state)
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(queries, 8)), thread_name_prefix="live-query")
        self._sampler = threading.Thread(target=self._sample_loop, name="live-view", daemon=True)
        self._measurer = threading.Thread(target=self._measure_loop, name="live-measure", daemon=True)
        self._started = False
        self._closed = False

    # -- lifetime ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._sampler.start()
        self._measurer.start()

    def close(self) -> None:
        """Finish and stop; idempotent, and bounded by ``CLOSE_TIMEOUT`` in all.

        The run is usually over when this is called, its last events not yet
        reflected: the sampler publishes its last snapshot and the measurer the
        pending measurement at once (past the throttle), so the page ends with
        the run's final figures. What is still running at the deadline - a
        query Prometheus does not answer - is abandoned, not awaited.
        """
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._finished.set()
        self._wake.set()
        deadline = time.monotonic() + CLOSE_TIMEOUT
        for thread in (self._sampler, self._measurer):
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the runner listener: must return at once ------------------------------------------

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "phase" and event.get("phase") == "injecting" and self._injecting_since is None:
            self._injecting_since = time.monotonic()
        if kind == "run_finished":
            self._live = False
            self._finished.set()
        if moves_figures(event):
            self._pending = True
            self._wake.set()

    # -- what the server asks for ------------------------------------------------------------

    def series(self) -> dict[str, Any]:
        """Everything sampled so far: ``{"sli": [[t, v], ...], "steady": {name: [[t, v], ...]}}``."""
        with self._lock:
            return {
                "sli": [list(point) for point in self._sli],
                "steady": {name: [list(point) for point in points] for name, points in self._steady.items()},
            }

    def snapshot(self) -> dict[str, Any]:
        """Sample now and describe the run: the ``snapshot`` message."""
        sample = self._sample()
        view = self.runner.view
        now = time.monotonic()
        limit = self.scenario.gameday.max_duration.total_seconds()
        time_left = None
        phase = view.phase if view is not None else "starting"
        if self._injecting_since is not None and phase == "injecting":  # max_duration bounds injecting only
            time_left = round(max(0.0, limit - (now - self._injecting_since)), 1)
        return {
            "phase": phase,
            "elapsed_s": round(now - view.started, 1) if view is not None else 0.0,
            "time_left_s": time_left,
            "conditions": self._conditions(),
            "faults": [
                {"name": fault.name, "kind": fault.spec.kind, "state": fault.state.value}
                for fault in self.runner.faults
            ],
            "sample": sample,
            "live": self._live,
        }

    # -- snapshots ---------------------------------------------------------------------------

    def _sample_loop(self) -> None:
        started = time.monotonic()
        ticks = 0
        while not self._stop.is_set():
            # Read before sampling: the snapshot that says "not live" (or the one made while
            # closing) is the last.
            last = not self._live or self._closing.is_set()
            try:
                self.publish("snapshot", self.snapshot())
            except Exception as error:  # advisory: a broken snapshot must not end the others
                self._failed("snapshot", error)
            if last:
                return
            ticks += 1  # a fixed grid, like the abort monitor: slow queries do not make the rate drift
            self._finished.wait(max(0.0, started + ticks * self.snapshot_every - time.monotonic()))

    def _conditions(self) -> list[dict[str, Any]]:
        monitor = self.runner.monitor
        observed = monitor is not None and monitor.ticks > 0
        statuses = {status.name: status for status in monitor.statuses()} if monitor is not None else {}
        rows: list[dict[str, Any]] = []
        for condition in self.scenario.abort_conditions:
            status = statuses.get(condition.name)
            if not observed or status is None:
                rows.append({"name": condition.name, "value": None, "state": "waiting"})
            else:
                rows.append(
                    {"name": condition.name, "value": finite(status.value), "state": status.state.value}
                )
        return rows

    def _sample(self) -> dict[str, Any]:
        """Instant queries of the SLI and each steady-state check, concurrently, each bounded."""
        at = round(time.time(), 3)
        mitigation = self.scenario.mitigation
        checks = self.scenario.steady_state
        futures: dict[str, Any] = {}
        if self.metrics is not None:
            metrics = self.metrics
            if mitigation is not None:
                futures["sli"] = self._pool.submit(metrics.instant, mitigation.sli, QUERY_TIMEOUT)
            for check in checks:
                futures[check.name] = self._pool.submit(metrics.instant, check.expr, QUERY_TIMEOUT)
        sli = None
        if mitigation is not None and "sli" in futures:
            sli = self._answer(futures["sli"], mitigation.sli, mitigation.comparator, mitigation.objective)
        steady = {
            check.name: (
                self._answer(futures[check.name], check.expr, check.comparator, check.threshold)
                if check.name in futures
                else None
            )
            for check in checks
        }
        with self._lock:
            if mitigation is not None:
                self._sli.append([at, sli])
            for name, value in steady.items():
                self._steady[name].append([at, value])
        return {"t": at, "sli": sli, "steady": steady}

    def _answer(self, future: Any, expr: str, comparator: Comparator, target: float) -> float | None:
        try:
            sample: Sample = future.result(timeout=QUERY_TIMEOUT + 0.2)
        except FutureTimeout:
            future.cancel()
            self._failed(f"query {expr!r}", TimeoutError(f"no answer within {QUERY_TIMEOUT:g}s"))
            return None
        except Exception as error:  # unreachable, a rejected query: a gap in the chart
            self._failed(f"query {expr!r}", error)
            return None
        return finite(health_value(sample, comparator, target))

    # -- live measurement --------------------------------------------------------------------

    def _measure_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            # Coalesce: every event until the throttle opens is covered by one measurement
            # (closing opens it at once: the run's last figures are not held back).
            self._closing.wait(self._throttle.wait())
            if self._stop.is_set():
                return
            self._wake.clear()
            if self._pending:  # cleared before measuring: an event from now on wakes us again
                self._pending = False
                self._throttle.went()
                try:
                    self.measure_now()
                except Exception as error:  # advisory: the debrief measures again, with all the data
                    self._failed("live measurement", error)
            if self._closing.is_set():
                return

    def measure_now(self) -> dict[str, Any]:
        """Measure over the journal so far; publish ``measured`` when the figures changed."""
        if self._tail is None:
            assert self.runner.run_dir is not None, "the run has no folder yet"
            self._tail = JournalTail(self.runner.run_dir.journal_path)
        self._events.extend(self._tail.read_new())
        result = figures(self.measurer(list(self._events), self.scenario, self.metrics))
        self.measurements += 1
        if result != self.last_measured:
            self.last_measured = result
            self.publish("measured", dict(result))
        return result

    def _failed(self, what: str, error: BaseException) -> None:
        self.last_error = f"{what}: {type(error).__name__}: {error}"
        log.debug("live view: %s", self.last_error)
