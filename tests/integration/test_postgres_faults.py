"""PostgreSQL faults against the rig's real PostgreSQL 15 and pgbouncer.

Each test injects, watches the effect the way an application would see it,
reverts, watches it go, and reverts again as a no-op. The dead-man's-switch
tests kill the injecting process with SIGKILL and time how long after its
deadline the holder ended the fault by itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults import holder
from chaosrunner.faults.base import Fault, FaultParams, FaultRequest, RevertRecord
from chaosrunner.faults.connections import Connections, PostgresConnection
from chaosrunner.faults.postgres import held
from chaosrunner.faults.postgres.exhaustion import ConnectionExhaustion, ExhaustionParams
from chaosrunner.faults.postgres.locks import LockContention, LockParams
from chaosrunner.faults.postgres.slow_queries import SlowQueries, SlowQueryParams
from tests.conftest import REPO
from tests.support import late_connect_holder
from tests.support.injector import inject_and_die

DSN_ENV = "CRT_PG_DSN"
POOL_ENV = "CRT_PGBOUNCER_DSN"


@pytest.fixture(autouse=True)
def _state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture()
def target(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Connections:
    """Connection settings for this test's database; the DSN only in the environment."""
    monkeypatch.setenv(DSN_ENV, postgres_dsn)
    return Connections(postgres=PostgresConnection(dsn_env=DSN_ENV))


