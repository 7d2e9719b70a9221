"""History across the state folder's journals, and the `report` and `history` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chaosrunner.cli import cli
from chaosrunner.engine.rundir import RunDir
from chaosrunner.report.history import SUMMARY_FILE, history, of_scenario
from chaosrunner.report.sample import RUN_ID, sample_run


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CHAOSRUNNER_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "state"


def write_run(state: Path, run_id: str, shift_days: int = 0, title: str | None = None) -> Path:
    """The sample run's journal under another id (and day), as the runner would have left it."""
    debrief, _ = sample_run()
    folder = state / "runs" / run_id
    folder.mkdir(parents=True)
    lines = []
    for event in debrief.events:
        data: dict[str, Any] = dict(event)
        for key in ("time", "at", "since"):
            if key in data:
                data[key] = data[key].replace("2026-11-27", f"2026-11-{27 - shift_days:02d}")
        if data["type"] == "run_started":
            data["run_id"] = run_id
            if title:
                data["scenario_title"] = title
                data["scenario"]["metadata"]["title"] = title
        lines.append(json.dumps(data))
    (folder / "journal.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_history_measures_from_the_journal_when_no_report_kept_figures(state: Path) -> None:
    write_run(state, "20261120-140000-aaaaaa", shift_days=7)
    write_run(state, "20261125-140000-bbbbbb", shift_days=2)
    write_run(state, "20261126-140000-cccccc", shift_days=1, title="Another scenario")
    entries = history("Checkout pool exhausted")
    assert [entry.run_id for entry in entries] == ["20261120-140000-aaaaaa", "20261125-140000-bbbbbb"]
    first = entries[0]
    assert first.source == "journal" and first.status == "completed"
    assert first.ttd_seconds == 21.0  # offline: Alertmanager's startsAt, journaled by the watcher
    assert first.ttm_seconds == 125.0  # offline: the team's mark (no SLI data to confirm it)
    assert len(history()) == 3
    assert [e.run_id for e in history("another-scenario")] == ["20261126-140000-cccccc"]
    # by file: a retitled scenario's runs come along (all three ran scenarios/checkout-pool.yaml)
    assert len(history("checkout-pool.yaml")) == len(history("scenarios/checkout-pool.yaml")) == 3


def test_kept_figures_win_and_this_run_comes_last(state: Path) -> None:
    old = write_run(state, "20261120-140000-aaaaaa", shift_days=7)
    kept = {"version": 1, "run_id": "20261120-140000-aaaaaa", "scenario": "Checkout pool exhausted",
            "scenario_key": "checkout-pool-exhausted", "started": "2026-11-20T14:00:00.000000Z",
            "status": "completed", "ttd_seconds": 61.0, "ttm_seconds": 300.0, "ttr_seconds": 310.0,
            "ttd_target_seconds": 60.0, "ttm_target_seconds": 120.0, "score": 55.0, "grade": "F",
            "source": "report"}  # fmt: skip
    (old / SUMMARY_FILE).write_text(json.dumps(kept))
    write_run(state, "20261128-140000-dddddd", shift_days=-1)  # a later run is not "earlier"
    debrief, _ = sample_run()
    entries = of_scenario(debrief)
    assert [(e.run_id, e.source, e.score) for e in entries] == [
        ("20261120-140000-aaaaaa", "report", 55.0),
        (RUN_ID, "report", 92.1),
    ]


def test_a_damaged_journal_is_listed_not_fatal(state: Path) -> None:
    folder = state / "runs" / "20261121-140000-eeeeee"
    folder.mkdir(parents=True)
    (folder / "journal.jsonl").write_text('{"type": "phase", "time": "2026-11-21T14:00:00Z", "offset": 0}\n')
    [entry] = history()
    assert entry.status == "damaged" and entry.ttd_seconds is None


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_report_command_writes_the_formats_asked_for(state: Path, tmp_path: Path) -> None:
    write_run(state, RUN_ID)
    result = run_cli("report", RUN_ID, "--offline", "--format", "md,html")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "reports" / f"2026-11-27-checkout-pool-exhausted-{RUN_ID}"
    assert result.output.splitlines() == [f"html  {folder / 'report.html'}", f"md    {folder / 'report.md'}"]
    assert sorted(path.name for path in folder.iterdir()) == ["chart.svg", "report.html", "report.md"]
    assert not (state / "runs" / RUN_ID / SUMMARY_FILE).exists()  # offline figures are not kept


def test_report_command_out_and_bad_input(state: Path, tmp_path: Path) -> None:
    write_run(state, RUN_ID)
    out = tmp_path / "elsewhere"
    result = run_cli("report", RUN_ID, "--offline", "--format", "json", "--out", str(out))
    assert result.exit_code == 0 and json.loads((out / "report.json").read_text())["run"]["id"] == RUN_ID
    bad = run_cli("report", RUN_ID, "--format", "pdf")
    assert bad.exit_code == 2 and "--format 'pdf'" in bad.output
    unknown = run_cli("report", "20990101-000000-abcdef")
    assert unknown.exit_code == 2 and "no run" in unknown.output


def test_history_command_table_and_json(state: Path) -> None:
    write_run(state, "20261120-140000-aaaaaa", shift_days=7)
    write_run(state, "20261125-140000-bbbbbb", shift_days=2)
    result = run_cli("history", "Checkout pool exhausted")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Checkout pool exhausted (checkout-pool-exhausted): 2 run(s)"
    assert lines[1].split() == ["RUN", "STARTED", "STATUS", "TTD", "TTM", "SCORE", "FROM"]
    assert lines[2].split()[:5] == ["20261120-140000-aaaaaa", "2026-11-20", "14:00:00", "completed", "21s"]
    data = json.loads(run_cli("history", "--json").output)
    assert [item["run_id"] for item in data] == ["20261120-140000-aaaaaa", "20261125-140000-bbbbbb"]
    assert run_cli("history", "nothing-like-it").output.strip() == "no runs of 'nothing-like-it'"


def test_the_report_modules_stay_out_of_start_up(repo: Path) -> None:
    import subprocess
    import sys

    probe = (
        "import sys, chaosrunner.report.writer; "
        "print(sorted(m for m in sys.modules if m.startswith('matplotlib')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.strip() == "[]"


def test_kept_summary_is_written_beside_the_journal(state: Path) -> None:
    from chaosrunner.report.writer import write_run_report

    write_run(state, RUN_ID)
    debrief, metrics = sample_run()
    written = write_run_report(debrief, metrics=metrics)
    kept = json.loads((RunDir.find(RUN_ID).path / SUMMARY_FILE).read_text())
    assert kept["score"] == 92.1 and kept["ttm_seconds"] == 100.0 and kept["source"] == "report"
    assert written.main.name == "report.html"
