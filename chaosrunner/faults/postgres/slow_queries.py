"""``postgres.slow-queries``: N statements kept running at once, for as long as the fault lasts.

The holder opens ``concurrency`` sessions and runs one statement on each in a
loop: ``pg_sleep(statement_duration)`` by default, which occupies a backend and
a connection without load, or the scenario's own heavy ``query`` when the point
is to burn CPU and I/O. Each statement is re-issued the moment it ends, so the
server sees N active statements until revert (which cancels them) or the
holder's deadline.

A scenario's query is SQL from a file, and it runs in a loop, so it is fenced
four ways:

- ``plan`` EXPLAINs it with the extended protocol (one statement only) and
  refuses any plan that modifies data;
- ``plan`` asks the *database* which functions the query calls: it defines the
  query as a temporary view inside a transaction it rolls back, and reads the
  function ids in the view's stored parse tree (functions, aggregates, window
  functions and the functions behind operators) with their volatility from
  ``pg_proc``. Any volatile function is
  refused - ``pg_terminate_backend``, ``pg_cancel_backend``, ``set_config``,
  ``nextval``, ``dblink_exec``, ``lo_import`` … - except a few in pg_catalog
  that only take time or make numbers up (``pg_sleep``, ``random``,
  ``clock_timestamp`` …; ``HARMLESS_VOLATILE``). This is the server's own
  resolution of names, overloads, operators and search_path, not matching on
  the SQL text, so quoting or schema-qualifying a name does not get past it.
  Where no temporary view can be made (a hot standby, no TEMP privilege) the
  query cannot be checked and is refused: use the default pg_sleep statements;
- the holder's sessions are read-only (``default_transaction_read_only``);
- the holder sends it with the extended protocol too.

A function someone *declared* stable or immutable although it signals or
writes is trusted as declared: creating one takes privileges a scenario file
does not have. Every session sets ``client_connection_check_interval`` (from
PostgreSQL 14), so a statement notices within a second that its holder was
killed instead of running to its end.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from pydantic import Field

from chaosrunner.durations import Duration
from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults.base import FaultRequest, TargetRef
from chaosrunner.faults.holder import HolderSession
from chaosrunner.faults.postgres import client
from chaosrunner.faults.postgres.held import HeldPostgresFault, HoldParams
from chaosrunner.faults.registry import register

log = logging.getLogger(__name__)

SLEEP_STATEMENT = "SELECT pg_sleep(%s)"
READ_ONLY_STARTS = ("select", "with", "values", "table")
HARMLESS_VOLATILE = frozenset(
    {
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
        "random",
        "clock_timestamp",
        "timeofday",
        "gen_random_uuid",
    }
)
"""Volatile pg_catalog functions a slow query may call: they take time or make numbers, nothing else."""
GUARD_VIEW = "chaosrunner_query_guard"
VOLATILE_CALLS = r"""
    WITH tree AS (
        SELECT ev_action::text AS nodes FROM pg_catalog.pg_rewrite
        WHERE ev_class = 'pg_temp.chaosrunner_query_guard'::regclass
    ), called AS (
        SELECT m[2]::oid AS function
        FROM tree, regexp_matches(tree.nodes, ':(funcid|opfuncid|aggfnoid|winfnoid) (\d+)', 'g') AS m
        UNION
        SELECT o.oprcode::oid
        FROM tree, regexp_matches(tree.nodes, ':opno (\d+)', 'g') AS m
        JOIN pg_catalog.pg_operator o ON o.oid = m[1]::oid
    )
    SELECT n.nspname, p.proname, p.oid::regprocedure::text
    FROM called JOIN pg_catalog.pg_proc p ON p.oid = called.function
    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE p.provolatile = 'v'
    ORDER BY 3
