"""The facilitator console in a real browser, on a real gameday.

Each test starts ``chaosrunner run --plain`` of a gameday scenario (an
``inprocess.flag`` fault, checks on the rig's Prometheus) in its own process,
reads the three links it prints, and opens them in headless Chromium
(``tests.support.browser``; each page in its own context, like people on
their own laptops). What is checked is what people rely on:

- the page shows the run live (title, phase, the run sheet's go), and a mark
  made from a terminal reaches the timeline within a second;
- what people type is text: a note with markup creates no element;
- the observer link shows no controls, and the server refuses its POSTs;
- without a valid token the page says so and receives no run data;
- it reads on a 390 px phone (no horizontal scroll);
- the team acts from the page (escalation banner, escalated, mitigated, TTM);
- after the run it shows the result, then the debrief report, then that the
  server has stopped; ``chaosrunner serve`` lists the run and shows its report;
- a stream that ends is resumed with Last-Event-ID, and no journal event is
  shown twice;
- no console error, no page error, no failed request anywhere.

Screenshots go to test-artifacts/console/ for a person to look at.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.browser import Browser, chromium, introduce, no_problems
from tests.support.cli import run_chaosrunner

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "console"
LINK = re.compile(r"^(facilitator console|team link|observer link)[^:]*: (http://\S+)$")
HOSTILE = "<img src=x onerror=\"document.title='pwned'\"></script><b>bold</b>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as started:
        yield started


@pytest.fixture(scope="module")
def rig() -> dict[str, str]:
    found = dict(os.environ)
    if not found.get("CHAOSRUNNER_PROMETHEUS_URL"):
        done = subprocess.run(
            ["bash", str(REPO / "scripts" / "services.sh"), "env"],
            capture_output=True,
            text=True,
            check=False,
        )
        for line in done.stdout.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            found[key] = value.strip("'")
    return found


@dataclass
class LiveRun:
    process: subprocess.Popen[str]
    state: Path
    env: dict[str, str]
    links: dict[str, str] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        [run] = list((self.state / "runs").iterdir())
        return run

    @property
    def run_id(self) -> str:
        return self.folder.name

    @property
    def base(self) -> str:
        return self.links["facilitator"].split("/#", 1)[0]

    def token(self, who: str) -> str:
        return self.links[who].split("#token=", 1)[1]

    def events(self) -> list[dict[str, Any]]:
        lines = (self.folder / "journal.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def wait_for_event(self, accept: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((event for event in self.events() if accept(event)), None)
            if found is not None:
                return found
            time.sleep(0.1)
        raise AssertionError(
            f"no such journal event within {timeout}s; output:\n{''.join(self.output)[-3000:]}"
        )

    def mark(self, *args: str) -> None:
        done = run_chaosrunner("mark", self.run_id, *args, env=self.env)
        assert done.returncode == 0, done.stderr

    def finish(self, timeout: float = 90) -> int:
        return self.process.wait(timeout=timeout)


def scenario_file(
    folder: Path, rig: dict[str, str], *, go_no_go: bool, ttm_target: str, sli: bool, alert: str
) -> Path:
    document = {
        "metadata": {
            "title": "Checkout payments <fail> & recover",
            "owner": "payments",
            "expected_severity": "P2",
            "hypothesis": "The team sees failed payments on the synthetic probe within two minutes",
            "description": "The payment flag makes every checkout fail.",
        },
        "target": {
            "prometheus": rig["CHAOSRUNNER_PROMETHEUS_URL"],
            "pushgateway": rig["CHAOSRUNNER_PUSHGATEWAY_URL"],
            "alertmanager": rig["CHAOSRUNNER_ALERTMANAGER_URL"],
        },
        "detection": {"synthetic": [alert]},
        "steady_state": [{"name": "checkout-up", "expr": "vector(1)", "comparator": ">=", "threshold": 1}],
        "faults": [{"name": "payments-fail", "kind": "inprocess.flag", "params": {"flag": "console-page"}}],
        "abort_conditions": [
            {"name": "error-budget", "expr": "vector(0.02)", "comparator": ">", "threshold": 0.5}
        ],
        "mitigation": {"sli": "vector(0.995)", "comparator": ">=", "objective": 0.99},
        "gameday": {
            "mode": "gameday",
            "max_duration": "150s",
            "check_interval": "200ms",
            "ttd_target": "60s",
            "ttm_target": ttm_target,
            "status_update_every": "2m",
        },
        "run_sheet": {
            "prerequisites": ["Everyone can open the checkout dashboard", "The pager routes to #gameday"],
            "go_no_go": go_no_go,
            "injects": [
                {"name": "customer-report", "at": "2s", "text": "Customers report failed payments <today>"}
            ],
        },
    }
    if not sli:  # then a `mitigated` mark alone ends the run, and measures TTM
        del document["mitigation"]
    path = folder / "console-gameday.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def start_run(tmp_path: Path, rig: dict[str, str]) -> Iterator[Callable[..., LiveRun]]:
    """Starts a gameday; whatever is still running at the end is aborted and awaited."""
    started: list[LiveRun] = []

    def start(
        *,
        go_no_go: bool = False,
        ttm_target: str = "120s",
        sli: bool = True,
        alert: str = "ConsolePageUnused",
        linger: str = "0s",
    ) -> LiveRun:
        clean = {key: value for key, value in rig.items() if key != "CHAOSRUNNER_TOKEN"}
        env = {**clean, "CHAOSRUNNER_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(REPO)}
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chaosrunner",
                "run",
                "--plain",
                "--linger",
                linger,
                str(
                    scenario_file(
                        tmp_path, rig, go_no_go=go_no_go, ttm_target=ttm_target, sli=sli, alert=alert
                    )
                ),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        run = LiveRun(process, tmp_path / "state", env)
        started.append(run)
        links_seen = threading.Event()

        def read(stream: Any) -> None:
            for line in stream:
                run.output.append(line)
                found = LINK.match(line.strip())
                if found:
                    run.links[found.group(1).split()[0]] = found.group(2)
                    if len(run.links) == 3:
                        links_seen.set()

        for stream in (process.stdout, process.stderr):
            threading.Thread(target=read, args=(stream,), daemon=True).start()
        assert links_seen.wait(30), "the run printed no console links:\n" + "".join(run.output)
        return run

    yield start
    for run in started:
        if run.process.poll() is None:
            run_chaosrunner("abort", run.run_id, env=run.env)
            try:
                run.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                run.process.kill()
                run.process.wait()
        assert "Traceback" not in "".join(run.output), "".join(run.output)[-3000:]


def send_alert(alertmanager: str, name: str, lasting: timedelta) -> None:
    """An alert as Prometheus sends it, to the rig's real Alertmanager (``lasting`` 0 ends it)."""
    now = datetime.now(UTC)
    alert = {
        "labels": {"alertname": name, "job": "console-page-test"},
        "startsAt": (now - timedelta(seconds=1)).isoformat(),
        "endsAt": (now + lasting).isoformat(),
    }
    request = urllib.request.Request(
        alertmanager.rstrip("/") + "/api/v2/alerts",
        data=json.dumps([alert]).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).close()


