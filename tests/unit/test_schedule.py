"""The schedule: file validation, timing, and the daemon driven by a fake clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrunner.errors import ScenarioError
from chaosrunner.schedule.daemon import RunOutcome, ScheduleDaemon
from chaosrunner.schedule.history import History
from chaosrunner.schedule.loader import load_schedule
from chaosrunner.schedule.timing import jitter_for, refusal, upcoming

SCENARIO = {
    "metadata": {"title": "flag", "owner": "o", "expected_severity": "P3", "hypothesis": "h"},
    "faults": [{"name": "f", "kind": "inprocess.flag", "params": {"flag": "s"}, "duration": "1s"}],
}


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))


def write(tmp_path: Path, **schedule: Any) -> Path:
    (tmp_path / "flag.yaml").write_text(yaml.safe_dump(SCENARIO))
    data = {
        "kind": "Schedule",
        "name": "test",
        "entries": [{"name": "hourly", "scenario": "flag.yaml", "cron": "0 * * * *"}],
    }
    data.update(schedule)
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class FakeClock:
    """Time moves only when the daemon sleeps or a run takes time."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        self.current += timedelta(seconds=seconds)


class FakeExecutor:
    def __init__(
        self,
        clock: FakeClock,
        outcomes: list[RunOutcome] | None = None,
        takes: timedelta = timedelta(minutes=2),
    ) -> None:
        self.clock = clock
        self.outcomes = outcomes or []
        self.takes = takes
        self.calls: list[datetime] = []

    def __call__(self, entry: Any, scenario: Any, path: Path) -> RunOutcome:
        self.calls.append(self.clock.now())
        self.clock.current += self.takes
        if self.outcomes:
            return self.outcomes.pop(0)
        return RunOutcome(f"run-{len(self.calls)}", "completed", 0, "the hypothesis held")


def drive(daemon: ScheduleDaemon, until: datetime, clock: FakeClock) -> None:
    daemon.start()
    while clock.now() < until and daemon.step():
        pass


MONDAY = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # a Monday


def test_a_valid_schedule_loads_with_its_scenarios(tmp_path: Path) -> None:
    loaded = load_schedule(write(tmp_path))
    assert loaded.name == "test" and loaded.entries[0].timezone == "UTC"
    assert loaded.entries[0].lock.startswith("target-")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"entries": [{"name": "x", "scenario": "flag.yaml", "cron": "every hour"}]},
            "entries[0].cron",
            "five-field cron",
        ),
        (
            {"entries": [{"name": "x", "scenario": "missing.yaml", "cron": "0 * * * *"}]},
            "entries[0].scenario",
            "no scenario file",
        ),
        ({"defaults": {"timezone": "Mars/Olympus"}}, "defaults.timezone", "unknown time zone"),
        (
            {"defaults": {"windows": [{"start": "16:00", "end": "10:00"}]}},
            "defaults.windows[0]",
            "ends (10:00) before",
        ),
        (
            {"defaults": {"windows": [{"days": ["mon"], "start": "25:00"}]}},
            "defaults.windows[0].start",
            "HH:MM",
        ),
        ({"defaults": {"jitter": "5 minutes"}}, "defaults.jitter", "duration"),
        (
            {"entries": [{"name": "x", "scenario": "flag.yaml", "cron": "0 * * * *", "colour": "red"}]},
            "entries[0].colour",
            "unknown key",
        ),
    ],
)
def test_schedule_errors_are_located(tmp_path: Path, change: dict, field: str, message: str) -> None:
    path = write(tmp_path, **change)
    with pytest.raises(ScenarioError) as caught:
        load_schedule(path)
    problem = caught.value.problems[0]
    assert problem.file == str(path) and problem.line > 1 and problem.field == field
    assert message in problem.message


def test_a_broken_scenario_is_reported_in_its_own_file(tmp_path: Path) -> None:
    path = write(tmp_path)
    (tmp_path / "flag.yaml").write_text("metadata: {title: t}\nfaults: []\n")
    with pytest.raises(ScenarioError) as caught:
        load_schedule(path)
    files = {problem.file for problem in caught.value.problems}
    assert str(path) in files and str(tmp_path / "flag.yaml") in files


def test_windows_blackouts_and_jitter(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        defaults={
            "timezone": "Europe/Berlin",
            "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "10:00", "end": "12:00"}],
            "blackout_dates": ["2026-12-01"],
            "jitter": "10m",
        },
    )
    [entry] = load_schedule(path).entries
    runs = upcoming([entry], MONDAY, 6)
    local = [
        occurrence.start.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin")) for occurrence in runs
    ]
    assert all(10 <= moment.hour < 12 and moment.weekday() < 5 for moment in local)
    assert all(moment.date().isoformat() != "2026-12-01" for moment in local)  # the blackout Tuesday
    assert [moment.date().isoformat() for moment in local[:3]] == ["2026-11-30", "2026-11-30", "2026-12-02"]
    assert all(timedelta(0) <= o.start - o.slot <= timedelta(minutes=10) for o in runs)
    assert jitter_for(entry, runs[0].slot) == jitter_for(entry, runs[0].slot)  # stable across restarts
    assert "blackout" in (refusal(entry, datetime(2026, 12, 1, 10, 0, tzinfo=UTC)) or "")


