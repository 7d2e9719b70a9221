"""The results store on the rig's PostgreSQL: two state folders (two machines) feeding one store.

Each test gets a fresh database (``postgres_dsn``). The machines are two state
folders and the real command line in a new process each time, with
``CHAOSRUNNER_RESULTS_DSN`` naming the database, as two laptops or a laptop and
the schedule daemon would have it.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from chaosrunner.errors import ResultsStoreTooNew
from chaosrunner.results.record import render_offline
from chaosrunner.results.schema import LATEST, MIGRATIONS, Migration
from chaosrunner.results.store import open_store
from tests.support.cli import run_chaosrunner
from tests.support.finished_runs import write_finished_run

REPO = Path(__file__).resolve().parents[2]
T = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
TITLE = "Checkout pool exhausted"


def machine(tmp_path: Path, name: str, dsn: str) -> dict[str, str]:
    """The environment of one machine: its own state folder and reports, the shared store."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CHAOSRUNNER_STATE_DIR": str(tmp_path / name / "state"),
        "CHAOSRUNNER_REPORTS_DIR": str(tmp_path / name / "reports"),
        "CHAOSRUNNER_RESULTS_DSN": dsn,
    }


def chaosrunner(env: dict[str, str], *args: str, cwd: Path) -> tuple[int, str, str]:
    done = run_chaosrunner(*args, env=env, cwd=cwd, timeout=240)
    return done.returncode, done.stdout, done.stderr


PLANTED_PASSWORD = "Pl4nted-results-Passw0rd"


@pytest.fixture
def store_dsn(postgres_dsn: str) -> str:
    """This test's database, with a password in the DSN (the rig trusts loopback, so it is not checked):
    what the tests assert never reaches an output."""
    parts = urllib.parse.urlsplit(postgres_dsn)
    netloc = f"{parts.username}:{PLANTED_PASSWORD}@{parts.hostname}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def test_two_machines_sync_into_one_store_and_history_reads_both(tmp_path: Path, store_dsn: str) -> None:
    laptop, staging = machine(tmp_path, "laptop", store_dsn), machine(tmp_path, "staging", store_dsn)
    laptop_state, staging_state = (
        Path(laptop["CHAOSRUNNER_STATE_DIR"]),
        Path(staging["CHAOSRUNNER_STATE_DIR"]),
    )
    write_finished_run(laptop_state, "20250301-090000-aaaaaa", TITLE, T, detected_after=31)
    write_finished_run(laptop_state, "20250303-090000-cccccc", "Cache node lost", T + timedelta(days=2))
    write_finished_run(
        staging_state, "20250302-090000-bbbbbb", TITLE, T + timedelta(days=1), detected_after=12
    )
    write_finished_run(staging_state, "20250304-090000-dddddd", TITLE, T + timedelta(days=3), finished=False)

    code, out, err = chaosrunner(laptop, "results", "sync", cwd=tmp_path)
    assert code == 0, err
    assert "uploaded 2 run(s) (2 rendered from the journal), 0 already there" in out
    code, out, err = chaosrunner(staging, "results", "sync", "--json", cwd=tmp_path)
    assert code == 0, err
    counts = json.loads(out)
    assert (counts["uploaded"], counts["unfinished"], counts["runs_in_store"]) == (1, 1, 3)
    code, out, err = chaosrunner(staging, "results", "sync", cwd=tmp_path)
    assert code == 0 and "uploaded 0 run(s)" in out and "the store holds 3 run(s)" in out

    # Either machine's history has both machines' runs of the scenario, with their own figures
    # (and staging its unfinished run, from its own state folder: never stored, still its history).
    for env, local in ((laptop, []), (staging, [("20250304-090000-dddddd", "journal")])):
        code, out, err = chaosrunner(env, "history", TITLE, "--json", cwd=tmp_path)
        assert code == 0, err
        rows = json.loads(out)
        assert [(row["run_id"], row["ttd_seconds"]) for row in rows[:2]] == [
            ("20250301-090000-aaaaaa", 31.0),
            ("20250302-090000-bbbbbb", 12.0),
        ]
        # The other machine's run comes from the store; this machine's own from its journal.
        sources = [row["source"] for row in rows[:2]]
        assert sorted(source.startswith("store:") for source in sources) == [False, True], sources
        assert "journal" in sources
        assert [(row["run_id"], row["source"]) for row in rows[2:]] == local

    # Where the store is, with the password hidden; every output so far is free of it.
    code, out, err = chaosrunner(laptop, "results", "status", cwd=tmp_path)
    assert code == 0, err
    assert "postgresql " in out and "[redacted]" in out and PLANTED_PASSWORD not in out + err
    assert f"schema version: {LATEST}" in out and "runs:           3" in out
    with psycopg.connect(store_dsn) as conn:
        origins = dict(conn.execute("SELECT run_id, origin_state_dir FROM runs").fetchall())
        kinds = conn.execute("SELECT json_typeof(document) FROM runs").fetchall()
    assert origins["20250302-090000-bbbbbb"] == str(staging_state)
    assert origins["20250301-090000-aaaaaa"] == str(laptop_state)
    assert {kind for (kind,) in kinds} == {"object"}  # JSON, queryable in the database too


