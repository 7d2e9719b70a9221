"""What the three PostgreSQL faults share: a holder process, and a name to find its backends by.

A PostgreSQL fault only exists while somebody keeps connections open, so each
one runs in a holder process (``chaosrunner.faults.holder``) with its own
deadline: the fault's duration plus a grace, or ``max_hold`` when the fault has
no duration. If chaosrunner dies, the holder still closes everything at that
deadline: the dead-man's switch.

Every connection a holder opens carries the ``application_name``
``chaosrunner:<run_id>:<fault name>``. That name is in the revert record and is
the fallback when the holder cannot be asked: ``revert`` stops the holder and
then terminates every backend that still carries the name
(``pg_terminate_backend``), which still works after a ``kill -9`` of both
chaosrunner and the holder. Nothing else is ever terminated: the name must look
like ours before it is used in a query.

``check`` asks the server whether backends with the name still exist, because
that *is* the fault: a DBA who terminates them has ended it even though the
holder lives on. Only when the server cannot be asked does a live holder count.
"""

from __future__ import annotations

import hashlib
import re
import time
from abc import abstractmethod
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import Field

from chaosrunner.durations import Duration
from chaosrunner.errors import ChaosrunnerError, FaultError
from chaosrunner.faults import holder
from chaosrunner.faults.base import (
    Fault,
    FaultParams,
    FaultPlan,
    FaultRequest,
    RevertRecord,
    TargetRef,
)
from chaosrunner.faults.postgres import client

HOLDER_MODULE = "chaosrunner.faults.postgres.holder"
CONTROL_APPLICATION_NAME = "chaosrunner-control"
"""The name of chaosrunner's own short-lived sessions (plan, check, revert): never a fault's name."""

HOLDER_EXIT_WAIT = 2.0
"""Seconds revert gives a holder to exit after SIGTERM before it is killed. A
healthy one exits in well under a second; killing one is safe once its
backends are terminated (the server closes whatever it had open)."""

_OURS = re.compile(r"^chaosrunner:[^:]+:.+$")
_UNSAFE_NAME_CHARS = re.compile(r"[^\x21-\x7e]")  # the server shows non-ASCII as '?': keep names exact


class HoldParams(FaultParams):
    """Params every held PostgreSQL fault has: how long its holder may live."""

    grace: Duration = Field(
        timedelta(seconds=30),
        description="the holder outlives the fault's duration by this much, then ends the fault "
        "itself (dead-man's switch)",
    )
    max_hold: Duration = Field(
        timedelta(minutes=10),
        description="the holder's lifetime when the fault has no duration (dead-man's switch)",
    )
    connect_timeout: Duration = Field(
        timedelta(seconds=10), description="give up on a connection attempt after this long"
    )


def application_name(run_id: str, fault_name: str) -> str:
    """``chaosrunner:<run_id>:<fault>``, exact as the server will show it (<= 63 ASCII chars)."""
    name = _UNSAFE_NAME_CHARS.sub("_", f"chaosrunner:{run_id}:{fault_name}")
    if len(name) <= client.APPLICATION_NAME_LIMIT:
        return name
    # Truncated names of two faults could collide; a digest of the full name keeps them apart.
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: client.APPLICATION_NAME_LIMIT - 11]}~{digest}"


def is_ours(name: object) -> bool:
    """True for names this module makes: the guard before anything is terminated by name."""
    return isinstance(name, str) and bool(_OURS.match(name))


def holder_label(name: str) -> str:
    """A file-name-safe label for the holder (its log is ``<label>.log``)."""
    return "pg-" + re.sub(r"[^A-Za-z0-9_.-]", "-", name.removeprefix("chaosrunner:"))


def lifetime(params: HoldParams, duration: timedelta | None) -> float:
    """Seconds the holder lives: duration plus grace, or max_hold without a duration."""
    span = duration + params.grace if duration is not None else params.max_hold
    return span.total_seconds()