def post(url: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"{}")


def test_the_facilitator_runs_the_gameday_live_and_terminal_marks_arrive_within_a_second(
    browser: Browser, start_run: Callable[..., LiveRun]
) -> None:
    run = start_run(go_no_go=True)
    facilitator = browser.page(run.links["facilitator"])
    page = facilitator.page
    introduce(facilitator, "Fran")
    # The token left the address bar at once.
    assert "token" not in page.url
    assert page.get_by_test_id("run-title").text_content() == "Checkout payments <fail> & recover"
    page.get_by_test_id("run-phase").filter(has_text="awaiting go").wait_for(timeout=15000)

    # Go with a prerequisite unticked asks first; the page reflects the tick from the journal.
    page.get_by_label("Everyone can open the checkout dashboard").check()
    page.get_by_text("(ticked by Fran)").wait_for()
    page.get_by_test_id("timeline").get_by_text(
        "ticked prerequisite: Everyone can open the checkout dashboard"
    ).wait_for()
    page.get_by_test_id("go-button").click()
    confirm = page.get_by_test_id("go-confirm")
    assert "The pager routes to #gameday" in (confirm.text_content() or "")
    confirm.get_by_role("button", name="Go anyway").click()
    page.get_by_test_id("run-phase").filter(has_text="injecting").wait_for(timeout=15000)
    decision = run.wait_for_event(lambda event: event["type"] == "go_decision")
    assert (decision["decision"], decision["by"]) == ("go", "Fran")
    assert decision["unchecked"] == ["The pager routes to #gameday"]

    # Live regions fill in from the stream: the fault, the condition, the clock, the inject.
    page.get_by_test_id("faults").get_by_text("injected").wait_for(timeout=15000)
    page.get_by_test_id("conditions").get_by_text("ok").wait_for(timeout=15000)
    page.get_by_test_id("inject-banner").get_by_text("Customers report failed payments <today>").wait_for(
        timeout=15000
    )
    assert re.fullmatch(r"\d\d:\d\d", page.get_by_test_id("time-left").text_content() or "")
    assert page.get_by_test_id("chart").locator("svg path.series").count() >= 1

    # A mark typed in another terminal reaches the page within one second.
    run.mark("note", "rolled back the payment flag in the admin UI", "--by", "terry")
    arrived = time.monotonic()
    page.get_by_test_id("timeline").get_by_text("rolled back the payment flag in the admin UI").wait_for(
        timeout=1000
    )
    assert time.monotonic() - arrived < 1.0

    # The team's side from the page, so the screenshot shows a gameday in progress.
    page.select_option("#detected-via", "synthetic")
    page.get_by_role("button", name="Mark detected").click()
    page.select_option("#severity-value", "P2")
    page.get_by_role("button", name="Declare severity").click()
    page.get_by_test_id("ttd").filter(has_text=re.compile(r"\d")).wait_for(timeout=15000)
    page.fill("#status-affected", "checkout payments failing for every user")
    page.fill("#status-hypothesis", "the payment flag is on")
    page.fill("#status-owner", "Fran is checking the flag")
    page.fill("#status-next", "14:30")
    page.get_by_role("button", name="Post status update").click()
    page.get_by_test_id("timeline").get_by_text("status update: Affected:").wait_for()
    page.wait_for_timeout(1500)  # one more snapshot on the chart
    page.screenshot(path=str(ARTIFACTS / "facilitator-live.png"), full_page=True)

    marks = [(e["event"], e["by"], e.get("role")) for e in run.events() if e["type"] == "responder"]
    assert ("detected", "Fran", "facilitator") in marks and ("severity", "Fran", "facilitator") in marks
    [status] = [e["value"] for e in run.events() if e["type"] == "responder" and e["event"] == "status"]
    assert status == (
        "Affected: checkout payments failing for every user. Hypothesis: the payment flag is on. "
        "Owner: Fran is checking the flag. Next update at 14:30 UTC."
    )
    no_problems(facilitator)


