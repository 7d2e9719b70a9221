"""What `chaosrunner serve` reads: the state folder's runs as rows, and a run's report on demand.

Journals are written here by hand (a run_started with the scenario, its
phases, run_finished) into a temporary state folder; the real `serve`
process over a real run is tests/integration/test_serve_command.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chaosrunner.engine.journal import Journal, JournalEvent, format_time
from chaosrunner.engine.rundir import RunDir
from chaosrunner.report.past_runs import PastRuns
from chaosrunner.scenario.loader import scenario_from_data
from tests.unit.scenario_factory import BASE

STARTED = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))


def write(run: RunDir, event_type: str, when: datetime, **fields: object) -> None:
    Journal(run.journal_path).write(
        JournalEvent(type=event_type, time=format_time(when), offset=0.0, **fields)
    )


def finished_run(run_id: str, title: str, started: datetime) -> RunDir:
    run = RunDir.create(run_id)
    document = {**BASE, "metadata": {**BASE["metadata"], "title": title}}
    document["abort_conditions"] = BASE["abort_conditions"][:1]  # the journal's copy is resolved: no `use:`
    scenario = scenario_from_data(document, source="t")
    write(
        run,
        "run_started",
        started,
        run_id=run_id,
        scenario_title=title,
        scenario=scenario.model_dump(mode="json", by_alias=True),
        mode="gameday",
    )
    flag = {"fault": "flag", "kind": "inprocess.flag"}
    write(run, "fault_injected", started + timedelta(seconds=1), **flag, revert_record={"flag": "x"})
    write(
        run,
        "responder",
        started + timedelta(seconds=31),
        event="detected",
        at=format_time(started + timedelta(seconds=31)),
        by="alice",
        via="synthetic",
    )
    write(run, "fault_reverted", started + timedelta(seconds=50), **flag, attempts=1, by="runner")
    write(run, "run_finished", started + timedelta(seconds=60), status="completed", exit_code=0, detail="ok")
    return run


def test_rows_are_the_history_newest_first() -> None:
    finished_run("20250301-090000-aaaaaa", "Older <i>run</i>", STARTED)
    finished_run("20250302-090000-bbbbbb", "Newer run", STARTED + timedelta(days=1))

    rows = PastRuns().rows()

    assert [row["run_id"] for row in rows] == ["20250302-090000-bbbbbb", "20250301-090000-aaaaaa"]
    newest = rows[0]
    assert newest["title"] == "Newer run" and newest["status"] == "completed"
    assert newest["ttd_s"] == 30.0 and newest["started"].startswith("2025-03-02T09:00:00")
    assert set(newest) == {"run_id", "title", "started", "status", "ttd_s", "ttm_s", "score", "grade"}
    assert PastRuns().rows()[1]["title"] == "Older <i>run</i>"  # data: the page escapes it


def test_a_report_is_only_for_a_run_in_the_listing() -> None:
    run = finished_run("20250301-090000-aaaaaa", "Checkout", STARTED)
    past = PastRuns()
    html = past.report_html(run.run_id)
    assert html is not None and run.run_id in html and "alice" in html
    assert past.report_html("20250301-090000-ffffff") is None
    for crafted in ("../20250301-090000-aaaaaa", "20250301-090000-aaaaaa/..", "", "."):
        assert past.report_html(crafted) is None


def test_reports_are_cached_until_the_journal_grows() -> None:
    run = finished_run("20250301-090000-aaaaaa", "Checkout", STARTED)
    past = PastRuns(cached=1)
    first = past.report_html(run.run_id)
    assert past.report_html(run.run_id) is first  # the same text: not rendered again
    write(
        run,
        "responder",
        STARTED + timedelta(seconds=59),
        event="note",
        value="x",
        at=format_time(STARTED),
        by="zed",
    )
    again = past.report_html(run.run_id)
    assert again is not first and again is not None and "zed" in again
