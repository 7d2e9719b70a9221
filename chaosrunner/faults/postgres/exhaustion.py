"""``postgres.connection-exhaustion``: the classic "connection pool exhausted on db-primary".

The holder opens connections until the limit the application runs into has at
most ``leave_free`` slots left, and keeps them open. Three limits, three modes:

server
    ``max_connections`` minus the superuser-reserved slots minus what is in
    use. The count is re-read after every batch, because the application keeps
    connecting and disconnecting while we fill.
role (``role``)
    The role's ``CONNECTION LIMIT`` (``pg_roles.rolconnlimit`` minus its
    backends in ``pg_stat_activity``); the holder connects *as* that role, which
    is the only way to use its slots. Refused when the server has fewer free
    slots than the role (that would starve everyone, not the role) and for
    superusers (the server does not apply the limit to them).
pgbouncer (``pgbouncer_dsn_env``)
    A pool's server connections. pgbouncer does not say how big a pool is to
    ordinary users, so the holder finds out: it opens clients through the
    pgbouncer DSN, each holding an open transaction (which pins a server
    connection in session and transaction pooling alike), until one waits
    longer than ``pool_probe_timeout`` for a server. Then the pool is full; it
    releases ``leave_free`` of them. Application clients of that pool now wait
    in pgbouncer's queue.

``max_connections`` is a ceiling, never trimmed to: a server that would need
more is refused in ``plan`` (the author's picture of the target was wrong).

With ``keep_exhausted`` (the default, server and role modes) the holder then
behaves like the leaking client of a real incident: every slot someone else
frees - an application connection retired by its pool's max lifetime, say - is
taken again within a fraction of a second, so the application cannot win a
slot back by reconnecting. It stops re-taking slots the moment one of *its*
connections is terminated by someone else: that is the team mitigating
(``pg_terminate_backend`` on the hogs), and the leak is over.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field

from chaosrunner.durations import Duration
from chaosrunner.errors import ChaosrunnerError, FaultError, PlanRefused
from chaosrunner.faults.base import FaultRequest, TargetRef
from chaosrunner.faults.connections import ENV_VAR_NAME
from chaosrunner.faults.holder import HolderSession
from chaosrunner.faults.postgres import client
from chaosrunner.faults.postgres.held import CONTROL_APPLICATION_NAME, HeldPostgresFault, HoldParams
from chaosrunner.faults.registry import register

SERVER_FREE_SLOTS = """
SELECT current_setting('max_connections')::int
     - current_setting('superuser_reserved_connections')::int
     - coalesce(current_setting('reserved_connections', true)::int, 0)
     - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int
"""
"""Slots an ordinary role can still take (``reserved_connections`` exists from PostgreSQL 16)."""

ROLE_FREE_SLOTS = """
SELECT r.rolconnlimit - (
         SELECT count(*) FROM pg_stat_activity a
          WHERE a.usename = r.rolname AND a.backend_type = 'client backend')::int
  FROM pg_roles r WHERE r.rolname = %s
