"""The shared store: PostgreSQL at ``CHAOSRUNNER_RESULTS_DSN``; the one results module importing psycopg.

The DSN is a secret (it may carry a password): it is read from the
environment, handed to psycopg and to nothing else. ``where`` shows it
redacted, and psycopg's errors are mapped here into our tree with any
credential-shaped text scrubbed, so no message, log line or status print
carries it. The results store is not a fault target, so it does not go
through ``faults.postgres.client`` (which names connections for reverts and
reads DSNs by a scenario's variable); this adapter is named in .importlinter.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from chaosrunner.errors import EnvironmentProblem, ServiceUnreachable
from chaosrunner.redaction import REDACTED, redact_text

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_SECONDS = 10
APPLICATION_NAME = "chaosrunner-results"


def redact_dsn(dsn: str) -> str:
    """The DSN with its password hidden (URL userinfo or ``password=``), fit for a status line."""
    return redact_text(dsn)


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, dsn: str) -> None:
        import psycopg

        self._dsn = dsn
        self.where = f"postgresql {redact_dsn(dsn)}"
        try:
            self._conn: psycopg.Connection[Any] = psycopg.connect(
                dsn,
                autocommit=True,  # our transactions are explicit
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name=APPLICATION_NAME,
            )
        except psycopg.Error as error:
            raise ServiceUnreachable(
                f"results store {self.where} did not answer: {self._scrub(error)}"
            ) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._mapped():
            self._conn.execute(_placeholders(sql), tuple(params))

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        with self._mapped():
            cursor = self._conn.execute(_placeholders(sql), tuple(params))
            while batch := cursor.fetchmany(256):
                yield from batch

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._mapped(), self._conn.transaction():
            yield

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.OperationalError as error:
            raise ServiceUnreachable(f"results store {self.where}: {self._scrub(error)}") from None
        except psycopg.Error as error:
            raise EnvironmentProblem(f"results store {self.where}: {self._scrub(error)}") from None

    def _scrub(self, error: Exception) -> str:
        text = str(error).strip().replace(self._dsn, REDACTED) if self._dsn else str(error)
        return redact_text(text)


def _placeholders(sql: str) -> str:
    """Our ``?`` placeholders as psycopg's ``%s`` (no SQL of ours has a literal ``?`` or ``%``)."""
    return sql.replace("?", "%s")