"""
"""Volatile functions in the guard view's stored parse tree (the server's ``pg_node_tree``
of the query it resolved: function, operator, aggregate and window function ids). The
tree is read, not ``pg_depend``: dependencies on built-in functions are never recorded."""


class SlowQueryParams(HoldParams):
    concurrency: int = Field(4, ge=1, le=500, description="statements running at once, one connection each")
    statement_duration: Duration = Field(
        timedelta(seconds=5),
        description="length of each pg_sleep statement; each is re-issued as soon as it ends",
    )
    query: str | None = Field(
        None,
        min_length=1,
        max_length=10_000,
        description="a heavy read-only query to run instead of pg_sleep (one statement; plans that "
        "modify data, and calls of volatile functions such as pg_terminate_backend, are refused)",
    )


@register
class SlowQueries(HeldPostgresFault):
    kind = "postgres.slow-queries"
    summary = (
        "Keep N slow statements (pg_sleep or a read-only heavy query) running, re-issued until the end; "
        "revert cancels them (holder with a deadline, pg_terminate_backend fallback)."
    )
    Params = SlowQueryParams
    hold_kind = "slow-queries"

    def resolve(
        self, request: FaultRequest, session: client.PgSession
    ) -> tuple[dict[str, Any], list[TargetRef], str]:
        params = request.params
        assert isinstance(params, SlowQueryParams)
        if params.query is not None:
            refuse_writing_query(request.name, params.query, session)
            what = "copies of the scenario's query"
        else:
            what = f"pg_sleep({params.statement_duration.total_seconds():g}) statements"
        spec = {
            "concurrency": params.concurrency,
            "query": params.query,
            "statement_seconds": params.statement_duration.total_seconds(),
        }
        target = TargetRef(id="database", name=f"PostgreSQL {session.where}")
        summary = f"keep {params.concurrency} {what} running on {session.where}"
        return spec, [target], summary

    def extra_ready_time(self, spec: dict[str, Any]) -> float:
        return spec["concurrency"] * 0.05


def refuse_writing_query(fault: str, query: str, session: client.PgSession) -> None:
    """PlanRefused unless ``query`` is one statement whose plan modifies nothing."""
    if not query.lstrip().lower().startswith(READ_ONLY_STARTS):
        raise PlanRefused(f"fault {fault!r}: query must be a SELECT, WITH, VALUES or TABLE statement")
    try:
        rows = session.query(f"EXPLAIN (FORMAT JSON) {query}", single=True)
    except FaultError as exc:
        raise PlanRefused(f"fault {fault!r}: query does not plan: {exc}") from exc
    if _has_node(rows[0][0] if rows else [], "ModifyTable"):
        raise PlanRefused(f"fault {fault!r}: query modifies data; slow-queries only runs read-only queries")
    refused = [
        signature
        for schema, name, signature in volatile_calls(fault, query, session)
        if not (schema == "pg_catalog" and name in HARMLESS_VOLATILE)
    ]
    if refused:
        raise PlanRefused(
            f"fault {fault!r}: query calls volatile function(s) {', '.join(refused)}, which may signal "
            "other sessions or change state; slow-queries runs only queries whose functions are "
            f"immutable or stable (or {', '.join(sorted(HARMLESS_VOLATILE))})"
        )


def volatile_calls(fault: str, query: str, session: client.PgSession) -> list[tuple[str, str, str]]:
    """(schema, name, signature) of every volatile function the query calls, as the server resolves it.

    The query becomes a temporary view in a transaction that is always rolled
    back: defining a view parses and resolves it (without running it) and
    records what it depends on.
    """
    session.execute("BEGIN")
    try:
        session.execute("SET LOCAL statement_timeout = '10s'")
        try:
            # Wrapped, so a query with a void column (pg_sleep) still makes a view; the newline
            # ends a trailing -- comment, so the closing parenthesis cannot be commented out.
            session.query(
                f"CREATE TEMP VIEW {GUARD_VIEW} AS SELECT 1 FROM (\n{query}\n) AS guard", single=True
            )
        except FaultError as exc:
            raise PlanRefused(
                f"fault {fault!r}: cannot check which functions the query calls (it is defined as a "
                f"temporary view for that, which needs the TEMP privilege and a primary server): {exc}"
            ) from exc
        return [(str(a), str(b), str(c)) for a, b, c in session.query(VOLATILE_CALLS)]
    finally:
        session.execute("ROLLBACK")


def _has_node(plan: Any, node_type: str) -> bool:
    if isinstance(plan, dict):
        return plan.get("Node Type") == node_type or any(
            _has_node(value, node_type) for value in plan.values()
        )
    if isinstance(plan, list):
        return any(_has_node(item, node_type) for item in plan)
    return False


# ----------------------------------------------------------------------------- the holder side


def hold(spec: dict[str, Any], session: HolderSession) -> None:
    """Start the statements, report ready, keep them running until told or the deadline."""
    statement: tuple[str, tuple[Any, ...], bool] = (
        (spec["query"], (), True)
        if spec.get("query")
        else (SLEEP_STATEMENT, (spec["statement_seconds"],), False)
    )
    stop = threading.Event()
    alive = _Countdown(spec["concurrency"], session.stopping)
    workers: list[_Worker] = []
    try:
        for _ in range(spec["concurrency"]):
            connection = client.connect(
                spec["dsn_env"], spec["application_name"], connect_timeout=spec["connect_timeout"]
            )
            workers.append(_Worker(connection, statement, stop, alive))
            prepare_session(connection)
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.began.wait()
        session.ready()
        session.wait()
    finally:
        stop.set()
        for worker in workers:
            worker.finish()


def prepare_session(connection: client.PgSession) -> None:
    """Read-only, and quick to notice a dead client (PostgreSQL 14+; older servers skip it)."""
    connection.execute("SELECT set_config('default_transaction_read_only', 'on', false)")
    try:
        connection.execute("SELECT set_config('client_connection_check_interval', '1000', false)")
    except FaultError:
        log.info("server has no client_connection_check_interval; a killed holder's statements run out")


class _Countdown:
    """Ends the holder early when every worker has stopped on its own (e.g. a DBA killed them)."""

    def __init__(self, count: int, done: threading.Event) -> None:
        self._count = count
        self._done = done
        self._lock = threading.Lock()

    def worker_ended(self) -> None:
        with self._lock:
            self._count -= 1
            if self._count == 0:
                self._done.set()


class _Worker:
    """One connection running one statement after another until ``stop``."""

    def __init__(
        self,
        connection: client.PgSession,
        statement: tuple[str, tuple[Any, ...], bool],
        stop: threading.Event,
        alive: _Countdown,
    ) -> None:
        self.connection = connection
        self.statement = statement
        self.stop = stop
        self.alive = alive
        self.began = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> None:
        """Cancel until the thread notices (it may be between two statements), then close."""
        while self.thread.is_alive():
            self.connection.cancel()
            self.thread.join(0.2)
        self.connection.close()

    def _run(self) -> None:
        text, params, single = self.statement
        self.began.set()
        try:
            while not self.stop.is_set():
                try:
                    self.connection.execute(text, params, single=single)
                except client.StatementCanceled:
                    continue  # our own cancel (the loop ends) or a statement_timeout (run it again)
                except FaultError as exc:
                    log.warning("slow statement stopped on backend %s: %s", self.connection.backend_pid, exc)
                    return
        finally:
            self.alive.worker_ended()
