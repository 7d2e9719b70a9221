"""Chaos windows in monitoring: live run state pushed to a Pushgateway.

While a run is live, dashboards and alert rules can see it:

- ``chaosrunner_fault_active{run, scenario, fault, kind, state}`` is 1 while a
  fault may be in place (``state`` injecting, injected, revert_failed or
  in_flight) and 0 once it is reverted (``state="reverted"``);
- ``chaosrunner_run_phase{run, scenario, phase}`` is 1 for the current phase
  (one series per phase, the usual enum pattern).

Both live in the group ``job="chaosrunner", run="<id>"``. When the run
finishes with every fault reverted the group is deleted, so nothing stale
claims chaos is going on. When a fault is STILL INJECTED (its revert failed,
or its inject never returned) the group stays, with that fault at 1 and
``state="revert_failed"``: monitoring must keep showing the chaos that is
really there. ``chaosrunner recover`` deletes the group once it has reverted
what was left (``clear_chaos_window``; it finds the Pushgateway in the
journal's scenario). The delete is retried: a group left behind would claim
chaos for good. The Pushgateway answers a DELETE with 202 and applies it a
moment later, so a reader straight after ``close()`` may still see the group
briefly.

Pushes happen on a background thread from a latest-state snapshot: the runner
journals and moves on, and a slow or dead Pushgateway can never delay a
revert. This module is the only one that imports prometheus_client.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

PHASES = ("planning", "preflight", "injecting", "reverting", "verifying", "finished")
JOB = "chaosrunner"
FAULT_STATES = {
    "fault_injecting": "injecting",
    "fault_injected": "injected",
    "fault_reverted": "reverted",
    "fault_inject_failed": "inject_failed",
    "fault_revert_failed": "revert_failed",
    "fault_still_in_flight": "in_flight",
}
"""The journal event that puts a fault in each ``state`` label value."""
ENDED = frozenset({"reverted", "inject_failed"})
"""States in which the fault is not in place (the gauge reads 0); any other state at the
run's end means STILL INJECTED, and the run's group stays."""


class ChaosWindowPublisher:
    def __init__(self, url: str, scenario_title: str, timeout: float = 2.0) -> None:
        self.url = url.rstrip("/")
        self.scenario = scenario_title
        self.timeout = timeout
        self.run_id = ""
        self.phase = ""
        self.faults: dict[str, tuple[str, str]] = {}  # fault -> (kind, state)
        self.errors: list[str] = []
        self._wake: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="pushgateway", daemon=True)
        self._thread.start()

    # Called by the runner for every journaled event (must be quick).
    def __call__(self, event: Any) -> None:
        with self._lock:
            kind = event["type"]
            if kind == "run_started":
                self.run_id = event["run_id"]
            elif kind == "phase":
                self.phase = event["phase"]
            elif kind in FAULT_STATES:
                self.faults[event["fault"]] = (event["kind"], FAULT_STATES[kind])
            elif kind != "run_finished":
                return
            finished_clean = kind == "run_finished" and not self.still_injected()
        self._wake.put("delete" if finished_clean else "push")

    def still_injected(self) -> list[str]:
        """Faults that may still be in place (their revert failed or never ran)."""
        return [fault for fault, (_kind, state) in self.faults.items() if state not in ENDED]

    def close(self, timeout: float = 15.0) -> None:
        """Finish the queued pushes and the delete, then stop (bounded: long enough for retries)."""
        self._wake.put("stop")
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            actions = {self._wake.get()}
            while not self._wake.empty():  # coalesce bursts: one push shows the latest state
                actions.add(self._wake.get())
            # A delete supersedes pushes; a stop comes last, after the final state went out
            # (a stop that swallowed the last push lost a fault's revert_failed state).
            if actions & {"push", "delete"}:
                try:
                    self._delete() if "delete" in actions else self._push()
                except Exception as exc:  # monitoring is best effort; the journal is the truth
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            if "stop" in actions:
                return

    def _grouping(self) -> dict[str, str]:
        return {"run": self.run_id}

    def _push(self) -> None:
        from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

        registry = CollectorRegistry()
        active = Gauge(
            "chaosrunner_fault_active",
            "1 while a chaosrunner fault may be in place; state says why (revert_failed: still injected)",
            ["scenario", "fault", "kind", "state"],
            registry=registry,
        )
        phase = Gauge(
            "chaosrunner_run_phase", "1 for the run's current phase", ["scenario", "phase"], registry=registry
        )
        with self._lock:
            for fault, (kind, state) in self.faults.items():
                active.labels(self.scenario, fault, kind, state).set(0 if state in ENDED else 1)
            for name in PHASES:
                phase.labels(self.scenario, name).set(1 if name == self.phase else 0)
        push_to_gateway(
            self.url, job=JOB, registry=registry, grouping_key=self._grouping(), timeout=self.timeout
        )

    def _delete(self) -> None:
        clear_chaos_window(self.url, self.run_id, self.timeout)


def clear_chaos_window(url: str, run_id: str, timeout: float = 2.0) -> None:
    """Delete a run's chaos-window group (retried); for the run's end and for ``recover``."""
    from prometheus_client import delete_from_gateway
    from tenacity import Retrying, stop_after_attempt, wait_fixed

    for attempt in Retrying(stop=stop_after_attempt(3), wait=wait_fixed(0.5), reraise=True):
        with attempt:
            delete_from_gateway(url.rstrip("/"), job=JOB, grouping_key={"run": run_id}, timeout=timeout)


SCHEDULE_JOB = "chaosrunner_schedule"
STATUSES = ("completed", "aborted", "deviated", "failed", "refused", "error")


def push_scheduled_outcome(
    url: str,
    schedule: str,
    entry: str,
    status: str,
    exit_code: int,
    finished_at: float,
    counts: dict[str, int],
    timeout: float = 5.0,
) -> None:
    """The last outcome of a scheduled entry, kept in the Pushgateway for alerting.

    Unlike chaos windows these stay after the run: staging alerts on
    ``chaosrunner_scheduled_run_last_exit_code != 0`` or on a stale
    ``chaosrunner_scheduled_run_last_timestamp_seconds``.
    """
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    Gauge(
        "chaosrunner_scheduled_run_last_exit_code", "exit code of the entry's last run", registry=registry
    ).set(exit_code)
    Gauge(
        "chaosrunner_scheduled_run_last_timestamp_seconds",
        "when the entry's last run finished",
        registry=registry,
    ).set(finished_at)
    last = Gauge(
        "chaosrunner_scheduled_run_last_status",
        "1 for the status of the entry's last run",
        ["status"],
        registry=registry,
    )
    total = Gauge(
        "chaosrunner_scheduled_runs",
        "runs of the entry by status, from its history",
        ["status"],
        registry=registry,
    )
    for name in STATUSES:
        last.labels(name).set(1 if name == status else 0)
        total.labels(name).set(counts.get(name, 0))
    push_to_gateway(
        url,
        job=SCHEDULE_JOB,
        registry=registry,
        grouping_key={"schedule": schedule, "entry": entry},
        timeout=timeout,
    )


COVERAGE_JOB = "chaosrunner_coverage"


def push_detection_coverage(
    url: str, scenario: str, cells: list[tuple[str, str, bool, int, int, float | None]], timeout: float = 5.0
) -> None:
    """A scenario's detection coverage, kept in the Pushgateway (group ``scenario``) for dashboards.

    ``cells``: (alert, layer, expected, fired runs, counted runs, median seconds to first firing).
    ``chaosrunner_detection_fired_ratio{scenario,alert,layer,expected}`` is fired/runs (absent
    while no run counted); ``chaosrunner_detection_ttd_seconds`` the median, only where it fired.
    """
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    labels = ["scenario", "alert", "layer", "expected"]
    ratio = Gauge(
        "chaosrunner_detection_fired_ratio",
        "share of the scenario's counted runs (pre-existing left out) in which the alert fired after t0",
        labels,
        registry=registry,
    )
    ttd = Gauge(
        "chaosrunner_detection_ttd_seconds",
        "median time from t0 to the alert's first firing in the scenario's runs",
        labels,
        registry=registry,
    )
    for alert, layer, expected, fired, runs, seconds in cells:
        values = (scenario, alert, layer, "true" if expected else "false")
        if runs:
            ratio.labels(*values).set(fired / runs)
        if seconds is not None:
            ttd.labels(*values).set(seconds)
    push_to_gateway(
        url, job=COVERAGE_JOB, registry=registry, grouping_key={"scenario": scenario}, timeout=timeout
    )