def scenario_file(tmp_path: Path, prometheus_url: str, title: str) -> Path:
    document: dict[str, Any] = {
        "metadata": {"title": title, "owner": "tests", "expected_severity": "P3", "hypothesis": "h"},
        "target": {"prometheus": prometheus_url},
        "steady_state": [
            {"name": "up", "expr": 'min(up{job="prometheus"})', "comparator": "==", "threshold": 1}
        ],
        "faults": [{"name": "flag", "kind": "inprocess.flag", "params": {"flag": "x"}, "duration": "1s"}],
        "abort_conditions": [
            {
                "name": "prometheus-down",
                "expr": 'min(up{job="prometheus"})',
                "comparator": "<",
                "threshold": 1,
            }
        ],
        "gameday": {"check_interval": "250ms"},
    }
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_finished_runs_on_two_machines_land_in_the_store_as_they_end(
    tmp_path: Path, store_dsn: str, prometheus_url: str, unique_name: str
) -> None:
    title = f"results {unique_name}"
    path = scenario_file(tmp_path, prometheus_url, title)
    laptop, staging = machine(tmp_path, "laptop", store_dsn), machine(tmp_path, "staging", store_dsn)
    run_ids = []
    for env in (laptop, staging):
        code, out, err = chaosrunner(env, "run", str(path), "--plain", cwd=tmp_path)
        assert code == 0, out + err
        assert "results: stored in postgresql " in out and PLANTED_PASSWORD not in out + err
        [run_dir] = list((Path(env["CHAOSRUNNER_STATE_DIR"]) / "runs").iterdir())
        kept = json.loads((run_dir / "report.json").read_text())
        assert kept["run"]["id"] == run_dir.name and (run_dir / "report.json").stat().st_mode & 0o077 == 0
        run_ids.append(run_dir.name)

    with open_store(tmp_path, store_dsn) as store:
        documents = list(store.documents([title]))
    assert [document["run"]["id"] for document in documents] == run_ids  # oldest first
    assert all(document["run"]["status"] == "completed" for document in documents)

    # The laptop's history shows the staging run it never had in its state folder.
    code, out, err = chaosrunner(laptop, "history", title, cwd=tmp_path)
    assert code == 0, err
    assert "2 run(s)" in out and run_ids[1] in out
    # Nothing left to sync: both runs were stored as they ended.
    code, out, _ = chaosrunner(staging, "results", "sync", cwd=tmp_path)
    assert "uploaded 0 run(s)" in out and "1 already there" in out


def test_upserts_filters_and_concurrent_first_opens_on_postgresql(tmp_path: Path, store_dsn: str) -> None:
    errors: list[BaseException] = []

    def first_open() -> None:
        try:
            open_store(tmp_path, store_dsn).close()
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=first_open) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(store_dsn) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == [migration.version for migration in MIGRATIONS]  # migrated once

    run = write_finished_run(tmp_path / "state", "20250301-090000-aaaaaa", TITLE, T)
    document = render_offline(run)
    later = json.loads(json.dumps(document))
    later["run"].update(id="20250305-090000-eeeeee", started="2025-03-05T09:00:00.000Z")
    with open_store(tmp_path, store_dsn) as store:
        assert store.put(document) is True
        assert store.put({**document, "run": {**document["run"], "status": "aborted"}}) is False
        assert store.put_many([document, later]) == 1
        assert store.run_ids() == {"20250301-090000-aaaaaa", "20250305-090000-eeeeee"}
        assert [d["run"]["id"] for d in store.documents(since=T + timedelta(days=1))] == [
            "20250305-090000-eeeeee"
        ]
        assert [d["run"]["id"] for d in store.documents(["checkout-pool-exhausted"])] == [
            "20250301-090000-aaaaaa",
            "20250305-090000-eeeeee",
        ]
        assert next(store.documents())["run"]["status"] == "completed"  # put_many replaced the aborted one


def test_a_postgresql_store_newer_than_the_code_is_refused(tmp_path: Path, store_dsn: str) -> None:
    future = Migration(LATEST + 1, "future", sqlite=(), postgresql=("CREATE TABLE future (x INT)",))
    open_store(tmp_path, store_dsn, migrations=(*MIGRATIONS, future)).close()
    with pytest.raises(ResultsStoreTooNew):
        open_store(tmp_path, store_dsn)
    code, out, err = chaosrunner(machine(tmp_path, "laptop", store_dsn), "results", "sync", cwd=tmp_path)
    assert code == 3 and f"schema version {LATEST + 1}" in err and "Traceback" not in err
    assert PLANTED_PASSWORD not in out + err
