"""The HTML report in a real browser: headless Chromium (Debian's `chromium` package).

What a facilitator will see on the projector is what Chromium renders, so
this opens the report the way they would - a file, no server - and checks:

- the page raises no console error, no exception, and makes no network
  request (DevTools protocol: Runtime, Log and Network events);
- the headline figures are in the rendered DOM (``--dump-dom``);
- a full-page screenshot is saved to test-artifacts/report-browser/ for a
  person to look at (CI keeps test-artifacts/; git ignores it).

Chromium is a system package: ``apt-get install chromium`` (the Makefile and
CI install it). The test fails, not skips, when it is missing.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.report.history import HistoryEntry
from chaosrunner.report.model import build_report
from chaosrunner.report.sample import sample_run
from chaosrunner.report.writer import write_report

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "report-browser"
FLAGS = [
    "--headless",
    "--no-sandbox",  # we run as root in CI; the page is our own file
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1400,1000",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("headless Chromium is needed: apt-get install chromium (Debian)", pytrace=False)
    return found


@pytest.fixture(scope="module")
def report_file() -> Path:
    """The sample run's report, with two earlier runs so the trend chart renders too."""
    debrief, metrics = sample_run()

    def earlier(
        run_id: str, started: str, status: str, ttd: float, ttm: float, score: float, grade: str
    ) -> Any:
        title = "Checkout pool exhausted"
        key = "checkout-pool-exhausted"
        return HistoryEntry(
            run_id, title, key, started, status, ttd, ttm, ttm + 10, 60.0, 120.0, score, grade, "report"
        )

    history = [
        earlier("20260801-100000-aaaaaa", "2026-08-01T10:00:00.000000Z", "completed", 95.0, 410.0, 48.5, "F"),
        earlier("20261001-100000-bbbbbb", "2026-10-01T10:00:00.000000Z", "aborted", 41.0, 160.0, 71.0, "C"),
    ]
    from chaosrunner.report.history import entry_from_debrief

    report = build_report(
        debrief,
        metrics,
        history=[*history, entry_from_debrief(debrief)],
        now=datetime(2026, 11, 28, 9, tzinfo=UTC),
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    written = write_report(report, ["html"], ARTIFACTS)
    return written.files["html"]


class DevTools:
    """A minimal DevTools-protocol client: one page, events collected as they come."""

    def __init__(self, websocket_url: str) -> None:
        import websocket  # websocket-client, installed with the kubernetes client

        self.socket = websocket.create_connection(websocket_url, timeout=30)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(event.get("method") == method for event in self.events):
                return
            self.socket.settimeout(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(self.socket.recv()))
        raise AssertionError(f"no {method} within {timeout}s")

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def devtools(chromium: str, tmp_path: Path) -> Iterator[DevTools]:
    profile = tmp_path / "profile"  # a fresh profile every time: nothing cached, nothing synced
    process = subprocess.Popen(
        [chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            assert process.poll() is None, "chromium exited at start-up"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            pages = [target for target in json.loads(response.read()) if target["type"] == "page"]
        client = DevTools(pages[0]["webSocketDebuggerUrl"])
        yield client
        client.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_the_report_renders_without_errors_or_network(devtools: DevTools, report_file: Path) -> None:
    for domain in ("Page", "Runtime", "Log", "Network"):
        devtools.call(f"{domain}.enable")
    devtools.call("Page.navigate", url=report_file.as_uri())
    devtools.wait_for("Page.loadEventFired")
    time.sleep(0.5)  # late console messages
    metrics = devtools.call("Page.getLayoutMetrics")
    width = metrics["cssContentSize"]["width"]
    height = metrics["cssContentSize"]["height"]
    shot = devtools.call(
        "Page.captureScreenshot",
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
    )
    (ARTIFACTS / "report.png").write_bytes(base64.b64decode(shot["data"]))
    errors = [
        event
        for event in devtools.events
        if event.get("method") == "Runtime.exceptionThrown"
        or (
            event.get("method") == "Runtime.consoleAPICalled"
            and event["params"]["type"] in ("error", "assert")
        )
        or (event.get("method") == "Log.entryAdded" and event["params"]["entry"]["level"] == "error")
    ]
    assert errors == [], json.dumps(errors, indent=1)[:2000]
    requests = [
        event["params"]["request"]["url"]
        for event in devtools.events
        if event.get("method") == "Network.requestWillBeSent"
    ]
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert width <= 1400, "the page is wider than the window: something overflows"
    overflow = devtools.call(
        "Runtime.evaluate",
        expression="[...document.querySelectorAll('.card')]"
        ".filter(card => card.scrollWidth > card.clientWidth).length",
        returnByValue=True,
    )
    assert overflow["result"]["value"] == 0, "a headline card's text overflows it"


def test_the_headline_figures_are_in_the_rendered_dom(
    chromium: str, report_file: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", report_file.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    dom = result.stdout
    (ARTIFACTS / "report.dom.html").write_text(dom)
    for element_id, figures in {
        "title": ["Checkout pool exhausted"],
        "verdict": ["Hypothesis held"],
        "score": ["92.1", "grade <b>A</b>"],
        "ttd": ["20s", "within 1m target"],
        "ttm": ["1m40s", "within 2m target"],
        "ttr": ["2m10s"],
    }.items():
        start = dom.index(f'id="{element_id}"')
        block = dom[start : start + 800]
        for figure in figures:
            assert figure in block, f"{figure!r} not in #{element_id}"
    assert dom.count("<svg") == 2  # the run chart and the trend chart, inline
    assert "425 of 1,360" in dom and "Compared with earlier runs" in dom