def test_the_daemon_runs_due_slots_and_skips_outside_windows(tmp_path: Path) -> None:
    path = write(tmp_path, defaults={"windows": [{"start": "09:00", "end": "11:00"}]})
    clock = FakeClock(MONDAY)
    execute = FakeExecutor(clock)
    daemon = ScheduleDaemon(load_schedule(path), execute, clock=clock)
    drive(daemon, MONDAY + timedelta(hours=12, minutes=1), clock)
    assert [moment.hour for moment in execute.calls] == [9, 10]
    outcomes = [(r.slot_time.hour, r.outcome) for r in daemon.history.records()]
    assert (9, "run") in outcomes and (10, "run") in outcomes
    assert (11, "skipped") in outcomes and (3, "skipped") in outcomes
    assert daemon.counts("hourly") == {"completed": 2}


def test_max_runs_per_day_is_honoured(tmp_path: Path) -> None:
    path = write(tmp_path, defaults={"max_runs_per_day": 2})
    clock = FakeClock(MONDAY)
    execute = FakeExecutor(clock)
    daemon = ScheduleDaemon(load_schedule(path), execute, clock=clock)
    drive(daemon, MONDAY + timedelta(days=1, hours=3), clock)
    days = [moment.date() for moment in execute.calls]
    assert days.count(MONDAY.date()) == 2 and days.count((MONDAY + timedelta(days=1)).date()) == 2
    assert any("max_runs_per_day (2) reached" in r.detail for r in daemon.history.records())


def test_a_restart_logs_missed_slots_instead_of_bunching_them(tmp_path: Path) -> None:
    path = write(tmp_path)
    clock = FakeClock(MONDAY)
    first = FakeExecutor(clock)
    drive(
        ScheduleDaemon(load_schedule(path), first, clock=clock),
        MONDAY + timedelta(hours=2, minutes=30),
        clock,
    )
    assert len(first.calls) == 2  # 01:00 and 02:00 (00:00 is not after the start)
    clock.current = MONDAY + timedelta(hours=7, minutes=30)  # down for five hours
    second = FakeExecutor(clock)
    daemon = ScheduleDaemon(load_schedule(path), second, clock=clock)
    drive(daemon, MONDAY + timedelta(hours=8, minutes=30), clock)
    assert [moment.hour for moment in second.calls] == [8]  # the next slot only, no burst
    missed = [r.slot_time.hour for r in daemon.history.records() if r.outcome == "missed"]
    assert missed == [3, 4, 5, 6, 7]


def test_a_busy_target_skips_the_slot(tmp_path: Path) -> None:
    from chaosrunner.schedule.locks import target_lock

    path = write(tmp_path)
    loaded = load_schedule(path)
    clock = FakeClock(MONDAY)
    execute = FakeExecutor(clock)
    daemon = ScheduleDaemon(loaded, execute, clock=clock)
    with target_lock(loaded.entries[0].lock) as held:
        assert held
        # The lock is per open file, so "another run" is simulated by a second holder in this process.
        drive(daemon, MONDAY + timedelta(hours=1, minutes=1), clock)
    assert execute.calls == []
    assert "target lock" in daemon.history.records()[-1].detail


def test_a_run_stopped_by_sigterm_stops_the_daemon(tmp_path: Path) -> None:
    path = write(tmp_path)
    clock = FakeClock(MONDAY)
    execute = FakeExecutor(clock, [RunOutcome("r1", "aborted", 1, "aborted (signal)", signal="SIGTERM")])
    daemon = ScheduleDaemon(load_schedule(path), execute, clock=clock)
    drive(daemon, MONDAY + timedelta(days=1), clock)
    assert len(execute.calls) == 1
    [record] = [r for r in daemon.history.records() if r.outcome == "run"]
    assert (record.status, record.exit_code) == ("aborted", 1)


def test_history_survives_a_torn_line(tmp_path: Path) -> None:
    history = History("x", tmp_path / "h")
    history.path.parent.mkdir(parents=True)
    history.path.write_text(
        '{"entry": "a", "slot": "2026-11-30T01:00:00+00:00", "outcome": "run", "at": "x"}\n{"entr'
    )
    assert [r.entry for r in history.records()] == ["a"]
    assert history.last_slot("a") == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def test_webhooks_announce_start_abort_and_finish(tmp_path: Path) -> None:
    import json
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[tuple[str, dict]] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            return

        def do_POST(self) -> None:
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(204)
            self.end_headers()

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    path = write(
        tmp_path,
        defaults={
            "webhooks": [
                {"url": f"{base}/json", "format": "json"},
                {"url": f"{base}/slack", "format": "slack", "events": ["abort"]},
            ]
        },
    )
    clock = FakeClock(MONDAY)
    execute = FakeExecutor(clock, [RunOutcome("r1", "aborted", 1, "aborted (condition): errors: 9 > 5")])
    daemon = ScheduleDaemon(load_schedule(path), execute, clock=clock)
    drive(daemon, MONDAY + timedelta(hours=1, minutes=1), clock)
    server.shutdown()
    assert [(p, b.get("event")) for p, b in received if p == "/json"] == [
        ("/json", "start"),
        ("/json", "abort"),
        ("/json", "finish"),
    ]
    [(_, slack)] = [item for item in received if item[0] == "/slack"]
    assert "ABORTED" in slack["text"] and "errors: 9 > 5" in slack["text"]
    finish = next(b for p, b in received if p == "/json" and b["event"] == "finish")
    assert finish["run_id"] == "r1" and finish["exit_code"] == 1 and finish["entry"] == "hourly"