def test_what_people_type_is_shown_as_text_and_the_team_acts_from_the_page(
    browser: Browser, start_run: Callable[..., LiveRun]
) -> None:
    alert = f"ConsolePageProbe{uuid.uuid4().hex[:8]}"
    run = start_run(ttm_target="3s", sli=False, alert=alert)
    responder = browser.page(run.links["team"])
    page = responder.page
    introduce(responder, "Rita <i>", "incident_commander")
    page.fill("#log-value", HOSTILE)
    page.press("#log-value", "Enter")
    row = page.get_by_test_id("timeline").get_by_text(f"note: {HOSTILE}", exact=True)
    row.wait_for(timeout=5000)
    timeline = page.get_by_test_id("timeline")
    assert timeline.locator("img, script, b, i").count() == 0  # no element came from the text
    assert page.title() != "pwned"
    assert page.get_by_test_id("whoami").text_content() == "Rita <i>, incident commander"
    [note] = [e for e in run.events() if e["type"] == "responder" and e["event"] == "note"]
    assert (note["value"], note["by"], note.get("role")) == (HOSTILE, "Rita <i>", "incident_commander")

    # The server's error text shows next to the form that caused it.
    page.fill("#ic-value", "   ")
    page.get_by_role("button", name="Name the incident commander").click()
    error = page.locator('form[data-form="ic"] .error')
    error.filter(has_text="needs a value").wait_for()
    # ...which Chromium also logs, as it logs every 4xx answer: that one, and nothing else.
    assert [text for text in responder.console_errors if "400" not in text] == []
    responder.console_errors.clear()

    # An alert of the scenario's synthetic layer fires in Alertmanager: the page shows it there.
    send_alert(run.env["CHAOSRUNNER_ALERTMANAGER_URL"], alert, timedelta(seconds=90))
    try:
        synthetic = page.get_by_test_id("alerts").locator('[data-layer="synthetic"]')
        synthetic.get_by_text(alert).wait_for(timeout=15000)
        assert "active" in (synthetic.text_content() or "")
    finally:
        send_alert(run.env["CHAOSRUNNER_ALERTMANAGER_URL"], alert, timedelta(0))  # resolved

    # Not mitigated within the target: the banner says escalate; escalating clears it.
    banner = page.get_by_test_id("escalation-banner")
    banner.get_by_text("escalate one level").wait_for(timeout=15000)
    page.get_by_role("button", name="Escalated").click()
    banner.wait_for(state="hidden", timeout=5000)
    # Mitigated (no SLI to confirm it): the run ends and the page shows the measured TTM.
    page.get_by_role("button", name="Mitigated").click()
    page.get_by_test_id("ttm").filter(has_text=re.compile(r"\d")).wait_for(timeout=15000)
    page.get_by_test_id("result").get_by_text("completed").wait_for(timeout=15000)
    assert run.finish() == 0
    no_problems(responder)


