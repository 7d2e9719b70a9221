"""PostgreSQL faults: names, params and plan logic, with a fake at our own seam (client.connect)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from chaosrunner.errors import EnvironmentProblem, FaultError, PlanRefused
from chaosrunner.faults.base import FaultRequest
from chaosrunner.faults.connections import Connections, PostgresConnection
from chaosrunner.faults.postgres import client, exhaustion, held, locks, slow_queries
from chaosrunner.faults.postgres.exhaustion import ConnectionExhaustion, ExhaustionParams
from chaosrunner.faults.postgres.locks import LockContention, LockParams
from chaosrunner.faults.postgres.slow_queries import SlowQueries, SlowQueryParams

SECRET_DSN = "postgresql://app:hunter2@db.internal:5432/shop"


class FakeSession:
    """Answers the look-ups a plan makes; records what it was asked."""

    def __init__(self, answer: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]) -> None:
        self.answer = answer
        self.where = "app@db.internal:5432/shop"
        self.asked: list[str] = []

    def query(
        self, statement: str, params: Sequence[Any] = (), *, single: bool = False
    ) -> list[tuple[Any, ...]]:
        self.asked.append(" ".join(statement.split()))
        return self.answer(statement, params)

    def __enter__(self) -> FakeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture()
def fake_server(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeSession]:
    """Install a fake server: ``free`` server slots, roles as {name: (login, super, limit, in_use)}."""
    monkeypatch.setenv("CHAOSRUNNER_PG_DSN", SECRET_DSN)

    def install(free: int = 50, roles: dict[str, tuple[bool, bool, int, int]] | None = None) -> FakeSession:
        roles = roles or {}

        def answer(statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            if statement == exhaustion.SERVER_FREE_SLOTS:
                return [(free,)]
            if statement == exhaustion.ROLE_FACTS:
                role = roles.get(params[0])
                return [role[:3]] if role else []
            if statement == exhaustion.ROLE_FREE_SLOTS:
                *_, limit, in_use = roles[params[0]]
                return [(limit - in_use,)]
            if statement == locks.FIND_TABLE:
                name = params[0]
                return {
                    "orders": [("public", "orders", "r")],
                    "pg_class": [("pg_catalog", "pg_class", "r")],
                    "orders_idx": [("public", "orders_idx", "i")],
                }.get(name, [])
            raise AssertionError(f"unexpected statement {statement!r}")

        session = FakeSession(answer)
        monkeypatch.setattr(client, "connect", lambda *args, **kwargs: session)
        return session

    return install


def request(params: Any, name: str = "db-pool", duration: float | None = 60) -> FaultRequest:
    return FaultRequest(
        run_id="20250101-120000-abcdef",
        name=name,
        params=params,
        duration=timedelta(seconds=duration) if duration is not None else None,
    )


# ----------------------------------------------------------------------------- names


def test_application_name_says_run_and_fault() -> None:
    assert (
        held.application_name("20250101-120000-abcdef", "db-pool")
        == "chaosrunner:20250101-120000-abcdef:db-pool"
    )


def test_a_long_application_name_is_cut_to_what_the_server_keeps_and_stays_distinct() -> None:
    first = held.application_name("run", "f" * 80 + "one")
    second = held.application_name("run", "f" * 80 + "two")
    assert len(first) == client.APPLICATION_NAME_LIMIT == len(second)
    assert first != second and held.is_ours(first)


def test_non_ascii_is_replaced_so_the_name_matches_what_the_server_shows() -> None:
    assert held.application_name("rün", "x y") == "chaosrunner:r_n:x_y"


@pytest.mark.parametrize("name", ["", "app", "chaosrunner", "chaosrunner:", "chaosrunner::x", None, "%"])
def test_only_our_names_may_be_terminated(name: Any) -> None:
    assert not held.is_ours(name)
    with pytest.raises(FaultError, match="refusing"):
        held.terminate_backends("CHAOSRUNNER_PG_DSN", name)


def test_holder_label_is_a_safe_file_name() -> None:
    assert held.holder_label("chaosrunner:run/1:../x") == "pg-run-1-..-x"


def test_lifetime_is_duration_plus_grace_or_max_hold() -> None:
    params = ExhaustionParams(grace="5s", max_hold="2m")
    assert held.lifetime(params, timedelta(seconds=10)) == 15
    assert held.lifetime(params, None) == 120


# ----------------------------------------------------------------------------- params


@pytest.mark.parametrize(
    "bad",
    [
        {"leave_free": -1},
        {"pgbouncer_dsn_env": "not a var"},
        {"role": ""},
        {"max_connections": 0},
        {"grace": 30},
        {"unknown": 1},
    ],
)
def test_exhaustion_params_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ExhaustionParams(**bad)


def test_the_mode_follows_the_params() -> None:
    assert ExhaustionParams().mode() is exhaustion.Mode.SERVER
    assert ExhaustionParams(role="app").mode() is exhaustion.Mode.ROLE
    assert ExhaustionParams(role="app", pgbouncer_dsn_env="PGB").mode() is exhaustion.Mode.PGBOUNCER


def test_lock_mode_is_one_of_postgres_modes_and_the_statement_quotes_the_table() -> None:
    with pytest.raises(ValidationError):
        LockParams(table="t", mode="ACCESS EXCLUSIVE; DROP TABLE t")
    assert locks.lock_statement("public", 'we"ird', "SHARE") == 'LOCK TABLE "public"."we""ird" IN SHARE MODE'
    with pytest.raises(FaultError):
        locks.lock_statement("public", "t", "SHARE; DROP TABLE t")


def test_slow_query_params_are_bounded() -> None:
    with pytest.raises(ValidationError):
        SlowQueryParams(concurrency=0)
    assert SlowQueryParams().statement_duration == timedelta(seconds=5)


# ----------------------------------------------------------------------------- plans


def test_server_plan_counts_free_slots_and_keeps_the_dsn_out_of_the_record(
    fake_server: Callable[..., FakeSession],
) -> None:
    fake_server(free=40)
    plan = ConnectionExhaustion().plan(request(ExhaustionParams(leave_free=3)))
    # 40 free seen while our own control session was open: 41 once it closes, 3 stay free.
    assert "hold about 38 connections" in plan.summary
    record = plan.revert_record
    assert record["application_name"] == "chaosrunner:20250101-120000-abcdef:db-pool"
    assert record["holder"] is None and record["lifetime"] == 90
    assert record["spec"]["dsn_env"] == "CHAOSRUNNER_PG_DSN"
    text = json.dumps(record)
    assert "hunter2" not in text and SECRET_DSN not in text


def test_server_plan_with_nothing_to_exhaust_is_refused(fake_server: Callable[..., FakeSession]) -> None:
    fake_server(free=2)
    with pytest.raises(PlanRefused, match="nothing to exhaust"):
        ConnectionExhaustion().plan(request(ExhaustionParams(leave_free=3)))


def test_a_plan_above_the_ceiling_is_refused_not_trimmed(fake_server: Callable[..., FakeSession]) -> None:
    fake_server(free=500)
    with pytest.raises(PlanRefused, match="above max_connections=200"):
        ConnectionExhaustion().plan(request(ExhaustionParams()))


def test_role_plan_counts_the_roles_slots(fake_server: Callable[..., FakeSession]) -> None:
    fake_server(free=50, roles={"app": (True, False, 10, 4)})
    plan = ConnectionExhaustion().plan(request(ExhaustionParams(role="app", leave_free=1)))
    assert "hold about 5 connections" in plan.summary
    assert plan.targets[0].id == "role:app"
    assert plan.revert_record["spec"]["role"] == "app"


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ({}, "does not exist"),
        ({"app": (True, True, 10, 0)}, "superuser"),
        ({"app": (False, False, 10, 0)}, "cannot log in"),
        ({"app": (True, False, -1, 0)}, "no CONNECTION LIMIT"),
        ({"app": (True, False, 10, 10)}, "nothing to exhaust"),
        ({"app": (True, False, 100, 0)}, "starve every role"),
    ],
)
def test_role_plans_that_cannot_work_are_refused(
    fake_server: Callable[..., FakeSession], roles: dict[str, tuple[bool, bool, int, int]], message: str
) -> None:
    fake_server(free=20, roles=roles)
    with pytest.raises(PlanRefused, match=message):
        ConnectionExhaustion().plan(request(ExhaustionParams(role="app")))


def test_lock_plan_resolves_the_table_through_the_catalog(fake_server: Callable[..., FakeSession]) -> None:
    fake_server()
    plan = LockContention().plan(request(LockParams(table="orders", lock_timeout="1500ms")))
    spec = plan.revert_record["spec"]
    assert (spec["schema"], spec["table"], spec["mode"]) == ("public", "orders", "ACCESS EXCLUSIVE")
    assert spec["lock_timeout_ms"] == 1500 and spec["hold_kind"] == "lock"


@pytest.mark.parametrize(
    ("table", "message"),
    [("missing", "not found"), ("pg_class", "system relation"), ("orders_idx", "cannot be locked")],
)
def test_lock_plans_on_the_wrong_relation_are_refused(
    fake_server: Callable[..., FakeSession], table: str, message: str
) -> None:
    fake_server()
    with pytest.raises(PlanRefused, match=message):
        LockContention().plan(request(LockParams(table=table)))


def test_slow_query_plan_without_a_query_sleeps(fake_server: Callable[..., FakeSession]) -> None:
    session = fake_server()
    plan = SlowQueries().plan(request(SlowQueryParams(concurrency=3, statement_duration="2s")))
    assert plan.revert_record["spec"]["statement_seconds"] == 2
    assert "3 pg_sleep(2) statements" in plan.summary
    assert session.asked == []  # nothing to look up for pg_sleep


def test_a_query_that_is_not_a_read_is_refused_before_asking_the_server() -> None:
    session = FakeSession(lambda *_: pytest.fail("must not reach the server"))
    with pytest.raises(PlanRefused, match="must be a SELECT"):
        slow_queries.refuse_writing_query("slow", "DELETE FROM orders", session)  # type: ignore[arg-type]


def test_a_plan_that_modifies_data_is_refused() -> None:
    explain = [{"Plan": {"Node Type": "CTE Scan", "Plans": [{"Node Type": "ModifyTable"}]}}]
    session = FakeSession(lambda *_: [(explain,)])
    with pytest.raises(PlanRefused, match="modifies data"):
        slow_queries.refuse_writing_query(  # type: ignore[arg-type]
            "slow", "WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d", session
        )


def test_an_unset_dsn_variable_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRT_UNSET_DSN", raising=False)
    connections = Connections(postgres=PostgresConnection(dsn_env="CRT_UNSET_DSN"))
    req = FaultRequest(run_id="r", name="f", params=SlowQueryParams(), connections=connections)
    with pytest.raises(EnvironmentProblem, match="CRT_UNSET_DSN is not set"):
        SlowQueries().plan(req)


def test_error_messages_are_scrubbed_of_the_dsn_and_its_password() -> None:
    text = client._scrub(f"could not connect with {SECRET_DSN} (password hunter2)", SECRET_DSN)
    assert "hunter2" not in text and SECRET_DSN not in text


def test_the_holder_dispatches_by_kind_and_refuses_unknown_ones() -> None:
    from chaosrunner.faults.postgres import holder

    assert set(holder.HOLDERS) == {"exhaustion", "lock", "slow-queries"}
    with pytest.raises(FaultError, match="unknown PostgreSQL holder kind"):
        holder.hold({"hold_kind": "nope"}, None)  # type: ignore[arg-type]


def test_importing_the_backend_does_not_load_psycopg() -> None:
    probe = "import sys, chaosrunner.faults.postgres.holder; print('psycopg' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
