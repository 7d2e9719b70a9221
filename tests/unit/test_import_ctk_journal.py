"""`chaosrunner import ctk-journal`: a past Chaos Toolkit run becomes a run in our history with a report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaosrunner.cli import cli
from chaosrunner.engine.rundir import all_runs
from chaosrunner.results.store import open_store

JOURNAL = Path(__file__).parents[1] / "corpus" / "ctk" / "journal-deviated.json"


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_the_imported_run_is_listed_in_history_and_its_report_renders(tmp_path: Path, state: Path) -> None:
    code, output = run_cli("import", "ctk-journal", str(JOURNAL))
    assert code == 0, output
    (run,) = all_runs()
    assert run.run_id.startswith("20240312-093001-")  # named by when it ran, so runs sort in time
    assert f"imported run {run.run_id}" in output and "deviated" in output
    assert run.journal_path.stat().st_mode & 0o777 == 0o600
    assert "results: stored in sqlite" in output  # where coverage and other machines' history read
    with open_store(state) as store:
        assert store.run_ids() == {run.run_id}

    code, output = run_cli("runs")
    assert code == 0 and run.run_id in output and "deviated" in output

    code, output = run_cli("history", "--json")
    (entry,) = json.loads(output)
    assert (entry["run_id"], entry["status"], entry["scenario"]) == (
        run.run_id,
        "deviated",
        "Checkout survives losing a pod (CI run)",
    )

    out = tmp_path / "report"
    code, output = run_cli("report", run.run_id, "--out", str(out), "--format", "md,json")
    assert code == 0, output
    assert "results: updated in sqlite" in output  # a rewritten report refreshes the stored one
    markdown = (out / "report.md").read_text()
    assert "terminate-checkout-pod" in markdown and "succeeded in 2.70s" in markdown
    assert "notify-team" in markdown and "slack token missing" in markdown  # the failed activity's error
    assert "tolerance NOT met" in markdown  # the deviation after the method
    report = json.loads((out / "report.json").read_text())
    assert json.dumps(report).count("09:30:01") >= 1  # times are the run's, not the import's


def test_the_same_journal_is_not_imported_twice() -> None:
    assert run_cli("import", "ctk-journal", str(JOURNAL))[0] == 0
    code, output = run_cli("import", "ctk-journal", str(JOURNAL))
    assert code == 2 and "already imported as run" in output
    assert len(all_runs()) == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [("{", "JSON syntax error"), ('{"status": "completed"}', "not a Chaos Toolkit journal")],
)
def test_a_broken_journal_exits_2_and_writes_no_run(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "journal.json"
    path.write_text(content)
    code, output = run_cli("import", "ctk-journal", str(path))
    assert code == 2 and expected in output and "Traceback" not in output
    assert all_runs() == []


def test_an_interrupted_run_is_imported_as_aborted(tmp_path: Path) -> None:
    journal = json.loads(JOURNAL.read_text())
    journal.update(status="interrupted", deviated=False)
    path = tmp_path / "interrupted.json"
    path.write_text(json.dumps(journal))
    assert run_cli("import", "ctk-journal", str(path))[0] == 0
    _, output = run_cli("runs")
    assert "aborted" in output
