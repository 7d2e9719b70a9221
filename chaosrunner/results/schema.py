"""The store's schema, as ordered migrations, and the rule that a newer store is refused.

``schema_version`` holds one row per migration applied (version, what it did,
when). Opening a store applies the migrations it lacks, in order, each with its
row, in one transaction under a lock every migrator takes (SQLite's write
lock, PostgreSQL's advisory lock), so two processes opening a new store at
once migrate it once and a failure leaves it as it was. A store whose highest version is above
``LATEST`` was written by a newer chaosrunner: its meaning may have changed
under us, so it is refused (``ResultsStoreTooNew``, exit 3) rather than guessed at.

A migration is SQL per dialect, because the two stores keep documents in
their natural type (TEXT in SQLite, JSON in PostgreSQL) and times too.
Never edit a released migration: add the next one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]

    def statements(self, dialect: str) -> tuple[str, ...]:
        return self.sqlite if dialect == "sqlite" else self.postgresql


VERSION_TABLE = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
    ),
    "postgresql": (
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    ),
}

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs: one report JSON document per run, indexed by scenario and start time",
        sqlite=(
            # started_at is ISO 8601 UTC with microseconds ("...T14:00:00.000000Z"): text that sorts as time
            "CREATE TABLE runs ("
            " run_id TEXT PRIMARY KEY,"
            " scenario_title TEXT NOT NULL,"
            " scenario_key TEXT NOT NULL,"
            " started_at TEXT NOT NULL,"
            " outcome TEXT NOT NULL,"
            " origin_host TEXT NOT NULL,"
            " origin_state_dir TEXT NOT NULL,"
            " report_schema_version INTEGER NOT NULL,"
            " stored_at TEXT NOT NULL,"
            " document TEXT NOT NULL)",
            "CREATE INDEX runs_by_scenario ON runs (scenario_title, started_at)",
            "CREATE INDEX runs_by_scenario_key ON runs (scenario_key, started_at)",
            "CREATE INDEX runs_by_start ON runs (started_at)",
        ),
        postgresql=(
            "CREATE TABLE runs ("
            " run_id TEXT PRIMARY KEY,"
            " scenario_title TEXT NOT NULL,"
            " scenario_key TEXT NOT NULL,"
            " started_at TIMESTAMPTZ NOT NULL,"
            " outcome TEXT NOT NULL,"
            " origin_host TEXT NOT NULL,"
            " origin_state_dir TEXT NOT NULL,"
            " report_schema_version INTEGER NOT NULL,"
            " stored_at TIMESTAMPTZ NOT NULL,"
            # JSON, not JSONB: kept as written and given back without re-serialising (reading 1,000
            # documents whole is what history and coverage do: JSONB's output cost 5x the server time);
            # still validated on the way in, and queryable with -> and ->>.
            " document JSON NOT NULL)",
            "CREATE INDEX runs_by_scenario ON runs (scenario_title, started_at)",
            "CREATE INDEX runs_by_scenario_key ON runs (scenario_key, started_at)",
            "CREATE INDEX runs_by_start ON runs (started_at)",
        ),
    ),
)

LATEST = MIGRATIONS[-1].version


def check_ordered(migrations: tuple[Migration, ...]) -> None:
    """Versions 1, 2, 3 ... with no gap: a list that is not is a programming error, caught by the tests."""
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1..n in order, got {versions}")
