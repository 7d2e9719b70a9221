"""The sandbox application's database access (psycopg): the demo's own adapter.

chaosrunner's fault backends reach PostgreSQL through faults.postgres.client;
this is the *application under test* talking to its database, so it has a
boundary of its own. Errors become ``DatabaseUnavailable``, which the service
turns into a 503 - what a real checkout would do when its pool is dry.
"""

from __future__ import annotations

import contextlib
from typing import Any


class DatabaseUnavailable(Exception):
    """No connection could be had (refused, too many connections, timeout)."""


def connect(dsn: str, application_name: str, timeout: float) -> Any:
    import psycopg

    try:
        return psycopg.connect(
            dsn, application_name=application_name, connect_timeout=max(1, round(timeout)), autocommit=True
        )
    except psycopg.Error as error:
        raise DatabaseUnavailable(str(error).strip().splitlines()[0]) from error


def execute(connection: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    try:
        cursor = connection.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []
    except psycopg.Error as error:
        raise DatabaseUnavailable(str(error).strip().splitlines()[0]) from error


def close(connection: Any) -> None:
    import psycopg

    with contextlib.suppress(psycopg.Error):  # closing a dead connection is not an incident
        connection.close()


def is_broken(connection: Any) -> bool:
    return bool(connection.closed or connection.broken)
