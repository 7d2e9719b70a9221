"""A dead-man's switch for faults that nothing else ends: a holder that reverts at the deadline.

A paused container, a stopped one, a container cut off its network or
blackholed by iptables, a cordoned node or a scaled-down Deployment stays
broken for ever if chaosrunner dies mid-run and nobody runs ``chaosrunner
recover``. Neither Docker nor Kubernetes has a TTL for such states, so each of
these faults (Docker's, and the Kubernetes ones that set ``arms_watchdog``)
arms a *watchdog* when it injects: a holder process (see
``chaosrunner.faults.holder``: own session, pid plus start time, survives our
``kill -9``) that sleeps until the fault's duration plus a grace period and
then calls the kind's own ``revert`` with the revert record. Revert is
idempotent, so it does not matter whether the engine already reverted.

When the engine reverts first it disarms the watchdog (SIGTERM): a disarmed
watchdog exits *without* reverting, because the engine is reverting right then
and two reverts racing on one container would only produce conflicts.

The watchdog lives on the machine that runs chaosrunner and talks to the same
daemon or cluster (DOCKER_HOST, KUBECONFIG and friends are inherited), so it
also covers remote ones; it does not survive a reboot of this machine.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

from chaosrunner.faults.base import RevertRecord
from chaosrunner.faults.holder import HolderRecord, HolderSession, request_stop, spawn

WATCHDOG_KEY = "watchdog"
UNBOUNDED_HOLD = timedelta(hours=1)
"""How long a fault without a duration (gameday mode: until mitigated) may stay if we die."""


def deadline_after(duration: timedelta | None, grace: timedelta, now: float | None = None) -> float:
    """Epoch seconds at which the fault must be gone even if nobody reverts it."""
    hold = (duration if duration is not None else UNBOUNDED_HOLD) + grace
    return (time.time() if now is None else now) + hold.total_seconds()


def arm(kind: str, record: RevertRecord, deadline: float, label: str) -> dict[str, Any]:
    """Start the watchdog for ``record``; returns its holder record (JSON data)."""
    spec = {"kind": kind, "record": {key: value for key, value in record.items() if key != WATCHDOG_KEY}}
    return spawn(__name__, spec, deadline=deadline, label=label).as_dict()


def disarm(record: RevertRecord) -> None:
    """Tell the record's watchdog to stand down without reverting. Idempotent; no-op inside it.

    Only the signal is sent: the watchdog sets its stop flag in its signal
    handler, before anything else can run in it, so it will not revert; its
    exit (an interpreter teardown) is not worth delaying the revert for.
    """
    data = record.get(WATCHDOG_KEY)
    if not data:
        return
    holder = HolderRecord.from_dict(data)
    if holder.pid != os.getpid():
        request_stop(holder)


def hold(spec: dict[str, Any], session: HolderSession) -> None:
    """Holder entry point: wait for the deadline, then revert unless disarmed first."""
    from chaosrunner.faults.registry import registry

    fault_class = registry.get(spec["kind"])
    if fault_class is None:
        raise SystemExit(f"watchdog: unknown fault kind {spec['kind']!r}")
    session.ready()
    session.wait()
    if session.stopping.is_set():
        return
    fault_class().revert(spec["record"])
