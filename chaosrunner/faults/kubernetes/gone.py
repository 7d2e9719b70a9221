"""Confirming killed pods gone: their uids no longer in the API.

A DELETE's 200 says the deletion began, not that the pod is gone (a grace
period, finalizers, a kubelet that has to stop the containers). ``wait_gone``
lists which are still there, then watches for their DELETED events.

Listing after the last DELETE cost 1.2 s on top of the deletions at scale
(bench/k8s_scale.py, 1,000 of 5,000 pods: 4.2 s deleting, 5.5 s gone - the
list of thousands of pods alone). So pod-kill opens a ``DeletionWatch``
before its first DELETE: the confirmations arrive while the kills go out,
and ``wait_gone`` lists only when that watch broke off. Both read only
uids, so both ask for metadata alone (``metadata_only``): fewer bytes for the
server to encode and for us to decode - the watch also sees every replacement
a controller creates, schedules and starts, three events per killed pod. (A
modest saving, measured: a list of 3,000 pending pods 0.36-0.45 s instead of
0.43-0.56 s; pod-kill's own CPU at 1,000 pods stayed about 1.3 s, which is
mostly the DELETEs themselves.)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from chaosrunner.errors import ServiceUnreachable
from chaosrunner.faults.kubernetes.api import KubeApi, KubeStatus

GONE_WATCH_SLICE = 5.0
"""Seconds per watch while confirming pods gone: a halt is noticed within this (and a missed event)."""


STALL_SECONDS = 2.0
"""After the kills, how long the watch may see none of the pods go before confirming turns to listing."""


def never() -> bool:
    return False


class DeletionWatch:
    """The pods deleted in a namespace (by label), watched from before the first kill, in a thread.

    It follows from a resourceVersion taken when it starts, so no deletion
    after that is missed while the watch holds; when it breaks off (the
    version expired, the connection dropped) it says so (``broken``) and
    ``wait_gone`` falls back to listing. ``close`` only asks it to stop: the
    thread ends at its next event or watch slice, so no kill waits for it.
    """

    def __init__(self, api: KubeApi, namespace: str, labels: str | None) -> None:
        self._deleted: dict[str, float] = {}  # uid -> when its DELETED event arrived (monotonic)
        self._changed = threading.Condition()
        self._stopping = False
        self.broken = False
        try:  # a one-item page is enough: its list's resourceVersion is where the watch starts
            first = next(api.pages("pods", namespace, labels=labels, limit=1, metadata_only=True))
        except (KubeStatus, ServiceUnreachable):
            self.broken = True  # confirming lists instead, as it did before this watch
            return
        self._thread = threading.Thread(
            target=self._follow,
            args=(api, namespace, labels, first.resource_version),
            name="pod-kill-gone",
            daemon=True,
        )
        self._thread.start()

    def _follow(self, api: KubeApi, namespace: str, labels: str | None, version: str) -> None:
        try:
            while not self._stopping:
                opened = time.monotonic()
                events = api.watch(
                    "pods",
                    namespace,
                    labels=labels,
                    resource_version=version,
                    timeout=GONE_WATCH_SLICE,
                    metadata_only=True,
                )
                with contextlib.closing(events):  # type: ignore[type-var]
                    for event in events:
                        if event.type == "ERROR":
                            raise LookupError("the watch's resourceVersion expired")
                        meta = event.object.get("metadata") or {}
                        version = str(meta.get("resourceVersion") or version)
                        uid = meta.get("uid")
                        if event.type == "DELETED" and isinstance(uid, str):
                            with self._changed:
                                self._deleted[uid] = time.monotonic()
                                self._changed.notify_all()
                        if self._stopping:
                            return
                # A server ends a watch at its timeout; one that ends it at once is restarting or
                # shedding load, and asking again in a tight loop would only add to that.
                if time.monotonic() - opened < 1.0:
                    time.sleep(1.0)
        except Exception:
            # This thread's boundary: whatever ends it (the KubeApi may be closed under it after the
            # kill), confirming lists instead - and a thread's traceback would reach the user's terminal.
            with self._changed:
                self.broken = True
                self._changed.notify_all()

    def wait_for(
        self, uids: set[str], deadline: float, halted: Callable[[], bool] = never
    ) -> dict[str, float]:
        """When each of ``uids`` was seen deleted.

        Returns once all were, the watch broke, a halt, the deadline - or when
        none of them was seen for ``STALL_SECONDS``: pods in a grace period
        (or a watch that says nothing) are then confirmed by listing, which
        does not depend on this watch having seen everything.
        """
        with self._changed:
            progress, seen_count = time.monotonic(), -1
            while True:
                seen = {uid: self._deleted[uid] for uid in uids if uid in self._deleted}
                now = time.monotonic()
                if len(seen) != seen_count:
                    progress, seen_count = now, len(seen)
                if (
                    len(seen) == len(uids)
                    or self.broken
                    or halted()
                    or now >= deadline
                    or now - progress >= STALL_SECONDS
                ):
                    return seen
                self._changed.wait(min(0.25, max(0.0, deadline - now)))

    def close(self) -> None:
        self._stopping = True

    def __enter__(self) -> DeletionWatch:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def wait_gone(
    api: KubeApi,
    namespace: str,
    pods: list[dict[str, Any]],
    *,
    labels: str | None,
    started: float,
    timeout: float,
    halted: Callable[[], bool] = never,
    watched: DeletionWatch | None = None,
) -> dict[str, Any]:
    """Wait until every pod's uid is gone from the API; ``gone_seconds`` from ``started`` (monotonic).

    What ``watched`` saw deleted counts first. Then a list (by ``labels``,
    the fault's own selector) says which are still there, and a watch from
    that list's resourceVersion catches their DELETED events; the list is
    repeated when a watch ends, so a missed event costs one slice. Bounded
    by ``timeout`` and by ``halted``; what is left is ``not_gone``.
    """
    pending = {pod["uid"]: pod["name"] for pod in pods}
    deadline = time.monotonic() + timeout
    last_gone: float | None = None
    seen: dict[str, float] = {}
    if watched is not None and not watched.broken:
        seen = watched.wait_for(set(pending), deadline, halted)
        if seen:
            last_gone = max(seen.values())
        pending = {uid: name for uid, name in pending.items() if uid not in seen}
    while pending:  # listed at least once, so what is left is known, even after a halt
        present: set[str] = set()
        version = ""
        for page in api.pages("pods", namespace, labels=labels, metadata_only=True):
            for item in page.items:
                uid = (item.get("metadata") or {}).get("uid")
                if isinstance(uid, str) and uid in pending:
                    present.add(uid)
            version = page.resource_version
        if len(present) < len(pending):
            last_gone = time.monotonic()
        pending = {uid: pending[uid] for uid in present}
        if not pending or halted() or time.monotonic() >= deadline:
            break
        slice_ = max(1.0, min(GONE_WATCH_SLICE, deadline - time.monotonic()))
        events = api.watch(
            "pods",
            namespace,
            labels=labels,
            resource_version=version or None,
            timeout=slice_,
            metadata_only=True,
        )
        with contextlib.closing(events):  # type: ignore[type-var]
            try:
                for event in events:
                    if event.type == "ERROR":
                        break  # too old a resourceVersion: list again
                    uid = (event.object.get("metadata") or {}).get("uid")
                    if event.type == "DELETED" and uid in pending:
                        del pending[uid]
                        last_gone = time.monotonic()
                    if not pending or halted() or time.monotonic() >= deadline:
                        break
            except KubeStatus:
                pass  # the watch was refused (410 Gone ...): list again
    return {
        "gone_seconds": None if last_gone is None else round(last_gone - started, 3),
        "not_gone": sorted(pending.values()),
        "confirmed_by_watch": len(seen),  # the rest by listing
    }