"""

ROLE_FACTS = "SELECT rolcanlogin, rolsuper, rolconnlimit FROM pg_roles WHERE rolname = %s"


class Mode(StrEnum):
    SERVER = "server"
    ROLE = "role"
    PGBOUNCER = "pgbouncer"


class ExhaustionParams(HoldParams):
    leave_free: int = Field(
        0, ge=0, le=10_000, description="slots (or pool connections) left free once the fault is in place"
    )
    role: str | None = Field(
        None,
        min_length=1,
        max_length=63,
        description="exhaust this role's CONNECTION LIMIT instead of the server, connecting as it; "
        "with pgbouncer_dsn_env: the user whose pool is exhausted",
    )
    pgbouncer_dsn_env: str | None = Field(
        None,
        pattern=ENV_VAR_NAME,
        description="environment variable holding a DSN through pgbouncer: exhaust that pool "
        "(its server connections) instead of the server",
    )
    max_connections: int = Field(
        200,
        ge=1,
        le=5_000,
        description="never hold more connections than this; a plan needing more is refused",
    )
    keep_exhausted: bool = Field(
        True,
        description="re-take slots others free while held, like a leaking client, until someone "
        "terminates one of the held connections (the team's mitigation); server and role modes",
    )
    pool_probe_timeout: Duration = Field(
        timedelta(seconds=2),
        description="pgbouncer mode: a client that waits this long for a server connection means the "
        "pool is full (keep it below pgbouncer's reserve_pool_timeout to leave the reserve alone)",
    )

    def mode(self) -> Mode:
        if self.pgbouncer_dsn_env:
            return Mode.PGBOUNCER
        return Mode.ROLE if self.role else Mode.SERVER


@register
class ConnectionExhaustion(HeldPostgresFault):
    kind = "postgres.connection-exhaustion"
    summary = (
        "Hold connections until the server, a role's CONNECTION LIMIT or a pgbouncer pool has at most "
        "leave_free left; revert closes them (holder with a deadline, pg_terminate_backend fallback)."
    )
    Params = ExhaustionParams
    hold_kind = "exhaustion"

    def resolve(
        self, request: FaultRequest, session: client.PgSession
    ) -> tuple[dict[str, Any], list[TargetRef], str]:
        params = request.params
        assert isinstance(params, ExhaustionParams)
        mode = params.mode()
        spec: dict[str, Any] = {
            "mode": mode.value,
            "role": params.role,
            "leave_free": params.leave_free,
            "max_connections": params.max_connections,
            "keep_exhausted": params.keep_exhausted,
        }
        if mode is Mode.PGBOUNCER:
            assert params.pgbouncer_dsn_env is not None
            return self._resolve_pool(request, params, params.pgbouncer_dsn_env, spec)
        # Our control session is counted as in use but closes before the holder starts.
        server_free = _one_int(session, SERVER_FREE_SLOTS) + 1
        if mode is Mode.ROLE:
            assert params.role is not None
            wanted = _role_slots(session, params.role) - params.leave_free
            if wanted > server_free - params.leave_free:
                raise PlanRefused(
                    f"fault {request.name!r}: role {params.role!r} has {wanted + params.leave_free} free "
                    f"slots but the server only {server_free}: exhausting the role would starve every "
                    "role; omit 'role' to exhaust the server on purpose"
                )
            target = TargetRef(id=f"role:{params.role}", name=f"role {params.role} on {session.where}")
            limit = f"the CONNECTION LIMIT of role {params.role!r}"
        else:
            wanted = server_free - params.leave_free
            target = TargetRef(id="server", name=f"PostgreSQL server {session.where}")
            limit = "the server's max_connections"
        if wanted <= 0:
            raise PlanRefused(
                f"fault {request.name!r}: {limit} has {wanted + params.leave_free} free slots, not more "
                f"than leave_free={params.leave_free}: there is nothing to exhaust"
            )
        if wanted > params.max_connections:
            raise PlanRefused(
                f"fault {request.name!r}: would hold {wanted} connections, above max_connections="
                f"{params.max_connections}; raise the ceiling if that is intended"
            )
        summary = f"hold about {wanted} connections so {limit} has {params.leave_free} free slots left"
        return spec, [target], summary

    def _resolve_pool(
        self, request: FaultRequest, params: ExhaustionParams, pool_env: str, spec: dict[str, Any]
    ) -> tuple[dict[str, Any], list[TargetRef], str]:
        # A pgbouncer client without a query takes no server connection: this only proves we can log in.
        with client.connect(
            pool_env,
            CONTROL_APPLICATION_NAME,
            user=params.role,
            connect_timeout=params.connect_timeout.total_seconds(),
        ) as pool_session:
            where = pool_session.where
        spec = {
            **spec,
            "pgbouncer_dsn_env": pool_env,
            "pool_probe_timeout": params.pool_probe_timeout.total_seconds(),
        }
        target = TargetRef(id=f"pgbouncer:{pool_env}", name=f"pgbouncer pool {where}")
        summary = (
            f"hold every server connection of the pgbouncer pool {where} but {params.leave_free} "
            f"(at most {params.max_connections}), each in an open transaction"
        )
        return spec, [target], summary

    def extra_ready_time(self, spec: dict[str, Any]) -> float:
        # Opening hundreds of connections, or probing a pool, takes a while.
        return float(spec.get("pool_probe_timeout", 0.0)) + spec["max_connections"] * 0.05


def _one_int(session: client.PgSession, statement: str, params: tuple[Any, ...] = ()) -> int:
    rows = session.query(statement, params)
    if not rows or rows[0][0] is None:
        raise FaultError(f"PostgreSQL returned no value for: {' '.join(statement.split())}")
    return int(rows[0][0])


def _role_slots(session: client.PgSession, role: str) -> int:
    """Free slots under ``role``'s CONNECTION LIMIT, or PlanRefused when it has none to exhaust."""
    rows = session.query(ROLE_FACTS, (role,))
    if not rows:
        raise PlanRefused(f"role {role!r} does not exist")
    can_login, superuser, limit = rows[0]
    if not can_login:
        raise PlanRefused(f"role {role!r} cannot log in (NOLOGIN): it has no connections to exhaust")
    if superuser:
        raise PlanRefused(f"role {role!r} is a superuser: PostgreSQL does not apply CONNECTION LIMIT to it")
    if limit < 0:
        raise PlanRefused(f"role {role!r} has no CONNECTION LIMIT; omit 'role' to exhaust the server instead")
    return _one_int(session, ROLE_FREE_SLOTS, (role,))


# ----------------------------------------------------------------------------- the holder side


