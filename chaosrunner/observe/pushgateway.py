"""Chaos windows in monitoring: live run state pushed to a Pushgateway.

While a run is live, dashboards and alert rules can see it:

- ``chaosrunner_fault_active{run, scenario, fault, kind}`` is 1 while a fault
  is injected, 0 once reverted;
- ``chaosrunner_run_phase{run, scenario, phase}`` is 1 for the current phase
  (one series per phase, the usual enum pattern).

Both live in the group ``job="chaosrunner", run="<id>"`` and the group is
deleted when the run finishes, so nothing stale claims chaos is going on. The
delete is retried: a group left behind would claim chaos for good. The
Pushgateway answers a DELETE with 202 and applies it a moment later, so a
reader straight after ``close()`` may still see the group briefly.

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


class ChaosWindowPublisher:
    def __init__(self, url: str, scenario_title: str, timeout: float = 2.0) -> None:
        self.url = url.rstrip("/")
        self.scenario = scenario_title
        self.timeout = timeout
        self.run_id = ""
        self.phase = ""
        self.faults: dict[str, tuple[str, int]] = {}
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
            elif kind in ("fault_injecting", "fault_injected"):
                self.faults[event["fault"]] = (event["kind"], 1)
            elif kind in ("fault_reverted", "fault_inject_failed"):
                self.faults[event["fault"]] = (event["kind"], 0)
            elif kind != "run_finished":
                return
        self._wake.put("delete" if kind == "run_finished" else "push")

    def close(self, timeout: float = 15.0) -> None:
        """Finish the queued pushes and the delete, then stop (bounded: long enough for retries)."""
        self._wake.put("stop")
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            action = self._wake.get()
            while action == "push" and not self._wake.empty():  # coalesce bursts
                action = self._wake.get()
            if action == "stop":
                return
            try:
                self._delete() if action == "delete" else self._push()
            except Exception as exc:  # monitoring is best effort; the journal is the truth
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def _grouping(self) -> dict[str, str]:
        return {"run": self.run_id}

    def _push(self) -> None:
        from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

        registry = CollectorRegistry()
        active = Gauge(
            "chaosrunner_fault_active",
            "1 while a chaosrunner fault is injected",
            ["scenario", "fault", "kind"],
            registry=registry,
        )
        phase = Gauge(
            "chaosrunner_run_phase", "1 for the run's current phase", ["scenario", "phase"], registry=registry
        )
        with self._lock:
            for fault, (kind, value) in self.faults.items():
                active.labels(self.scenario, fault, kind).set(value)
            for name in PHASES:
                phase.labels(self.scenario, name).set(1 if name == self.phase else 0)
        push_to_gateway(
            self.url, job=JOB, registry=registry, grouping_key=self._grouping(), timeout=self.timeout
        )

    def _delete(self) -> None:
        from prometheus_client import delete_from_gateway
        from tenacity import Retrying, stop_after_attempt, wait_fixed

        for attempt in Retrying(stop=stop_after_attempt(3), wait=wait_fixed(0.5), reraise=True):
            with attempt:
                delete_from_gateway(self.url, job=JOB, grouping_key=self._grouping(), timeout=self.timeout)


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