def test_the_observer_link_watches_but_has_no_controls_and_cannot_post(
    browser: Browser, start_run: Callable[..., LiveRun]
) -> None:
    run = start_run()
    observer = browser.page(run.links["observer"])
    page = observer.page
    page.get_by_test_id("run-title").filter(has_text="Checkout payments").wait_for()
    page.get_by_test_id("connection").filter(has_text="live").wait_for(timeout=10000)
    assert page.get_by_test_id("identity").is_hidden()  # nobody asks an observer who they are
    for region in ("actions", "abort", "run-sheet"):
        assert page.get_by_test_id(region).count() == 0 or page.get_by_test_id(region).is_hidden(), region
    assert page.locator("main button:visible, main input:visible, main select:visible").count() == 0
    run.mark("note", "seen by the observer", "--by", "terry")
    page.get_by_test_id("timeline").get_by_text("seen by the observer").wait_for(timeout=2000)
    page.screenshot(path=str(ARTIFACTS / "observer.png"), full_page=True)

    before = len(run.events())
    for path, body in (
        ("/api/marks", {"event": "note", "value": "observer tries", "by": "mallory"}),
        ("/api/abort", {"by": "mallory"}),
        ("/api/checklist", {"item": 0, "checked": True, "by": "mallory"}),
    ):
        status, answer = post(run.base + path, run.token("observer"), body)
        assert status == 403, (path, status, answer)
        assert "error" in answer
    assert not any(e.get("by") == "mallory" for e in run.events()[before:])
    # The team link may not act as the facilitator either.
    status, _ = post(run.base + "/api/go", run.token("team"), {"decision": "go", "by": "mallory"})
    assert status == 403
    no_problems(observer)