@pytest.fixture()
def app_role(postgres_superuser_dsn: str, unique_name: str) -> Iterator[str]:
    """A login role for "the application", with CONNECTION LIMIT 4; dropped after the test."""
    role = f"{unique_name}_app"
    with psycopg.connect(postgres_superuser_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 4')
    yield role
    with psycopg.connect(postgres_superuser_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        for _ in range(100):
            if not conn.execute("SELECT 1 FROM pg_stat_activity WHERE usename = %s", (role,)).fetchall():
                break
            time.sleep(0.05)
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def request(
    fault: Fault, target: Connections, unique_name: str, params: FaultParams, duration: float = 60
) -> FaultRequest:
    return FaultRequest(
        run_id=unique_name,
        name=fault.kind.split(".")[1],
        params=params,
        connections=target,
        duration=timedelta(seconds=duration),
    )


def named_backends(dsn: str, record: RevertRecord) -> list[tuple[Any, ...]]:
    """(pid, state, query_start) of every backend carrying the fault's application_name."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, state, query_start FROM pg_stat_activity WHERE application_name = %s",
            (record["application_name"],),
        ).fetchall()


def app_connects(dsn: str, role: str, attempts: int = 4) -> list[str]:
    """What an application connecting as ``role`` sees: "ok" or the error, per attempt (all kept open)."""
    opened, results = [], []
    try:
        for _ in range(attempts):
            try:
                opened.append(psycopg.connect(dsn, user=role, connect_timeout=3))
                results.append("ok")
            except psycopg.OperationalError as exc:
                results.append(str(exc))
    finally:
        for conn in opened:
            conn.close()
    return results


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> float:
    """Seconds until ``predicate()`` held; fails the test after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - started


def inject_then_die(
    fault: Fault, target: Connections, unique_name: str, params: dict[str, Any], duration: float
) -> RevertRecord:
    """Plan and inject in a child process that is SIGKILLed right after; return its record."""
    return inject_and_die(
        type(fault),
        run_id=unique_name,
        name=fault.kind.split(".")[1],
        params=params,
        connections=target.model_dump(mode="json"),
        duration=duration,
    )


def time_past_deadline_until_released(dsn: str, record: RevertRecord) -> float:
    """Checks the fault holds up to its deadline, then returns how long after it the backends were gone."""
    deadline = float(record["deadline"])
    while time.time() < deadline - 0.5:
        assert named_backends(dsn, record), "the fault ended before its deadline"
        time.sleep(0.1)
    while named_backends(dsn, record):
        assert time.time() < deadline + 15, "the holder did not end the fault after its deadline"
        time.sleep(0.02)
    return time.time() - deadline


# ----------------------------------------------------------------------------- connection exhaustion


def test_role_pool_starves_while_held_and_recovers_after_revert(
    target: Connections, postgres_dsn: str, app_role: str, unique_name: str
) -> None:
    assert app_connects(postgres_dsn, app_role) == ["ok"] * 4
    fault = ConnectionExhaustion()
    plan = fault.plan(request(fault, target, unique_name, ExhaustionParams(role=app_role, leave_free=1)))
    assert plan.targets[0].id == f"role:{app_role}"
    record = fault.inject(plan)
    try:
        held = named_backends(postgres_dsn, record)
        assert len(held) == 3  # CONNECTION LIMIT 4, leave_free 1
        assert fault.check(record)
        # The application gets the one slot left, then starves.
        seen = app_connects(postgres_dsn, app_role)
        assert seen[0] == "ok"
        assert all("too many connections for role" in error for error in seen[1:]), seen
    finally:
        fault.revert(record)
    assert named_backends(postgres_dsn, record) == []
    assert not fault.check(record)
    assert app_connects(postgres_dsn, app_role) == ["ok"] * 4
    fault.revert(record)  # a second revert is a no-op
    assert not fault.check(record)


def test_revert_outlasts_a_connection_the_holder_opens_while_stopping(
    target: Connections, postgres_dsn: str, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slot re-taken just as revert arrives: revert returns only once it is gone as well."""
    monkeypatch.setattr(held, "HOLDER_MODULE", "tests.support.late_connect_holder")
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the holder process imports it from tests/
    fault = ConnectionExhaustion()
    record = fault.inject(fault.plan(request(fault, target, unique_name, ExhaustionParams(leave_free=1))))
    assert len(named_backends(postgres_dsn, record)) == 1
    fault.revert(record)
    watched = []
    for _ in range(round((late_connect_holder.LATE_BY + late_connect_holder.KEPT_FOR) / 0.05) + 4):
        watched.append(named_backends(postgres_dsn, record))
        time.sleep(0.05)
    assert not any(watched), watched
    assert not holder.is_alive(holder.HolderRecord.from_dict(record["holder"]))


def test_server_exhaustion_leaves_ordinary_roles_no_slot(
    target: Connections, postgres_dsn: str, postgres_superuser_dsn: str, app_role: str, unique_name: str
) -> None:
    """The classic incident: max_connections reached. Held as briefly as possible (the rig is shared)."""
    fault = ConnectionExhaustion()
    record = fault.inject(fault.plan(request(fault, target, unique_name, ExhaustionParams(leave_free=0))))
    try:
        with pytest.raises(psycopg.OperationalError, match=r"connection slots are reserved|too many clients"):
            psycopg.connect(postgres_dsn, user=app_role, connect_timeout=3).close()
        # The holder re-takes freed slots every 20 ms and connects as the DSN's user, a superuser
        # here: give it fifty chances to take the superuser-reserved slots, which it must not.
        time.sleep(1.0)
        with psycopg.connect(postgres_superuser_dsn) as conn:  # superusers keep their reserved slots
            free = conn.execute(
                "SELECT current_setting('max_connections')::int"
                " - current_setting('superuser_reserved_connections')::int"
                " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
            ).fetchone()
        assert free is not None and free[0] <= 0
        held = len(named_backends(postgres_dsn, record))
    finally:
        fault.revert(record)
    assert held > 10
    assert named_backends(postgres_dsn, record) == []
    assert app_connects(postgres_dsn, app_role, attempts=1) == ["ok"]
    fault.revert(record)


def test_pgbouncer_pool_is_held_and_clients_queue_until_revert(
    target: Connections,
    postgres_dsn: str,
    pgbouncer_dsn: str,
    unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(POOL_ENV, pgbouncer_dsn)
    fault = ConnectionExhaustion()
    plan = fault.plan(request(fault, target, unique_name, ExhaustionParams(pgbouncer_dsn_env=POOL_ENV)))
    assert plan.targets[0].name.startswith("pgbouncer pool ")
    record = fault.inject(plan)
    answered = threading.Event()
    app = psycopg.connect(pgbouncer_dsn, autocommit=True)
    try:
        held = named_backends(postgres_dsn, record)
        assert len(held) == 10  # the rig's default_pool_size
        assert {state for _, state, _ in held} == {"idle in transaction"}
        # An application query through the pool waits for a server connection.
        worker = threading.Thread(target=lambda: (app.execute("SELECT 1"), answered.set()), daemon=True)
        worker.start()
        assert not answered.wait(2.0), "the application got a server connection from a held pool"
    finally:
        fault.revert(record)
    waited = wait_until(answered.is_set, timeout=10)
    app.close()
    assert waited < 2.0
    assert named_backends(postgres_dsn, record) == []
    assert not fault.check(record)
    fault.revert(record)


# ----------------------------------------------------------------------------- lock contention


def test_lock_blocks_other_sessions_until_revert(
    target: Connections, postgres_dsn: str, unique_name: str
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int)")
    fault = LockContention()
    record = fault.inject(fault.plan(request(fault, target, unique_name, LockParams(table="orders"))))
    try:
        assert fault.check(record)
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            locks = conn.execute(
                "SELECT l.mode, l.granted FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE a.application_name = %s AND l.relation = 'orders'::regclass",
                (record["application_name"],),
            ).fetchall()
            assert locks == [("AccessExclusiveLock", True)]
            conn.execute("SET lock_timeout = '500ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                conn.execute("SELECT count(*) FROM orders")
    finally:
        fault.revert(record)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '500ms'")
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (0,)
    assert not fault.check(record)
    fault.revert(record)


def test_a_busy_table_fails_the_inject_instead_of_hanging(
    target: Connections, postgres_dsn: str, unique_name: str
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int)")
    fault = LockContention()
    plan = fault.plan(request(fault, target, unique_name, LockParams(table="orders", lock_timeout="700ms")))
    with psycopg.connect(postgres_dsn) as reader:
        reader.execute("SELECT count(*) FROM orders")  # holds ACCESS SHARE in its open transaction
        started = time.monotonic()
        with pytest.raises(FaultError, match="lock timeout"):
            fault.inject(plan)
        assert time.monotonic() - started < 10
    fault.revert(plan.revert_record)  # the planned record alone is a valid revert
    assert not fault.check(plan.revert_record)


def test_system_catalogs_are_never_locked(target: Connections, unique_name: str) -> None:
    fault = LockContention()
    with pytest.raises(PlanRefused, match="system relation"):
        fault.plan(request(fault, target, unique_name, LockParams(table="pg_catalog.pg_class")))


# ----------------------------------------------------------------------------- slow queries


def test_slow_queries_keep_n_statements_running_until_revert(
    target: Connections, postgres_dsn: str, unique_name: str
) -> None:
    fault = SlowQueries()
    params = SlowQueryParams(concurrency=3, statement_duration="1s")
    record = fault.inject(fault.plan(request(fault, target, unique_name, params)))
    try:
        wait_until(lambda: len([b for b in named_backends(postgres_dsn, record) if b[1] == "active"]) == 3, 5)
        first = {pid: started for pid, _, started in named_backends(postgres_dsn, record)}
        time.sleep(1.6)
        later = named_backends(postgres_dsn, record)
        assert {pid for pid, _, _ in later} == set(first)  # the same three sessions ...
        assert all(started > first[pid] for pid, _, started in later)  # ... each re-issued its statement
        assert fault.check(record)
    finally:
        started_revert = time.monotonic()
        fault.revert(record)
    assert time.monotonic() - started_revert < 3
    assert named_backends(postgres_dsn, record) == []
    fault.revert(record)


def test_a_scenario_query_runs_read_only_and_writing_queries_are_refused(
    target: Connections, postgres_dsn: str, unique_name: str
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders AS SELECT generate_series(1, 1000) AS id")
    fault = SlowQueries()
    for query in (
        "WITH d AS (DELETE FROM orders RETURNING 1) SELECT * FROM d",
        "SELECT 1; DROP TABLE orders",
    ):
        with pytest.raises(PlanRefused):
            fault.plan(request(fault, target, unique_name, SlowQueryParams(query=query)))
    params = SlowQueryParams(concurrency=2, query="SELECT pg_sleep(0.3), count(*) FROM orders")
    record = fault.inject(fault.plan(request(fault, target, unique_name, params)))
    try:
        wait_until(lambda: len(named_backends(postgres_dsn, record)) == 2, 5)
    finally:
        fault.revert(record)
    assert named_backends(postgres_dsn, record) == []
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (1000,)


# ------------------------------------------------------------------- fallback and dead-man's switch


def test_revert_from_the_planned_record_terminates_backends_of_a_hung_holder(
    target: Connections, postgres_dsn: str, unique_name: str
) -> None:
    """inject died before returning its record, and the holder hangs: the name is enough, and the
    holder, found by its label, is killed once it has had its chance to exit."""
    fault = SlowQueries()
    plan = fault.plan(
        request(fault, target, unique_name, SlowQueryParams(concurrency=2, statement_duration="30s"))
    )
    record = fault.inject(plan)
    holder_pid = record["holder"]["pid"]
    os.kill(holder_pid, signal.SIGSTOP)  # a holder that can no longer act
    try:
        assert len(named_backends(postgres_dsn, record)) == 2
        fault.revert(plan.revert_record)  # no holder in it: pg_terminate_backend by application_name
        assert named_backends(postgres_dsn, record) == []
        assert not holder.is_alive(holder.HolderRecord.from_dict(record["holder"]))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(holder_pid, signal.SIGKILL)
        fault.revert(record)
    assert not fault.check(record)


@pytest.mark.parametrize(
    ("fault", "params"),
    [
        (SlowQueries(), {"concurrency": 2, "statement_duration": "30s", "grace": "1s"}),
        (LockContention(), {"table": "orders", "grace": "1s"}),
        (ConnectionExhaustion(), {"role": "APP", "grace": "1s"}),
    ],
    ids=["slow-queries", "lock-contention", "connection-exhaustion"],
)
def test_the_holder_ends_the_fault_at_its_deadline_when_the_injector_is_killed(
    fault: Fault,
    params: dict[str, Any],
    target: Connections,
    postgres_dsn: str,
    app_role: str,
    unique_name: str,
    record_property: Any,
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int)")
    params = {key: app_role if value == "APP" else value for key, value in params.items()}
    # The deadline leaves room for the child's start-up on a loaded machine: the fault must
    # still be held when the record reaches us, or the check below would see it already ended.
    record = inject_then_die(fault, target, unique_name, params, duration=6.0)
    assert named_backends(postgres_dsn, record)
    lag = time_past_deadline_until_released(postgres_dsn, record)
    record_property("released_after_deadline_s", round(lag, 3))
    print(f"\n{fault.kind}: released {lag:.3f}s after the deadline")
    assert -0.5 < lag < 3.0
    assert not fault.check(record)
    fault.revert(record)  # recover after the switch fired: a no-op


def test_pgbouncer_dsn_is_never_in_the_record(
    target: Connections, pgbouncer_dsn: str, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rig's pgbouncer trusts local clients, so it never asks for this password; libpq
    # still holds it, which is what a leak would copy. Without one the check below proves nothing.
    secret = f"pw-{unique_name}"
    parts = urllib.parse.urlsplit(pgbouncer_dsn)
    assert parts.username and parts.password is None, "the rig's DSN changed: adjust the test"
    with_password = urllib.parse.urlunsplit(
        parts._replace(netloc=f"{parts.username}:{secret}@{parts.hostname}:{parts.port}")
    )
    monkeypatch.setenv(POOL_ENV, with_password)
    fault = ConnectionExhaustion()
    plan = fault.plan(request(fault, target, unique_name, ExhaustionParams(pgbouncer_dsn_env=POOL_ENV)))
    text = json.dumps(plan.revert_record) + plan.summary + json.dumps([t.model_dump() for t in plan.targets])
    assert secret not in text and with_password not in text and os.environ[DSN_ENV] not in text
    # What people do see: the pool named without its secret, and the variable that holds the DSN.
    where = f"{parts.username}@{parts.hostname}:{parts.port}/{unique_name}"
    assert f"pgbouncer pool {where}" in plan.summary
    assert plan.revert_record["spec"]["pgbouncer_dsn_env"] == POOL_ENV