def hold(spec: dict[str, Any], session: HolderSession) -> None:
    """Open connections until the limit is reached, report ready, keep them until told or the deadline."""
    held: list[client.PgSession] = []
    try:
        if spec["mode"] == Mode.PGBOUNCER:
            _fill_pool(spec, session, held)
        else:
            _fill_slots(spec, session, held)
        if session.stopping.is_set():
            return
        if not held:
            raise FaultError("no connection could be held: the limit was already reached")
        session.ready()
        if spec["mode"] != Mode.PGBOUNCER and spec.get("keep_exhausted"):
            _keep_exhausted(spec, session, held)
        session.wait()
    finally:
        for connection in held:
            connection.close()


def _fill_slots(spec: dict[str, Any], session: HolderSession, held: list[client.PgSession]) -> None:
    name, dsn_env, role = spec["application_name"], spec["dsn_env"], spec.get("role")
    timeout, leave_free, ceiling = spec["connect_timeout"], spec["leave_free"], spec["max_connections"]
    # The control session counts as held in server mode (it takes a server slot, named like
    # the rest); in role mode it is the superuser's, so it counts against the server only.
    control = client.connect(dsn_env, name, connect_timeout=timeout)
    held.append(control)
    while not session.stopping.is_set():
        free = _one_int(control, SERVER_FREE_SLOTS) - leave_free
        if role:
            free = min(free, _one_int(control, ROLE_FREE_SLOTS, (role,)) - leave_free)
        room = ceiling - len(held)
        if free <= 0 or room <= 0:
            break
        opened = 0
        for _ in range(min(free, room)):
            if session.stopping.is_set():
                break
            try:
                held.append(client.connect(dsn_env, name, user=role, connect_timeout=timeout))
            except client.TooManyConnections:
                break  # someone else took the slot between our count and our connect
            opened += 1
        if opened == 0:
            break
    if role:
        held.remove(control)
        control.close()


def _fill_pool(spec: dict[str, Any], session: HolderSession, held: list[client.PgSession]) -> None:
    name, pool_env, role = spec["application_name"], spec["pgbouncer_dsn_env"], spec.get("role")
    timeout, probe = spec["connect_timeout"], spec["pool_probe_timeout"]
    full = False
    while len(held) < spec["max_connections"] and not session.stopping.is_set():
        try:
            candidate = client.connect(pool_env, name, user=role, connect_timeout=timeout)
        except client.TooManyConnections:
            full = True  # pgbouncer's max_client_conn: nobody else gets in either
            break
        if candidate.begin_within(probe):
            held.append(candidate)
            continue
        candidate.close()  # leaves pgbouncer's wait queue
        full = True
        break
    if not full and not session.stopping.is_set():
        raise FaultError(
            f"the pgbouncer pool still had server connections after {len(held)} "
            f"(max_connections={spec['max_connections']}); raise the ceiling if that is intended"
        )
    for _ in range(min(spec["leave_free"], len(held))):
        held.pop().close()


RETAKE_INTERVAL = 0.02
"""Seconds between attempts on a freed slot. An application reconnects within
milliseconds of retiring a connection, and pg_stat_activity lags behind the
server's own count, so in role mode the holder does not ask whether a slot is
free: it tries to connect (a refused attempt costs the server a few
milliseconds). Server mode counts first: see ``_keep_exhausted``."""

OURS_ALIVE = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND backend_type = 'client backend'"
)


def _keep_exhausted(spec: dict[str, Any], session: HolderSession, held: list[client.PgSession]) -> None:
    """Take every slot that frees up, until one of ours is terminated or we are told to stop."""
    name, dsn_env, role = spec["application_name"], spec["dsn_env"], spec.get("role")
    timeout, leave_free, ceiling = spec["connect_timeout"], spec["leave_free"], spec["max_connections"]
    # The watcher's own session is named apart from the fault, so revert and the team's
    # pg_terminate_backend by the fault's name never mistake it for a hog.
    control = client.connect(dsn_env, CONTROL_APPLICATION_NAME, connect_timeout=timeout)
    try:
        ours = len(held)
        while not session.stopping.wait(RETAKE_INTERVAL) and session.remaining() > 0:
            # Counted before every attempt: a slot freed by the team terminating our
            # connections must never be taken back - that would undo their mitigation.
            if _one_int(control, OURS_ALIVE, (name,)) < ours:
                return  # someone terminated our connections: the team mitigated, the leak stops
            if len(held) >= ceiling:
                continue
            # Count first when leaving room on purpose, and always in server mode: there we
            # connect as the DSN's user, often a superuser, whom the server lets into the
            # slots it reserves for superusers - the slots the team needs to get in and
            # terminate the hogs. (In role mode the server guards those slots itself.)
            if leave_free or not role:
                free = _one_int(control, SERVER_FREE_SLOTS) - leave_free
                if role:
                    free = min(free, _one_int(control, ROLE_FREE_SLOTS, (role,)) - leave_free)
                if free <= 0:
                    continue
            try:
                held.append(client.connect(dsn_env, name, user=role, connect_timeout=timeout))
                ours += 1
            except client.TooManyConnections:
                continue  # no slot free this time
    except ChaosrunnerError:
        return  # the server went away or our control session was killed: hold what we have
    finally:
        control.close()