def test_without_a_valid_token_the_page_says_so_and_gets_no_run_data(
    browser: Browser, start_run: Callable[..., LiveRun]
) -> None:
    run = start_run()
    for link, expected in (
        (run.base + "/", "needs the link chaosrunner printed"),
        (run.base + "/#token=not-the-token", "token is not valid"),
    ):
        visitor = browser.page()
        page = visitor.page
        answers: list[tuple[str, int]] = []
        page.on("response", lambda response, seen=answers: seen.append((response.url, response.status)))
        page.goto(link)
        page.get_by_test_id("fatal").filter(has_text=expected).wait_for(timeout=5000)
        page.wait_for_timeout(500)
        assert "Checkout payments" not in page.content()
        assert page.get_by_test_id("live").is_hidden()
        api = [(url, status) for url, status in answers if "/api/" in url]
        assert all(status == 401 for _, status in api), api
        assert not any("/api/stream" in url for url, _ in api)
        # The only complaint is Chromium logging the 401 itself.
        assert all("401" in text for text in visitor.console_errors), visitor.console_errors
        assert visitor.page_errors == [] and visitor.failed_requests == []
    page.screenshot(path=str(ARTIFACTS / "wrong-token.png"))


def test_the_page_reads_on_a_phone(browser: Browser, start_run: Callable[..., LiveRun]) -> None:
    run = start_run()
    responder = browser.page(run.links["team"], width=390, height=844)
    page = responder.page
    introduce(responder, "Pat", "responder")
    page.get_by_test_id("faults").get_by_text("injected").wait_for(timeout=15000)
    page.get_by_test_id("timeline").get_by_text("fault payments-fail injected").wait_for()
    width, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"horizontal scroll on a phone: {width} > {inner}"
    # Single column: the actions and the timeline share one left edge.
    actions = page.get_by_test_id("actions").bounding_box()
    timeline = page.locator("section.card", has=page.get_by_test_id("timeline")).bounding_box()
    assert actions and timeline and abs(actions["x"] - timeline["x"]) < 2, (actions, timeline)
    assert actions["y"] < timeline["y"]  # the team's buttons first
    # Keyboard: a real <button> in a form; Enter on it submits.
    page.get_by_role("button", name="Mark detected").focus()
    page.keyboard.press("Enter")
    page.get_by_test_id("timeline").get_by_text("Pat (responder)").wait_for(timeout=5000)
    page.screenshot(path=str(ARTIFACTS / "phone.png"), full_page=True)
    no_problems(responder)


def test_after_the_run_the_page_shows_the_result_the_debrief_and_that_the_server_stopped(
    browser: Browser, start_run: Callable[..., LiveRun]
) -> None:
    run = start_run(linger="10s")
    facilitator = browser.page(run.links["facilitator"])
    page = facilitator.page
    introduce(facilitator, "Fran")
    page.get_by_test_id("faults").get_by_text("injected").wait_for(timeout=15000)

    # The abort button asks once more, then takes the path of `chaosrunner abort`.
    page.get_by_test_id("abort-button").click()
    page.fill("#abort-reason", "the room lost power")
    page.get_by_test_id("abort-confirm").click()
    page.get_by_test_id("abort").get_by_text("abort requested").wait_for()
    result = page.get_by_test_id("result")
    result.get_by_text("aborted by Fran from the console: the room lost power").wait_for(timeout=15000)
    assert (result.locator('[data-part="status"]').text_content() or "") == "aborted"

    page.get_by_test_id("debrief").wait_for(timeout=60000)
    report = page.frame_locator('[data-testid="debrief"] iframe')
    assert report.locator("h1").first.text_content() == "Checkout payments <fail> & recover"
    # Styled (its stylesheet adopted, as the CSP forbids inline <style>), and no script runs in it.
    assert page.get_by_test_id("debrief").locator("iframe").get_attribute("sandbox") == "allow-same-origin"
    assert report.locator("body").evaluate("body => body.ownerDocument.adoptedStyleSheets.length") == 1
    # Someone opening the page while the server lingers gets the debrief too.
    late = browser.page(run.links["observer"])
    late.page.get_by_test_id("debrief").wait_for(timeout=10000)
    assert late.page.get_by_test_id("result").get_by_text("aborted by Fran").is_visible()
    page.get_by_test_id("server-gone").wait_for(timeout=40000)
    assert run.finish() == 1  # aborted
    assert page.get_by_test_id("connection").text_content() == "server stopped"
    for button in page.get_by_test_id("actions").locator("button").all():
        assert button.is_disabled()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "debrief.png"))
    abort = run.wait_for_event(lambda event: event["type"] == "abort")
    assert abort["detail"] == "aborted by Fran from the console: the room lost power"
    no_problems(facilitator, late)


