"""The results store on SQLite: migrations, a newer store refused, upserts, filters, concurrent writers."""

from __future__ import annotations

import copy
import os
import sqlite3
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.errors import ResultsStoreTooNew, ServiceUnreachable, UsageError
from chaosrunner.report.model import build_report
from chaosrunner.report.sample import sample_run
from chaosrunner.report.writer import render
from chaosrunner.results.schema import LATEST, MIGRATIONS, Migration, check_ordered
from chaosrunner.results.store import STORE_FILE, open_store

T = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sample_document() -> dict[str, Any]:
    import json

    result, metrics = sample_run()
    return dict(json.loads(render(build_report(result, metrics), ["json"])["json"]))


def doc(
    base: dict[str, Any], run_id: str, title: str, started: datetime, status: str = "completed"
) -> dict[str, Any]:
    document = copy.deepcopy(base)
    document["run"]["id"] = run_id
    document["run"]["started"] = started.isoformat().replace("+00:00", "Z")
    document["run"]["status"] = status
    document["scenario"]["title"] = title
    return document


ADD_TEAM = Migration(
    2,
    "runs.team",
    sqlite=("ALTER TABLE runs ADD COLUMN team TEXT",),
    postgresql=("ALTER TABLE runs ADD COLUMN team TEXT",),
)


def test_a_new_store_is_migrated_to_the_latest_version_once_and_is_private(tmp_path: Path) -> None:
    with open_store(tmp_path, None) as store:
        assert store.schema_version() == LATEST
        assert store.where == f"sqlite {tmp_path / STORE_FILE}"
    assert stat.S_IMODE(os.stat(tmp_path / STORE_FILE).st_mode) == 0o600
    with open_store(tmp_path, None) as store:
        assert store.migrate() == []  # nothing left to apply
    rows = (
        sqlite3.connect(tmp_path / STORE_FILE)
        .execute("SELECT version, description FROM schema_version")
        .fetchall()
    )
    assert [version for version, _ in rows] == [migration.version for migration in MIGRATIONS]


def test_migrations_apply_in_order_from_where_the_store_is(tmp_path: Path) -> None:
    with open_store(tmp_path, None, migrations=MIGRATIONS) as store:
        assert store.schema_version() == 1
    with open_store(tmp_path, None, migrations=(*MIGRATIONS, ADD_TEAM)) as store:
        assert store.schema_version() == 2
        assert store.migrate((*MIGRATIONS, ADD_TEAM)) == []
    columns = [row[1] for row in sqlite3.connect(tmp_path / STORE_FILE).execute("PRAGMA table_info(runs)")]
    assert "team" in columns and "document" in columns


def test_a_failing_migration_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    open_store(tmp_path, None).close()
    broken = Migration(2, "broken", sqlite=("CREATE TABLE extra (x INT)", "NOT SQL AT ALL"), postgresql=())
    with pytest.raises(Exception, match="results store"):
        open_store(tmp_path, None, migrations=(*MIGRATIONS, broken))
    db = sqlite3.connect(tmp_path / STORE_FILE)
    assert db.execute("SELECT MAX(version) FROM schema_version").fetchone() == (1,)
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'extra'").fetchone() is None


def test_a_store_newer_than_the_code_is_refused_untouched(
    tmp_path: Path, sample_document: dict[str, Any]
) -> None:
    with open_store(tmp_path, None, migrations=(*MIGRATIONS, ADD_TEAM)) as store:
        store.put(sample_document)
    with pytest.raises(ResultsStoreTooNew) as refused:
        open_store(tmp_path, None)
    assert refused.value.exit_code == 3
    assert "schema version 2" in str(refused.value) and f"up to {LATEST}" in str(refused.value)
    db = sqlite3.connect(tmp_path / STORE_FILE)
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)


def test_migration_lists_must_be_numbered_without_gaps() -> None:
    check_ordered(MIGRATIONS)
    with pytest.raises(ValueError, match=r"1\.\.n"):
        check_ordered((MIGRATIONS[0], Migration(3, "gap", (), ())))


