"""``open_store`` and ``ResultsStore``: finished runs' report JSON documents, upserted by run id.

Where the store is: PostgreSQL when ``CHAOSRUNNER_RESULTS_DSN`` is set (so
several machines, the schedule daemon and a team share one), otherwise
SQLite at ``<state>/results.sqlite3``. Each row remembers where it came from
(host name and state folder), because a run id is unique but a report alone
does not say which machine ran it.

Opening a store migrates it to this code's schema (``results.schema``) or
refuses one that is newer.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from chaosrunner.errors import ResultsStoreTooNew
from chaosrunner.report import fmt
from chaosrunner.results.database import Database
from chaosrunner.results.documents import Indexed, indexed
from chaosrunner.results.schema import MIGRATIONS, VERSION_TABLE, Migration, check_ordered

ENV_DSN = "CHAOSRUNNER_RESULTS_DSN"
STORE_FILE = "results.sqlite3"
MIGRATION_LOCK_KEY = 0x6368_6173_7265_7331 & 0x7FFF_FFFF_FFFF_FFFF
"""PostgreSQL advisory lock held while migrating ("chasres1"): one migrator at a time."""


class _FromEnvironment:
    def __repr__(self) -> str:
        return f"${ENV_DSN}"


FROM_ENVIRONMENT: Final = _FromEnvironment()


def open_store(
    state_dir: Path,
    dsn: str | _FromEnvironment | None = FROM_ENVIRONMENT,
    *,
    migrations: tuple[Migration, ...] = MIGRATIONS,
    origin_host: str | None = None,
) -> ResultsStore:
    """The results store, migrated and ready; ``dsn`` defaults to ``$CHAOSRUNNER_RESULTS_DSN`` (None: SQLite).

    The variable is read when called, not when imported; an empty one means SQLite. What this
    store puts is marked as coming from ``origin_host`` (this machine's name by default) and ``state_dir``.
    """
    if isinstance(dsn, _FromEnvironment):
        dsn = os.environ.get(ENV_DSN, "").strip() or None
    database: Database
    if dsn:
        from chaosrunner.results.postgres import PostgresDatabase

        database = PostgresDatabase(dsn)
    else:
        from chaosrunner.results.sqlite import SqliteDatabase

        database = SqliteDatabase(state_dir / STORE_FILE)
    store = ResultsStore(database, origin_state_dir=str(state_dir), origin_host=origin_host)
    try:
        store.migrate(migrations)
    except BaseException:
        store.close()
        raise
    return store


def store_location(state_dir: Path) -> str:
    """Where ``open_store(state_dir)`` would go, redacted, without opening it."""
    dsn = os.environ.get(ENV_DSN, "").strip()
    if dsn:
        from chaosrunner.results.postgres import redact_dsn

        return f"postgresql {redact_dsn(dsn)}"
    return f"sqlite {state_dir / STORE_FILE}"


def _stamp(moment: datetime, dialect: str) -> Any:
    """A time as the dialect keeps it: TIMESTAMPTZ, or ISO text with microseconds that sorts as time."""
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if dialect == "postgresql":
        return moment
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}Z"


class ResultsStore:
    def __init__(self, database: Database, origin_state_dir: str, origin_host: str | None = None) -> None:
        self._db = database
        self.origin_host = origin_host or socket.gethostname()
        self.origin_state_dir = origin_state_dir

    # ------------------------------------------------------------------ where and what version

    @property
    def where(self) -> str:
        """Where the store is, fit to print (a DSN's password redacted)."""
        return self._db.where

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def schema_version(self) -> int:
        row = next(self._db.rows("SELECT MAX(version) FROM schema_version"), None)
        return int(row[0]) if row and row[0] is not None else 0

    def migrate(self, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
        """Apply the migrations the store lacks, in order; the versions applied. Refuses a newer store."""
        check_ordered(migrations)
        latest = migrations[-1].version if migrations else 0
        applied: list[int] = []
        # One transaction for all (DDL is transactional in both), under the lock every migrator takes:
        # two processes opening a new store at once migrate it once, and a failure leaves it as it was.
        with self._db.transaction():
            if self.dialect == "postgresql":
                self._db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK_KEY,))
            self._db.execute(VERSION_TABLE[self.dialect])
            current = self.schema_version()
            if current > latest:
                raise ResultsStoreTooNew(
                    f"results store {self.where} has schema version {current}; this chaosrunner "
                    f"knows up to {latest}: upgrade chaosrunner (the store was left untouched)"
                )
            for migration in migrations:
                if migration.version <= current:
                    continue
                for statement in migration.statements(self.dialect):
                    self._db.execute(statement)
                self._db.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.description, _stamp(datetime.now(UTC), self.dialect)),
                )
                applied.append(migration.version)
        return applied

    # ------------------------------------------------------------------ writing

    def put(self, document: dict[str, Any]) -> bool:
        """Store ``document`` (a report JSON document), replacing the run's earlier one; True when new."""
        columns = indexed(document)
        with self._db.transaction():
            return self._put(columns, document)

    def put_many(self, documents: Iterable[dict[str, Any]]) -> int:
        """Store every document in one transaction (all or none); how many runs were new."""
        prepared = [(indexed(document), document) for document in documents]  # refuse before writing
        with self._db.transaction():
            return sum(self._put(columns, document) for columns, document in prepared)

    def _put(self, columns: Indexed, document: dict[str, Any]) -> bool:
        values = (
            columns.run_id,
            columns.scenario_title,
            columns.scenario_key,
            _stamp(columns.started_at, self.dialect),
            columns.outcome,
            self.origin_host,
            self.origin_state_dir,
            columns.report_schema_version,
            _stamp(datetime.now(UTC), self.dialect),
            json.dumps(document, separators=(",", ":"), ensure_ascii=False),
        )
        pg = self.dialect == "postgresql"
        upsert = (
            "INSERT INTO runs (run_id, scenario_title, scenario_key, started_at, outcome, origin_host,"
            " origin_state_dir, report_schema_version, stored_at, document)"
            f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {'CAST(? AS JSON)' if pg else '?'})"
            " ON CONFLICT (run_id) DO UPDATE SET scenario_title = excluded.scenario_title,"
            " scenario_key = excluded.scenario_key, started_at = excluded.started_at,"
            " outcome = excluded.outcome, origin_host = excluded.origin_host,"
            " origin_state_dir = excluded.origin_state_dir,"
            " report_schema_version = excluded.report_schema_version,"
            " stored_at = excluded.stored_at, document = excluded.document"
        )
        if pg:
            # xmax is 0 on a row this statement inserted, the updating transaction's id otherwise.
            row = next(self._db.rows(upsert + " RETURNING (xmax = 0)", values))
            return bool(row[0])
        # SQLite: the transaction holds the write lock (BEGIN IMMEDIATE), so look-then-write is exact.
        existed = next(self._db.rows("SELECT 1 FROM runs WHERE run_id = ?", (columns.run_id,)), None)
        self._db.execute(upsert, values)
        return existed is None

    # ------------------------------------------------------------------ reading

    def run_ids(self) -> set[str]:
        return {str(row[0]) for row in self._db.rows("SELECT run_id FROM runs")}

    def count(self) -> int:
        row = next(self._db.rows("SELECT COUNT(*) FROM runs"), None)
        return int(row[0]) if row else 0

    def documents(
        self, scenario: Sequence[str] | None = None, since: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Report documents, oldest start first; of the scenarios named (title or its slug), since a time."""
        for _, document in self.records(scenario, since):
            yield document

    def records(
        self, scenario: Sequence[str] | None = None, since: datetime | None = None
    ) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
        """As ``documents``, each with its row's origin: ``{"host": ..., "state_dir": ...}``."""
        where: list[str] = []
        params: list[Any] = []
        if isinstance(scenario, str):
            scenario = [scenario]  # one title, not its characters
        if scenario is not None:
            titles = list(scenario)
            keys = [fmt.slug(title) for title in titles]
            if not titles:
                return
            where.append(
                f"(scenario_title IN ({', '.join('?' * len(titles))})"
                f" OR scenario_key IN ({', '.join('?' * len(keys))}))"
            )
            params.extend([*titles, *keys])
        if since is not None:
            where.append("started_at >= ?")
            params.append(_stamp(since, self.dialect))
        document = "document::text" if self.dialect == "postgresql" else "document"
        sql = (
            f"SELECT origin_host, origin_state_dir, {document} FROM runs"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY started_at, run_id"
        )
        for host, state, text in self._db.rows(sql, params):
            yield {"host": str(host), "state_dir": str(state)}, json.loads(text)

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
