"""The PostgreSQL adapter: the one module that imports psycopg.

Every PostgreSQL fault talks to the server through this module, so three rules
live in exactly one place:

- The DSN is read from the environment variable the scenario names, at the
  moment of connecting, and never leaves this module: not in a revert record,
  not in an argument list, not in an error message (messages are scrubbed of it).
- Every connection carries an ``application_name``; that name is how a revert
  finds the backends a fault opened, even after everyone involved was killed.
- psycopg's exceptions are mapped to chaosrunner's tree at this boundary, so
  the fault modules (and the engine above them) never handle a
  ``psycopg.OperationalError``. A few outcomes the faults must tell apart (no
  slot left, a lock not granted, a session that ended) get their own
  ``FaultError`` subclasses here.

psycopg is imported inside the functions: importing a backend to list its
params must not load the driver.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from chaosrunner.errors import EnvironmentProblem, FaultError, ServiceUnreachable

if TYPE_CHECKING:
    import psycopg

APPLICATION_NAME_LIMIT = 63
"""NAMEDATALEN - 1: the server silently truncates a longer application_name."""

_NO_SLOT = re.compile(
    r"too many clients already|too many connections for (role|database)|"
    r"remaining connection slots are reserved|no more connections allowed"
)


class TooManyConnections(FaultError):
    """The server, a role or a database refused a connection: no slot left."""


class LockNotAvailable(FaultError):
    """A lock was not granted within lock_timeout."""


class SessionEnded(FaultError):
    """The backend went away (terminated, server shut down, connection lost)."""


class StatementCanceled(FaultError):
    """A statement was canceled (by us, statement_timeout, or an operator)."""


def read_dsn(dsn_env: str) -> str:
    """The DSN held by ``dsn_env``; an EnvironmentProblem naming the variable if unset."""
    dsn = os.environ.get(dsn_env, "").strip()
    if not dsn:
        raise EnvironmentProblem(
            f"environment variable {dsn_env} is not set; it must hold the PostgreSQL DSN"
        )
    return dsn


def identifier(*parts: str) -> str:
    """Quote a (possibly schema-qualified) name for SQL text: ``"public"."orders"``."""
    from psycopg import sql

    return sql.Identifier(*parts).as_string()


def connect(
    dsn_env: str,
    application_name: str,
    *,
    user: str | None = None,
    connect_timeout: float = 10.0,
) -> PgSession:
    """Open an autocommit session from the DSN in ``dsn_env``.

    ``user`` overrides the DSN's user (libpq keyword parameters win over the
    conninfo), which is how the role mode connects as the scenario's role.
    """
    import psycopg

    dsn = read_dsn(dsn_env)
    overrides: dict[str, Any] = {
        "application_name": application_name,
        "connect_timeout": max(1, round(connect_timeout)),
        "autocommit": True,
    }
    if user is not None:
        overrides["user"] = user
    try:
        connection = psycopg.connect(dsn, **overrides)
    except psycopg.Error as exc:
        text = _scrub(str(exc), dsn)
        if _NO_SLOT.search(text):
            raise TooManyConnections(f"PostgreSQL (${dsn_env}) refused a connection: {text}") from exc
        raise ServiceUnreachable(f"PostgreSQL (${dsn_env}) did not accept a connection: {text}") from exc
    return PgSession(connection, dsn_env, dsn)


class PgSession:
    """One open connection, in autocommit mode; transactions are explicit ``BEGIN``."""

    def __init__(self, connection: psycopg.Connection[Any], dsn_env: str, dsn: str) -> None:
        self._connection = connection
        self._dsn_env = dsn_env
        self._dsn = dsn
        # Kept apart from the connection so close() never touches a PGconn another thread uses.
        self.backend_pid: int = connection.info.backend_pid

    def query(
        self, statement: str, params: Sequence[Any] = (), *, single: bool = False
    ) -> list[tuple[Any, ...]]:
        """Run ``statement``; return its rows (empty when it returns none).

        ``single`` sends it with the extended protocol, which the server refuses
        to split into several commands: the guard for SQL text from a scenario.
        """
        import psycopg

        try:
            cursor = self._connection.execute(
                statement,
                params or None,
                prepare=True if single else None,
            )
            return list(cursor.fetchall()) if cursor.description else []
        except psycopg.Error as exc:
            raise self._mapped(exc) from exc

    def execute(self, statement: str, params: Sequence[Any] = (), *, single: bool = False) -> None:
        self.query(statement, params, single=single)

    def begin_within(self, timeout: float) -> bool:
        """Open a transaction that really holds a server connection, if one comes in time.

        Through pgbouncer a client only gets a server connection when it sends
        a query; with the pool full the query waits in pgbouncer's queue and
        nothing tells the client. So this sends ``BEGIN; SELECT 1`` without
        blocking and waits at most ``timeout`` for the answer: True means a
        server connection is now pinned to this session; False means the pool
        had none to give (the caller closes the session, which leaves the queue).
        """
        import psycopg

        pgconn = self._connection.pgconn
        try:
            pgconn.send_query(b"BEGIN; SELECT 1")
            deadline = time.monotonic() + timeout
            while True:
                pgconn.consume_input()
                if not pgconn.is_busy():
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                select.select([pgconn.socket], [], [], remaining)
            failed = None
            while (result := pgconn.get_result()) is not None:
                if result.status == psycopg.pq.ExecStatus.FATAL_ERROR:
                    failed = (result.error_message or b"").decode(errors="replace").strip()
        except psycopg.Error as exc:
            raise self._mapped(exc) from exc
        if failed:
            raise FaultError(f"PostgreSQL (${self._dsn_env}) refused a transaction: {failed}")
        return True

    def cancel(self) -> None:
        """Cancel the statement running on this session; safe from another thread."""
        import psycopg

        # Nothing running, or the backend is gone: either way there is nothing to cancel.
        with contextlib.suppress(psycopg.Error):
            self._connection.cancel_safe(timeout=5.0)

    @property
    def where(self) -> str:
        """``user@host:port/database`` for people: the DSN without its secret parts."""
        info = self._connection.info
        return f"{info.user}@{info.host}:{info.port}/{info.dbname}"

    @property
    def closed(self) -> bool:
        return self._connection.closed

    def close(self) -> None:
        """Close the connection; idempotent and never raises (used on every exit path)."""
        # Closing must not mask the error that got us here.
        with contextlib.suppress(Exception):
            self._connection.close()

    def __enter__(self) -> PgSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _mapped(self, exc: Exception) -> FaultError:
        import psycopg

        text = _scrub(str(exc).strip(), self._dsn)
        where = f"PostgreSQL (${self._dsn_env})"
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate == "55P03":
            return LockNotAvailable(f"{where}: {text}")
        if sqlstate == "57014":
            return StatementCanceled(f"{where}: {text}")
        if sqlstate in ("57P01", "57P02", "57P03") or (
            isinstance(exc, psycopg.OperationalError) and sqlstate is None
        ):
            return SessionEnded(f"{where}: the session ended: {text}")
        return FaultError(f"{where}: {sqlstate or 'error'}: {text}")


def _scrub(text: str, dsn: str) -> str:
    """Remove the DSN and its password from a message (libpq may echo parts of it)."""
    from psycopg.conninfo import conninfo_to_dict

    cleaned = text.replace(dsn, "<dsn>")
    try:
        password = conninfo_to_dict(dsn).get("password")
    except Exception:  # an unparsable DSN has no password to hide
        password = None
    if password:
        cleaned = cleaned.replace(str(password), "***")
    return cleaned
