"""Finished runs into the results store: report.json beside the journal, `results sync`, history."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from chaosrunner.cli import cli
from chaosrunner.errors import UsageError
from chaosrunner.results.history import merged_history
from chaosrunner.results.record import REPORT_FILE, record_finished_run, render_offline, sync
from chaosrunner.results.schema import MIGRATIONS, Migration
from chaosrunner.results.store import STORE_FILE, open_store
from tests.support.finished_runs import write_finished_run

T = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
TITLE = "Checkout pool exhausted"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CHAOSRUNNER_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.delenv("CHAOSRUNNER_RESULTS_DSN", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "state"


def cli_run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def test_a_finished_runs_report_is_kept_beside_the_journal_and_stored(state: Path, tmp_path: Path) -> None:
    run = write_finished_run(state, "20250301-090000-aaaaaa", TITLE, T)
    written = tmp_path / "reports" / "report.json"
    written.parent.mkdir()
    written.write_text(json.dumps(render_offline(run)))
    recorded = record_finished_run(run.run_id, written)
    assert recorded.new and recorded.where == f"sqlite {state / STORE_FILE}"
    kept = run.path / REPORT_FILE
    assert kept.read_text() == written.read_text()
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600
    assert record_finished_run(run.run_id, written).new is False  # the same run again: updated
    with open_store(state) as store:
        [document] = store.documents()
    assert document["run"]["id"] == run.run_id and document["timings"]["ttd"]["seconds"] == 31.0


def test_without_a_written_report_the_document_is_rendered_from_the_journal(state: Path) -> None:
    run = write_finished_run(state, "20250301-090000-aaaaaa", TITLE, T)
    assert record_finished_run(run.run_id).new
    assert json.loads((run.path / REPORT_FILE).read_text())["run"]["id"] == run.run_id


def test_another_runs_report_is_refused(state: Path) -> None:
    first = write_finished_run(state, "20250301-090000-aaaaaa", TITLE, T)
    second = write_finished_run(state, "20250302-090000-bbbbbb", TITLE, T + timedelta(days=1))
    other = state / "other.json"
    other.write_text(json.dumps(render_offline(first)))
    with pytest.raises(UsageError, match="the report of another run"):
        record_finished_run(second.run_id, other)
    assert not (second.path / REPORT_FILE).exists()


def test_sync_uploads_what_the_store_lacks_and_skips_unfinished_runs(state: Path) -> None:
    stored = write_finished_run(state, "20250301-090000-aaaaaa", TITLE, T)
    record_finished_run(stored.run_id)
    kept = write_finished_run(state, "20250302-090000-bbbbbb", TITLE, T + timedelta(days=1))
    (kept.path / REPORT_FILE).write_text(json.dumps(render_offline(kept)))
    bare = write_finished_run(state, "20250303-090000-cccccc", "Cache node lost", T + timedelta(days=2))
    write_finished_run(state, "20250304-090000-dddddd", TITLE, T + timedelta(days=3), finished=False)
    with open_store(state) as store:
        counts = sync(store)
        assert (counts.uploaded, counts.already, counts.rendered, counts.unfinished) == (2, 1, 1, 1)
        assert counts.failed == {}
        assert store.run_ids() == {
            "20250301-090000-aaaaaa",
            "20250302-090000-bbbbbb",
            "20250303-090000-cccccc",
        }
        assert (bare.path / REPORT_FILE).exists()  # rendered once, kept
        again = sync(store)
        assert (again.uploaded, again.already, again.unfinished) == (0, 3, 1)


def test_sync_reports_a_damaged_run_and_uploads_the_others(state: Path) -> None:
    write_finished_run(state, "20250301-090000-aaaaaa", TITLE, T)
    damaged = write_finished_run(state, "20250302-090000-bbbbbb", TITLE, T + timedelta(days=1))
    lines = damaged.journal_path.read_text().splitlines()
    started = json.loads(lines[0])
    started["scenario"] = {"metadata": "not a scenario"}
    damaged.journal_path.write_text("\n".join([json.dumps(started), *lines[1:]]) + "\n")
    code, out, err = cli_run("results", "sync")
    assert code == 1
    assert (
        "uploaded 1 run(s) (1 rendered from the journal), 0 already there, 0 unfinished skipped, 1 failed"
        in out
    )
    assert "failed 20250302-090000-bbbbbb: " in err


def test_status_and_sync_commands(state: Path) -> None:
    code, out, _ = cli_run("results", "status")
    assert code == 0 and "not created yet" in out and not (state / STORE_FILE).exists()
    write_finished_run(state, "20250301-090000-aaaaaa", TITLE, T)
    code, out, _ = cli_run("results", "sync")
    assert code == 0 and out.splitlines()[-1].startswith("uploaded 1 run(s)")
    code, out, _ = cli_run("results", "status", "--json")
    status = json.loads(out)
    assert status == {
        "store": f"sqlite {state / STORE_FILE}",
        "exists": True,
        "schema_version": MIGRATIONS[-1].version,
        "code_schema_version": MIGRATIONS[-1].version,
        "runs": 1,
    }


def test_a_newer_store_is_refused_by_the_commands_with_exit_3(state: Path) -> None:
    newer = Migration(
        len(MIGRATIONS) + 1, "from the future", sqlite=("CREATE TABLE future (x INT)",), postgresql=()
    )
    open_store(state, None, migrations=(*MIGRATIONS, newer)).close()
    for args in (("results", "status"), ("results", "sync")):
        code, _, err = cli_run(*args)
        assert code == 3 and "error: results store" in err and "upgrade chaosrunner" in err
        assert "Traceback" not in err


def test_history_reads_the_store_across_machines_and_falls_back_to_this_folder(
    state: Path, tmp_path: Path
) -> None:
    here = write_finished_run(state, "20250301-090000-aaaaaa", TITLE, T)
    record_finished_run(here.run_id)
    write_finished_run(state, "20250303-090000-cccccc", TITLE, T + timedelta(days=2))  # never stored
    # Another machine's run, put into this store by that machine (its own state folder and host name).
    laptop_state = tmp_path / "laptop"
    laptop_run = write_finished_run(
        laptop_state, "20250302-090000-bbbbbb", TITLE, T + timedelta(days=1), detected_after=12
    )
    with open_store(state, origin_host="laptop") as laptop:  # one store, as a shared PostgreSQL would be
        assert laptop.put(render_offline(laptop_run))

    merged = merged_history(TITLE, state)
    assert [(e.run_id, e.source) for e in merged.entries] == [
        ("20250301-090000-aaaaaa", "journal"),  # this machine's own run: its journal is the truth here
        ("20250302-090000-bbbbbb", "store:laptop"),
        ("20250303-090000-cccccc", "journal"),
    ]
    assert [e.ttd_seconds for e in merged.entries] == [31.0, 12.0, 31.0]
    assert merged_history("checkout-pool-exhausted.yaml", state).entries == merged.entries  # by file name
    assert merged_history("Cache node lost", state).entries == []

    code, out, _ = cli_run("history", TITLE)
    assert code == 0 and "3 run(s)" in out and "store:laptop" in out
    code, out, _ = cli_run("history", "--json")
    assert [row["run_id"] for row in json.loads(out)] == [e.run_id for e in merged.entries]

    # A store this code cannot read: history is this folder's alone, and says why.
    newer = Migration(len(MIGRATIONS) + 1, "future", sqlite=("CREATE TABLE future (x INT)",), postgresql=())
    open_store(state, None, migrations=(*MIGRATIONS, newer)).close()
    code, out, err = cli_run("history", TITLE)
    assert code == 0 and "2 run(s)" in out and "store:laptop" not in out
    assert "warning: results store unreadable, this state folder only" in err


def test_the_end_of_a_run_records_it_and_a_failing_store_is_only_a_warning(
    state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaosrunner.cli import run_commands
    from chaosrunner.report.writer import WrittenReport

    run = write_finished_run(state, "20250301-090000-aaaaaa", TITLE, T)
    folder = state.parent / "reports" / "r"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(render_offline(run)))
    written = WrittenReport(folder, {"json": folder / "report.json"})
    monkeypatch.setattr(run_commands, "write_report_at_end", lambda *args: written)
    result = SimpleNamespace(
        run_id=run.run_id,
        status=SimpleNamespace(value="completed"),
        detail="ok",
        exit_code=0,
        journal_path=run.journal_path,
    )
    with pytest.raises(SystemExit) as finished:
        run_commands.finish_run(result, False, None, as_json=False)
    assert finished.value.code == 0
    assert f"results: stored in sqlite {state / STORE_FILE}" in capsys.readouterr().out
    with open_store(state) as store:
        assert store.run_ids() == {run.run_id}

    newer = Migration(len(MIGRATIONS) + 1, "future", sqlite=("CREATE TABLE future (x INT)",), postgresql=())
    open_store(state, None, migrations=(*MIGRATIONS, newer)).close()
    result.exit_code = 1
    with pytest.raises(SystemExit) as finished:
        run_commands.finish_run(result, False, None, as_json=True)
    assert finished.value.code == 1  # the run's own exit code, whatever the store said
    err = capsys.readouterr().err
    assert "warning: the results store failed: ResultsStoreTooNew:" in err


def test_a_scheduled_run_with_a_failing_store_gets_a_warning_not_a_failure(state: Path) -> None:
    from chaosrunner.schedule.execute import record_in_results

    run = write_finished_run(state, "20250301-090000-aaaaaa", TITLE, T)
    assert record_in_results(run.run_id, None) is None
    (state / STORE_FILE).write_bytes(b"this is not a database, it is text " * 100)
    problem = record_in_results(run.run_id, None)
    assert problem is not None and problem.startswith("warning: results store: EnvironmentProblem:")
