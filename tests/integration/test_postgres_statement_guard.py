"""postgres.slow-queries runs a scenario's SQL in a loop: it must not be able to signal or write.

On the rig's real PostgreSQL. The server itself says which functions a query
calls and how volatile they are (see faults/postgres/slow_queries.py), so a
query that would terminate or cancel other sessions is refused in ``plan``,
before anything runs - and a bystander session survives.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import FaultRequest
from chaosrunner.faults.connections import Connections, PostgresConnection
from chaosrunner.faults.postgres.slow_queries import SlowQueries, SlowQueryParams
from tests.support.cli import run_chaosrunner

DSN_ENV = "CRT_GUARD_PG_DSN"
TERMINATE_EVERYONE = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"


@pytest.fixture(autouse=True)
def _state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture()
def target(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Connections:
    monkeypatch.setenv(DSN_ENV, postgres_dsn)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders AS SELECT generate_series(1, 100) AS id")
        conn.execute("CREATE SEQUENCE order_numbers")
    return Connections(postgres=PostgresConnection(dsn_env=DSN_ENV))


@pytest.fixture()
def bystander(postgres_dsn: str, unique_name: str) -> Iterator[psycopg.Connection]:
    """Someone else's session: it must still answer after every refusal."""
    with psycopg.connect(postgres_dsn, autocommit=True, application_name=f"{unique_name}-bystander") as conn:
        yield conn


def plan(target: Connections, unique_name: str, query: str) -> None:
    fault = SlowQueries()
    fault.plan(
        FaultRequest(
            run_id=unique_name,
            name="slow",
            params=SlowQueryParams(query=query),
            connections=target,
            duration=timedelta(seconds=30),
        )
    )


def alive(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        (TERMINATE_EVERYONE, "pg_terminate_backend(integer,bigint)"),
        ("SELECT pg_cancel_backend(pid) FROM pg_stat_activity", "pg_cancel_backend(integer)"),
        ('SELECT "pg_catalog"."pg_terminate_backend"(pid) FROM pg_stat_activity', "pg_terminate_backend("),
        (  # hidden in a subquery of a CTE, behind a join
            "WITH a AS (SELECT pid FROM pg_stat_activity) "
            "SELECT count(*) FROM orders, (SELECT pg_terminate_backend(pid) FROM a) t",
            "pg_terminate_backend(",
        ),
        ("SELECT set_config('default_transaction_read_only', 'off', false)", "set_config("),
        ("SELECT nextval('order_numbers')", "nextval(regclass)"),
    ],
)
def test_a_query_that_can_signal_or_change_state_is_refused_in_plan(
    target: Connections, unique_name: str, bystander: psycopg.Connection, query: str, named: str
) -> None:
    with pytest.raises(PlanRefused, match="volatile function") as refused:
        plan(target, unique_name, query)
    assert named in str(refused.value)
    assert alive(bystander)  # nothing ran


def test_heavy_read_only_queries_still_plan(target: Connections, unique_name: str) -> None:
    for query in (
        "SELECT pg_sleep(0.3), count(*) FROM orders",
        "SELECT count(*) FROM orders a JOIN orders b ON a.id < b.id WHERE random() >= 0",
        "SELECT now(), md5(id::text) FROM orders ORDER BY 2",
        "TABLE orders",
    ):
        plan(target, unique_name, query)
    # the check left nothing behind: its temporary view lived in a rolled-back transaction
    with psycopg.connect(os.environ[DSN_ENV]) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname = 'chaosrunner_query_guard'"
        ).fetchone() == (0,)


def test_a_run_with_a_terminating_query_exits_2_and_terminates_nobody(
    target: Connections,
    unique_name: str,
    bystander: psycopg.Connection,
    prometheus_url: str,
    tmp_path: Path,
) -> None:
    # Aimed at the bystander only (not every backend on the shared rig), so that if the
    # guard ever broke, this test would fail by its bystander dying, not take the rig down.
    query = f"{TERMINATE_EVERYONE} WHERE application_name = '{unique_name}-bystander'"
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(
        json.dumps(
            {
                "metadata": {"title": "guard", "owner": "t", "expected_severity": "P3", "hypothesis": "h"},
                "target": {"prometheus": prometheus_url, "postgres": {"dsn_env": DSN_ENV}},
                "faults": [
                    {
                        "name": "slow",
                        "kind": "postgres.slow-queries",
                        "duration": "5s",
                        "params": {"query": query},
                    }
                ],
                "gameday": {"max_duration": "1m"},
            }
        )
    )
    done = run_chaosrunner("run", "--plain", str(scenario), env={**os.environ})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "query calls volatile function(s) pg_terminate_backend(integer,bigint)" in done.stderr
    assert "Traceback" not in done.stderr
    assert alive(bystander)