def test_put_upserts_by_run_id_and_says_when_the_run_is_new(
    tmp_path: Path, sample_document: dict[str, Any]
) -> None:
    first = doc(sample_document, "20260105-090000-aaaaaa", "Checkout pool exhausted", T)
    with open_store(tmp_path, None) as store:
        assert store.put(first) is True
        assert store.put({**first, "run": {**first["run"], "status": "aborted"}}) is False
        assert store.run_ids() == {"20260105-090000-aaaaaa"} and store.count() == 1
        [stored] = store.documents()
    assert stored["run"]["status"] == "aborted"
    assert stored["timings"] == sample_document["timings"]  # the whole document comes back
    row = (
        sqlite3.connect(tmp_path / STORE_FILE)
        .execute("SELECT outcome, origin_state_dir FROM runs")
        .fetchone()
    )
    assert row == ("aborted", str(tmp_path))


def test_put_many_counts_new_runs_and_refuses_a_foreign_document_naming_the_field(
    tmp_path: Path, sample_document: dict[str, Any]
) -> None:
    docs = [
        doc(sample_document, f"20260105-09000{i}-aaaaaa", "A", T + timedelta(minutes=i)) for i in range(3)
    ]
    broken = copy.deepcopy(docs[0])
    del broken["scenario"]["title"]
    with open_store(tmp_path, None) as store:
        assert store.put(docs[0]) is True
        assert store.put_many(docs) == 2
        with pytest.raises(UsageError, match=r"field scenario\.title: missing"):
            store.put_many([doc(sample_document, "20260105-100000-bbbbbb", "B", T), broken])
        assert store.count() == 3  # all or nothing: the valid one of that batch was not stored


def test_documents_filter_by_scenario_and_since_ordered_by_start(
    tmp_path: Path, sample_document: dict[str, Any]
) -> None:
    with open_store(tmp_path, None) as store:
        store.put_many(
            [
                doc(sample_document, "r3", "Checkout pool exhausted", T + timedelta(days=2)),
                doc(sample_document, "r1", "Checkout pool exhausted", T),
                doc(sample_document, "r2", "Cache node lost", T + timedelta(days=1)),
                doc(sample_document, "r4", "Cache node lost", T + timedelta(days=3, milliseconds=5)),
            ]
        )

        def ids(**kwargs: Any) -> list[str]:
            return [d["run"]["id"] for d in store.documents(**kwargs)]

        assert ids() == ["r1", "r2", "r3", "r4"]
        assert ids(scenario=["Checkout pool exhausted"]) == ["r1", "r3"]
        assert ids(scenario=["cache-node-lost"]) == ["r2", "r4"]  # the title's slug works too
        assert ids(scenario=["Cache node lost", "Checkout pool exhausted"]) == ["r1", "r2", "r3", "r4"]
        assert ids(scenario=[]) == [] and ids(scenario=["nothing"]) == []
        assert ids(since=T + timedelta(days=1)) == ["r2", "r3", "r4"]
        assert ids(since=(T + timedelta(days=3)).replace(tzinfo=None)) == ["r4"]  # naive: UTC
        assert ids(scenario=["Cache node lost"], since=T + timedelta(days=2)) == ["r4"]


def test_two_writers_at_once_both_land(tmp_path: Path, sample_document: dict[str, Any]) -> None:
    """The daemon and the CLI write the same SQLite file: the busy timeout makes one wait, not fail."""
    open_store(tmp_path, None).close()
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            with open_store(tmp_path, None) as store:
                for i in range(40):
                    store.put(doc(sample_document, f"{name}-{i:02d}", name, T + timedelta(seconds=i)))
        except BaseException as error:  # the assertion below reports it
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("cli", "daemon")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with open_store(tmp_path, None) as store:
        assert store.count() == 80


def test_the_dsn_comes_from_the_environment_when_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAOSRUNNER_RESULTS_DSN", "postgresql://results:s3cr3t-pw@127.0.0.1:1/results")
    with pytest.raises(ServiceUnreachable) as unreachable:
        open_store(tmp_path)  # port 1 on loopback: nothing listens
    message = unreachable.value.show()
    assert "s3cr3t-pw" not in message and "127.0.0.1" in message and "[redacted]" in message
    monkeypatch.setenv("CHAOSRUNNER_RESULTS_DSN", "")
    with open_store(tmp_path) as store:
        assert store.dialect == "sqlite"