class HeldPostgresFault(Fault):
    """A PostgreSQL fault whose connections live in a holder process.

    Subclasses say what to hold (``resolve``: read-only look-ups on a control
    session, returning the holder's spec, the targets and a summary) and
    provide the holder body, dispatched by ``hold_kind`` in ``postgres.holder``.
    """

    hold_kind: ClassVar[str]
    ready_margin: ClassVar[float] = 30.0
    """Extra seconds the holder may take to become ready, on top of connect_timeout."""

    @abstractmethod
    def resolve(
        self, request: FaultRequest, session: client.PgSession
    ) -> tuple[dict[str, Any], list[TargetRef], str]:
        """Look the target up (no side effects); return (holder spec, targets, summary)."""

    def plan(self, request: FaultRequest) -> FaultPlan:
        params = request.params
        assert isinstance(params, HoldParams)
        dsn_env = request.connections.postgres.dsn_env
        name = application_name(request.run_id, request.name)
        with client.connect(
            dsn_env, CONTROL_APPLICATION_NAME, connect_timeout=params.connect_timeout.total_seconds()
        ) as session:
            spec, targets, summary = self.resolve(request, session)
        spec = {
            **spec,
            "hold_kind": self.hold_kind,
            "dsn_env": dsn_env,
            "application_name": name,
            "connect_timeout": params.connect_timeout.total_seconds(),
        }
        record: RevertRecord = {
            "kind": self.kind,
            "dsn_env": dsn_env,
            "application_name": name,
            "label": holder_label(name),
            "lifetime": lifetime(params, request.hold_for),
            "spec": spec,
            "holder": None,
            "deadline": None,
        }
        return FaultPlan(
            fault=request.name, kind=self.kind, targets=targets, revert_record=record, summary=summary
        )

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = dict(plan.revert_record)
        deadline = time.time() + float(record["lifetime"])
        spec = record["spec"]
        started = holder.spawn(
            HOLDER_MODULE,
            spec,
            deadline=deadline,
            label=record["label"],
            ready_timeout=float(spec["connect_timeout"]) + self.ready_margin + self.extra_ready_time(spec),
        )
        record["holder"] = started.as_dict()
        record["deadline"] = deadline
        return record

    def extra_ready_time(self, spec: dict[str, Any]) -> float:
        """Seconds beyond the default the holder may need before it is ready."""
        return 0.0

    def revert(self, record: RevertRecord) -> None:
        """Stop the holder, terminate its backends by name, and wait until both are gone.

        Terminating by name ends the fault at once, verifiably, and works even
        when the holder is dead (``kill -9``). Terminating is not enough on its
        own: a holder told to stop may be midway through opening a connection
        (``keep_exhausted`` re-takes freed slots), and that backend only shows
        the fault's name once its start-up is done - after our terminate. So
        revert waits for the holder to exit (SIGKILL past ``HOLDER_EXIT_WAIT``)
        and then terminates by name once more. With only the planned record
        (the injector died before journaling the holder's pid) the holder is
        found by its label.
        """
        started = record.get("holder")
        holders = (
            [holder.HolderRecord.from_dict(started)] if started else holder.find_by_label(record["label"])
        )
        for found in holders:
            holder.request_stop(found)
        terminate_backends(record["dsn_env"], record["application_name"])
        if holders:  # with none alive, nothing can have opened a connection since
            for found in holders:
                holder.stop(found, timeout=HOLDER_EXIT_WAIT)
            terminate_backends(record["dsn_env"], record["application_name"])

    def check(self, record: RevertRecord) -> bool:
        try:
            return bool(backends_named(record["dsn_env"], record["application_name"]))
        except ChaosrunnerError:
            # The server cannot be asked: a live holder is the best evidence left.
            started = record.get("holder")
            return isinstance(started, dict) and holder.is_alive(holder.HolderRecord.from_dict(started))


def backends_named(dsn_env: str, name: str) -> list[int]:
    """Pids of the backends carrying application_name ``name`` (never our own session)."""
    _refuse_foreign(name)
    with client.connect(dsn_env, CONTROL_APPLICATION_NAME) as session:
        rows = session.query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
            (name,),
        )
    return [int(row[0]) for row in rows]


def terminate_backends(dsn_env: str, name: str, wait: float = 10.0) -> int:
    """Terminate every backend named ``name`` and wait until they are gone; idempotent.

    Returns how many were asked to terminate. Raises FaultError if some are
    still there after ``wait`` seconds (the caller must not report success).
    """
    _refuse_foreign(name)
    with client.connect(dsn_env, CONTROL_APPLICATION_NAME) as session:
        rows = session.query(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        terminated = int(rows[0][0]) if rows else 0
        give_up = time.monotonic() + wait
        remaining: list[tuple[Any, ...]] = []
        while True:
            remaining = session.query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            if not remaining or time.monotonic() >= give_up:
                break
            time.sleep(0.05)
    if remaining:
        pids = ", ".join(str(row[0]) for row in remaining)
        raise FaultError(f"backends named {name!r} survived pg_terminate_backend: pids {pids}")
    return terminated


def _refuse_foreign(name: str) -> None:
    if not is_ours(name):
        raise FaultError(
            f"refusing to act on backends named {name!r}: not a chaosrunner fault's application_name"
        )
