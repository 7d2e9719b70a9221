"""``postgres.lock-contention``: a table lock held in an open transaction.

The holder opens one session, ``BEGIN``, ``LOCK TABLE ... IN <mode> MODE``
and stays idle in that transaction; every other session whose statement
conflicts with the mode queues behind it (``ACCESS EXCLUSIVE`` blocks even
plain ``SELECT``). Revert ends the session, which rolls the transaction back.

The lock statement itself waits at most ``lock_timeout``: if the table is busy
the inject fails instead of hanging, and while it waits it is already queued
ahead of later requests, exactly like the migration that causes this incident
in real life. System catalogs are refused: a lock there stops the server, not
a table.

Server-side guards are honoured, not overridden: an
``idle_in_transaction_session_timeout`` ends the fault early, and ``check``
reports it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, get_args

from pydantic import Field

from chaosrunner.durations import Duration
from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults.base import FaultRequest, TargetRef
from chaosrunner.faults.holder import HolderSession
from chaosrunner.faults.postgres import client
from chaosrunner.faults.postgres.held import HeldPostgresFault, HoldParams
from chaosrunner.faults.registry import register

SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})
LOCKABLE_KINDS = {"r": "table", "p": "partitioned table", "v": "view", "f": "foreign table"}

FIND_TABLE = """
SELECT n.nspname, c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = to_regclass(%s)
"""


LockMode = Literal[
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
]
"""PostgreSQL's table lock modes, weakest first."""
LOCK_MODES: tuple[str, ...] = get_args(LockMode)


class LockParams(HoldParams):
    table: str = Field(
        min_length=1,
        max_length=200,
        description='table to lock, as SQL names it: orders, public.orders, "Mixed Case"',
    )
    mode: LockMode = Field(
        "ACCESS EXCLUSIVE",
        description="lock mode; ACCESS EXCLUSIVE blocks every reader and writer, EXCLUSIVE lets "
        "plain SELECTs through, SHARE blocks writers only",
    )
    lock_timeout: Duration = Field(
        timedelta(seconds=10),
        description="fail the inject if the lock is not granted within this long",
    )


@register
class LockContention(HeldPostgresFault):
    kind = "postgres.lock-contention"
    summary = (
        "Hold a table lock (ACCESS EXCLUSIVE by default) in an open transaction so conflicting "
        "queries queue; revert ends the transaction (holder with a deadline)."
    )
    Params = LockParams
    hold_kind = "lock"

    def resolve(
        self, request: FaultRequest, session: client.PgSession
    ) -> tuple[dict[str, Any], list[TargetRef], str]:
        params = request.params
        assert isinstance(params, LockParams)
        rows = session.query(FIND_TABLE, (params.table,))
        if not rows:
            raise PlanRefused(f"fault {request.name!r}: table {params.table!r} not found in {session.where}")
        schema, table, relkind = rows[0]
        if schema in SYSTEM_SCHEMAS or schema.startswith("pg_temp") or schema.startswith("pg_toast"):
            raise PlanRefused(
                f"fault {request.name!r}: {schema}.{table} is a system relation; locking it "
                "would stop the server, not a table"
            )
        if relkind not in LOCKABLE_KINDS:
            raise PlanRefused(
                f"fault {request.name!r}: {schema}.{table} cannot be locked (relkind {relkind!r})"
            )
        spec = {
            "schema": schema,
            "table": table,
            "mode": params.mode,
            "lock_timeout_ms": max(1, round(params.lock_timeout.total_seconds() * 1000)),
        }
        target = TargetRef(id=f"table:{schema}.{table}", name=f"{LOCKABLE_KINDS[relkind]} {schema}.{table}")
        summary = f"hold {params.mode} on {schema}.{table} in an open transaction on {session.where}"
        return spec, [target], summary

    def extra_ready_time(self, spec: dict[str, Any]) -> float:
        return float(spec["lock_timeout_ms"]) / 1000


def lock_statement(schema: str, table: str, mode: str) -> str:
    """``LOCK TABLE "s"."t" IN <mode> MODE``; the mode must be one of LOCK_MODES (it is SQL text)."""
    if mode not in LOCK_MODES:
        raise FaultError(f"unknown lock mode {mode!r}; expected one of {', '.join(LOCK_MODES)}")
    return f"LOCK TABLE {client.identifier(schema, table)} IN {mode} MODE"


def hold(spec: dict[str, Any], session: HolderSession) -> None:
    """Take the lock, report ready, keep the transaction open until told or the deadline."""
    with client.connect(
        spec["dsn_env"], spec["application_name"], connect_timeout=spec["connect_timeout"]
    ) as connection:
        connection.execute("BEGIN")
        connection.execute("SELECT set_config('lock_timeout', %s, true)", (f"{spec['lock_timeout_ms']}ms",))
        connection.execute(lock_statement(spec["schema"], spec["table"], spec["mode"]))
        session.ready()
        session.wait()
        # Closing rolls the transaction back: the lock goes with it.