def test_chaosrunner_serve_lists_past_runs_and_shows_a_report(
    browser: Browser, start_run: Callable[..., LiveRun]
) -> None:
    run = start_run()
    run.wait_for_event(lambda event: event["type"] == "fault_injected")
    run_chaosrunner("abort", run.run_id, env=run.env)
    assert run.finish() == 1
    serve = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "serve"],
        env=run.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert serve.stdout is not None
        found = re.search(r"chaosrunner serve: (http://\S+)", serve.stdout.readline())
        assert found, "serve printed no address"
        visitor = browser.page(found.group(1))
        page = visitor.page
        row = page.get_by_test_id("runs-list").locator(f'tr[data-run="{run.run_id}"]')
        row.wait_for(timeout=10000)
        assert "Checkout payments <fail> & recover" in (row.text_content() or "")
        assert "aborted" in (row.text_content() or "")
        row.get_by_role("button", name="Report").click()
        page.get_by_test_id("debrief").wait_for(timeout=30000)
        report = page.frame_locator('[data-testid="debrief"] iframe')
        assert report.locator("h1").first.text_content() == "Checkout payments <fail> & recover"
        page.screenshot(path=str(ARTIFACTS / "serve.png"))
        assert visitor.problems == []
    finally:
        serve.terminate()
        serve.wait(timeout=15)


def sse_replay(journal: Path, lines: int) -> tuple[str, int]:
    """The first ``lines`` journal events as the stream sends them (id = byte offset after the line)."""
    body, offset = [], 0
    with journal.open("rb") as handle:
        for raw in list(handle)[:lines]:
            offset += len(raw)
            body.append(f"id: {offset}\nevent: journal\ndata: {raw.decode().strip()}\n\n")
    return "".join(body), offset


def test_a_page_whose_stream_ends_resumes_after_the_last_event_it_had_and_shows_each_once(
    browser: Browser, start_run: Callable[..., LiveRun]
) -> None:
    run = start_run()
    run.wait_for_event(lambda event: event["type"] == "fault_injected")
    first, offset = sse_replay(run.folder / "journal.jsonl", 3)
    asked: list[str | None] = []

    def stream(route: Any) -> None:
        asked.append(route.request.headers.get("last-event-id"))
        if (
            len(asked) == 1
        ):  # the first connection: three events - twice, as a confused proxy might - then it ends
            route.fulfill(status=200, content_type="text/event-stream", body=first + first)
        else:
            route.continue_()

    watcher = browser.page()
    page = watcher.page
    page.route("**/api/stream", stream)
    page.goto(run.links["observer"])
    page.get_by_test_id("timeline").get_by_text("fault payments-fail injected").wait_for(timeout=10000)
    assert asked[:2] == [None, str(offset)]  # it came back for what it had not seen
    timeline = page.get_by_test_id("timeline")
    assert timeline.get_by_text("run started: Checkout payments").count() == 1
    assert timeline.get_by_text("fault payments-fail injected").count() == 1
    journal_rows = [e for e in run.events() if e["type"] in ("run_started", "fault_injected", "check")]
    assert timeline.locator("tr").count() >= len(journal_rows)
    page.get_by_test_id("connection").filter(has_text="live").wait_for()
    no_problems(watcher)
