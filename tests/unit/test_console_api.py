"""The console's API on a real server on loopback: who may read and act, the stream, the shell.

A real ``RunServer`` (uvicorn in its thread) over a run folder whose journal
the test writes, as the runner would; plain ``http.client`` requests, so
statuses and headers are checked on the wire. Every refusal is also checked
where it matters: nothing reached the journal or the abort request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from chaosrunner.engine.journal import Journal
from chaosrunner.engine.rundir import RunDir
from chaosrunner.gameday import endpoint
from chaosrunner.gameday.endpoint import RunServer
from chaosrunner.gameday.server import shell
from chaosrunner.gameday.server.app import CONTENT_SECURITY_POLICY
from chaosrunner.gameday.server.feed import RunFeed
from chaosrunner.gameday.server.live_run import LiveRun
from chaosrunner.scenario.loader import load_scenario
from chaosrunner.scenario.models import Scenario
from tests.support.sse_client import EventStream, request

TITLE = "Checkout loses its database"
SECRET_INJECT = "Customers report failed payments"
PLACEHOLDER = b"<!DOCTYPE html><title>console</title><script src=/static/console.js></script>"


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    path = tmp_path / "gameday.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "metadata": {"title": TITLE, "owner": "o", "expected_severity": "P2", "hypothesis": "h"},
                "faults": [{"name": "flag", "kind": "inprocess.flag", "params": {"flag": "console-api"}}],
                "gameday": {"mode": "gameday", "max_duration": "20m"},
                "run_sheet": {
                    "prerequisites": ["Everyone can open the dashboard"],
                    "go_no_go": True,
                    "injects": [{"name": "customer-report", "at": "5m", "text": SECRET_INJECT}],
                },
            }
        )
    )
    return load_scenario(path)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> Iterator[RunDir]:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    folder = RunDir.create()
    folder.hold_lock()  # live, as the runner makes it
    journal = Journal(folder.journal_path)
    journal.append(
        "run_started",
        run_id=folder.run_id,
        monotonic_start=journal.monotonic_start,
        pid=1,
        scenario=scenario.model_dump(mode="json", by_alias=True),
    )
    yield folder
    folder.release_lock()


@pytest.fixture
def server(run: RunDir, scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunServer]:
    monkeypatch.setattr(shell, "read_static", lambda name: PLACEHOLDER if name == "console.html" else b"x")
    live = LiveRun(run, scenario, "gameday", RunFeed(run.journal_path))
    started = RunServer()
    started.start(run, live)
    yield started
    started.close()


def caught_up(feed: RunFeed, run: RunDir) -> None:
    """Until the feed has read the whole journal (what a stream opened now replays, not gets live)."""
    deadline = time.monotonic() + 10
    while feed.offset < run.journal_path.stat().st_size:
        assert time.monotonic() < deadline, "the feed never read the journal"
        time.sleep(0.05)


def journal_lines(run: RunDir) -> list[str]:
    return run.journal_path.read_text().splitlines()


def test_without_a_token_no_run_data_is_served(server: RunServer, run: RunDir) -> None:
    for path in ("/api/run", "/api/stream", "/api/report", "/events", "/api/nothing-here"):
        answer = request(server.port, "GET", path)
        assert answer.status == 401, path
        assert run.run_id.encode() not in answer.body and TITLE.encode() not in answer.body
    wrong = request(server.port, "GET", "/api/run", token=server.tokens.team.value + "x")
    assert wrong.status == 401


def test_the_page_shell_is_public_has_no_run_data_and_carries_the_policy(server: RunServer) -> None:
    page = request(server.port, "GET", "/")
    assert page.status == 200 and page.body == PLACEHOLDER
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    script = request(server.port, "GET", "/static/console.js")
    assert script.status == 200 and script.headers["content-type"].startswith("text/javascript")
    # Only the three names: nothing else under /static, no path reaches the filesystem.
    for path in ("/static/../token.py", "/static/console.html", "/static/%2e%2e/feed.py"):
        assert request(server.port, "GET", path).status == 401, path


def test_a_foreign_host_or_origin_is_refused_even_for_the_shell(server: RunServer) -> None:
    facilitator = server.tokens.facilitator.value
    assert request(server.port, "GET", "/", host="rebind.attacker.example").status == 403
    assert (
        request(server.port, "GET", "/api/run", token=facilitator, host="rebind.attacker.example").status
        == 403
    )
    cross = request(
        server.port,
        "POST",
        "/api/marks",
        token=facilitator,
        body={"event": "detected", "by": "eve"},
        headers={"Origin": "http://attacker.example"},
    )
    assert cross.status == 403


def test_the_run_view_shows_the_injects_to_the_facilitator_only(server: RunServer, run: RunDir) -> None:
    views = {
        name: request(server.port, "GET", "/api/run", token=token.value).json()
        for name, token in (
            ("facilitator", server.tokens.facilitator),
            ("team", server.tokens.team),
            ("observer", server.tokens.observer),
        )
    }
    assert {name: view["capability"] for name, view in views.items()} == {
        "facilitator": "facilitator",
        "team": "team",
        "observer": "observer",
    }
    assert views["facilitator"]["run_sheet"]["injects"][0]["text"] == SECRET_INJECT
    assert views["facilitator"]["run_sheet"]["injects"][0]["at_s"] == 300
    for name in ("team", "observer"):
        assert views[name]["run_sheet"]["injects"] == []
        assert views[name]["run_sheet"]["prerequisites"] == ["Everyone can open the dashboard"]
    assert views["team"]["title"] == TITLE and views["team"]["run_id"] == run.run_id
    assert views["team"]["faults"] == [{"name": "flag", "kind": "inprocess.flag", "start_s": 0.0}]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/marks", {"event": "detected", "by": "olive"}),
        ("/api/abort", {"by": "olive", "reason": "curious"}),
        ("/api/checklist", {"item": 0, "checked": True, "by": "olive"}),
        ("/api/go", {"decision": "go", "by": "olive"}),
        ("/events", {"event": "detected", "by": "olive"}),
    ],
)
def test_the_observer_link_cannot_post(server: RunServer, run: RunDir, path: str, body: dict) -> None:
    before = journal_lines(run)
    answer = request(server.port, "POST", path, token=server.tokens.observer.value, body=body)
    assert answer.status == 403 and "observer" in answer.json()["error"]
    assert journal_lines(run) == before
    assert run.abort_requested() is None


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/checklist", {"item": 0, "checked": True, "by": "tom"}),
        ("/api/go", {"decision": "go", "by": "tom"}),
    ],
)
def test_the_team_link_cannot_tick_the_checklist_or_decide_go(
    server: RunServer, run: RunDir, path: str, body: dict
) -> None:
    before = journal_lines(run)
    answer = request(server.port, "POST", path, token=server.tokens.team.value, body=body)
    assert answer.status == 403 and "facilitator" in answer.json()["error"]
    assert journal_lines(run) == before


def test_the_team_marks_and_cannot_claim_the_facilitators_role(server: RunServer, run: RunDir) -> None:
    team = server.tokens.team.value
    marked = request(server.port, "POST", "/api/marks", token=team, body={"event": "detected", "by": "tom"})
    assert marked.status == 201 and marked.json()["by"] == "tom"
    before = journal_lines(run)
    for door in ("/api/marks", "/events"):  # the page's door and `mark --url`'s
        posing = request(
            server.port,
            "POST",
            door,
            token=team,
            body={"event": "note", "value": "hi", "by": "tom", "role": "facilitator"},
        )
        assert posing.status == 403, door
    assert journal_lines(run) == before
    wrong = request(server.port, "POST", "/api/marks", token=team, body={"event": "won", "by": "tom"})
    assert wrong.status == 400 and "won" in wrong.json()["error"] and "\n" not in wrong.json()["error"]


def test_go_before_the_run_awaits_it_is_409_and_a_checklist_tick_is_journaled(
    server: RunServer, run: RunDir
) -> None:
    facilitator = server.tokens.facilitator.value
    early = request(server.port, "POST", "/api/go", token=facilitator, body={"decision": "go", "by": "fay"})
    assert early.status == 409 and "awaiting go" in early.json()["error"]
    ticked = request(
        server.port,
        "POST",
        "/api/checklist",
        token=facilitator,
        body={"item": 0, "checked": True, "by": "fay"},
    )
    assert ticked.status == 201, ticked.body
    [event] = [event for event in run.events() if event.type == "checklist"]
    assert (event["item"], event["checked"], event["by"]) == (0, True, "fay")
    odd = request(
        server.port,
        "POST",
        "/api/checklist",
        token=facilitator,
        body={"item": True, "checked": 1, "by": "fay"},
    )
    assert odd.status == 400


def test_abort_from_the_team_is_the_operators_abort_request_and_409_once_the_run_is_over(
    server: RunServer, run: RunDir
) -> None:
    team = server.tokens.team.value
    answer = request(server.port, "POST", "/api/abort", token=team, body={"by": "tom", "reason": "too hot"})
    assert answer.status == 202
    assert run.abort_requested() == "aborted by tom from the console: too hot"
    run.release_lock()  # the runner is gone
    over = request(server.port, "POST", "/api/abort", token=team, body={"by": "tom"})
    assert over.status == 409 and "not live" in over.json()["error"]
    nameless = request(server.port, "POST", "/api/abort", token=team, body={"reason": "who?"})
    assert nameless.status == 400


def test_the_report_is_404_until_written_then_html_with_the_policy(server: RunServer, tmp_path: Path) -> None:
    observer = server.tokens.observer.value
    assert request(server.port, "GET", "/api/report", token=observer).status == 404
    report = tmp_path / "report.html"
    report.write_text("<!DOCTYPE html><h1>debrief</h1>")
    assert server.live is not None
    server.live.report_file = report
    answer = request(server.port, "GET", "/api/report", token=observer)
    assert answer.status == 200 and b"debrief" in answer.body
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_the_stream_replays_then_goes_live_and_resumes_without_duplicates(
    server: RunServer, run: RunDir
) -> None:
    journal = run.journal()
    journal.append("phase", phase="preflight")
    assert server.live is not None
    feed = server.live.feed
    caught_up(feed, run)  # both lines are history: the stream replays them
    stream = EventStream(server.port, server.tokens.observer.value).open()
    try:
        assert stream.status == 200
        first, second, series = stream.next(), stream.next(), stream.next()
        assert first is not None and second is not None and series is not None
        assert (first.event, first.data["type"]) == ("journal", "run_started")
        assert not {"pid", "scenario", "monotonic_start"} & set(first.data)
        assert (second.event, second.data["type"], second.data["phase"]) == ("journal", "phase", "preflight")
        assert (series.event, series.data) == ("series", {"sli": [], "steady": {}})
        journal.append("responder", event="note", value="live", by="cli", at="x")
        live = stream.until(lambda m: m.event == "journal")
        assert live.data["value"] == "live" and live.id is not None and live.id > second.id
        feed.publish("snapshot", {"phase": "injecting"})
        assert stream.until(lambda m: m.event != "journal").data == {"phase": "injecting"}
    finally:
        stream.close()
    journal.append("responder", event="note", value="missed", by="cli", at="x")
    caught_up(feed, run)
    resumed = EventStream(server.port, server.tokens.observer.value, last_event_id=str(second.id)).open()
    try:
        replayed = [resumed.next() for _ in range(3)]
        # After the id it had: nothing before, nothing twice, then the series.
        assert [(m.event, m.data.get("value")) for m in replayed if m is not None] == [
            ("journal", "live"),
            ("journal", "missed"),
            ("series", None),
        ]
    finally:
        resumed.close()
    for bogus in ("17", "-1", "banana", "99999999"):  # not the end of a line: the whole journal again
        again = EventStream(server.port, server.tokens.team.value, last_event_id=bogus).open()
        try:
            assert again.until(lambda m: m.event == "journal").data["type"] == "run_started", bogus
        finally:
            again.close()


def test_closing_the_server_says_bye_to_every_open_stream_and_returns_promptly(
    run: RunDir, scenario: Scenario
) -> None:
    live = LiveRun(run, scenario, "gameday", RunFeed(run.journal_path))
    server = RunServer()
    server.start(run, live)
    streams = [EventStream(server.port, server.tokens.observer.value).open() for _ in range(3)]
    for stream in streams:
        stream.until(lambda m: m.event == "series")
    started = time.monotonic()
    server.close()
    took = time.monotonic() - started
    try:
        for stream in streams:
            assert [message.event for message in stream.rest()][-1:] == ["bye"]
    finally:
        for stream in streams:
            stream.close()
    assert took < 4.0  # uvicorn alone would wait out its graceful timeout on open streams
    assert not (run.path / "team-token").exists() and not (run.path / "observer-token").exists()


def test_the_end_of_the_run_waits_for_a_page_still_fetching_the_debrief(
    run: RunDir, scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without --linger the server stopped between a page hearing of the report and asking for it.
    monkeypatch.setattr(shell, "read_static", lambda name: PLACEHOLDER)
    live = LiveRun(run, scenario, "gameday", RunFeed(run.journal_path))
    served = RunServer()
    served.start(run, live)
    report = tmp_path / "report.html"
    report.write_text("<p>debrief</p>")
    token = served.tokens.observer.value
    stream = EventStream(served.port, token).open()
    closing = threading.Thread(target=served.close)
    try:
        stream.until(lambda m: m.event == "series")
        live.report_ready(report)
        assert stream.until(lambda m: m.event == "report").data == {"url": "/api/report"}
        closing.start()
        time.sleep(0.5)  # the run is over and the server is closing while the page is slow to ask
        answer = request(served.port, "GET", "/api/report", token=token)
        assert answer.status == 200 and b"debrief" in answer.body
        closing.join(timeout=10)
        assert not closing.is_alive()
        assert live.report_handoff.wait(0)
    finally:
        stream.close()
        if closing.ident is None:  # it failed before the close began
            served.close()


def test_a_page_told_of_the_debrief_that_never_asks_holds_up_the_end_only_briefly(
    run: RunDir, scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(endpoint, "REPORT_GRACE_SECONDS", 0.5)
    live = LiveRun(run, scenario, "gameday", RunFeed(run.journal_path))
    served = RunServer()
    served.start(run, live)
    report = tmp_path / "report.html"
    report.write_text("<p>debrief</p>")
    stream = EventStream(served.port, served.tokens.observer.value).open()
    try:
        stream.until(lambda m: m.event == "series")
        live.report_ready(report)
        stream.until(lambda m: m.event == "report")
        began = time.monotonic()
        served.close()
        took = time.monotonic() - began
    finally:
        stream.close()
    assert not live.report_handoff.wait(0)  # it was owed and never fetched
    assert 0.4 <= took < 5.0, took


def test_a_page_that_joins_late_gets_the_figures_and_the_report_already_announced(
    server: RunServer, tmp_path: Path
) -> None:
    assert server.live is not None
    figures = {
        "t0": "2026-12-04T18:00:00Z",
        "ttd_s": 4.0,
        "ttd_layer": "synthetic",
        "ttm_s": None,
        "ttr_s": None,
    }
    server.live.measured = lambda: figures
    stream = EventStream(server.port, server.tokens.observer.value).open()
    try:
        stream.until(lambda m: m.event == "series")
        measured = stream.next()
        assert measured is not None and (measured.event, measured.data) == ("measured", figures)
    finally:
        stream.close()
    report = tmp_path / "report.html"
    report.write_text("<p>debrief</p>")
    server.live.report_file = report
    late = EventStream(server.port, server.tokens.observer.value).open()
    try:
        late.until(lambda m: m.event == "series")
        assert late.next().data == figures  # type: ignore[union-attr]
        assert late.next().data == {"url": "/api/report"}  # type: ignore[union-attr]
    finally:
        late.close()
