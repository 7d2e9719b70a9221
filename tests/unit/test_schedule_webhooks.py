"""Webhooks that fail in every way a real server (or a URL) can: the daemon keeps its later slots.

Real loopback servers stand for the broken endpoints - one answers garbage
instead of HTTP, one closes the connection, one accepts and never answers -
and two URLs pass the schedule's pattern but not ``urllib``. Each carries a
Slack-style token in its path, which must never reach the daemon's log.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from chaosrunner.schedule.daemon import RunOutcome, ScheduleDaemon
from chaosrunner.schedule.loader import load_schedule
from chaosrunner.schedule.models import Webhook, WebhookEvent
from chaosrunner.schedule.notify import describe_failure, notify
from tests.unit.test_schedule import MONDAY, FakeClock, FakeExecutor, drive, write

pytestmark = pytest.mark.unit

TOKEN = "SEKRETtok3nXYZ"
SLACK_PATH = f"/services/T0CHAOS/B0HOOKS/{TOKEN}"


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))


class RawServer:
    """A loopback TCP server that reads a request and then misbehaves as told."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.closed = threading.Event()
        if behaviour != "hang":  # a hanging server never accepts: the kernel's backlog completes the connect
            threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{SLACK_PATH}?token={TOKEN}"

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                conn.recv(65536)
                if self.behaviour == "garbage":
                    conn.sendall(b"\x00\xffnot http at all\r\n\r\n")
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


@pytest.fixture
def servers() -> Iterator[dict[str, RawServer]]:
    made = {name: RawServer(name) for name in ("garbage", "close", "hang")}
    yield made
    for server in made.values():
        server.close()


def broken_urls(servers: dict[str, RawServer]) -> list[str]:
    return [
        servers["garbage"].url,
        servers["close"].url,
        servers["hang"].url,
        f"http://127.0.0.1:99999999{SLACK_PATH}",  # passes the pattern; no such port
        f"http://127.0.0.1:9{SLACK_PATH}\x01",  # a control character: http.client refuses the URL
    ]


def test_no_webhook_failure_stops_the_daemon_and_no_token_is_logged(
    tmp_path: Path, servers: dict[str, RawServer]
) -> None:
    hooks = [{"url": url, "format": "slack"} for url in broken_urls(servers)]
    path = write(tmp_path, defaults={"webhooks": hooks})
    clock = FakeClock(MONDAY)
    execute = FakeExecutor(
        clock, [RunOutcome("r1", "aborted", 1, "aborted"), RunOutcome("r2", "completed", 0, "")]
    )
    lines: list[str] = []
    # 3 s, not 1: on a loaded 2-core machine the garbage server must get to answer within it.
    daemon = ScheduleDaemon(load_schedule(path), execute, clock=clock, log=lines.append, webhook_timeout=3.0)
    drive(daemon, MONDAY + timedelta(hours=2, minutes=1), clock)

    assert len(execute.calls) == 2, lines  # the 01:00 and the 02:00 slots both ran
    assert [r.outcome for r in daemon.history.records()] == ["run", "run"]
    failures = [line for line in lines if "webhook failed" in line]
    # r1 aborted: start, abort and finish; r2: start and finish - five hooks each time.
    assert len(failures) == 5 * 5, lines
    assert all("/[redacted]" in line or "[redacted]:" in line for line in failures), failures
    assert any("no answer within 3s" in line for line in failures), failures
    assert any("BadStatusLine" in line for line in failures), failures
    log = "\n".join(lines)
    assert TOKEN not in log and "T0CHAOS" not in log and "B0HOOKS" not in log, log


def test_notify_returns_within_its_timeout_while_a_server_hangs(servers: dict[str, RawServer]) -> None:
    hook = Webhook(url=servers["hang"].url)
    started = time.monotonic()
    errors = notify([hook], WebhookEvent.FINISH, {"entry": "e"}, timeout=1.0)
    assert time.monotonic() - started < 10  # generous: the claim is "bounded", not "fast"
    assert errors == [f"http://127.0.0.1:{servers['hang'].port}/[redacted]: no answer within 1s"]


def test_a_hook_that_works_reports_no_error() -> None:
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/ok"
        assert notify([Webhook(url=url)], WebhookEvent.START, {}, timeout=5.0) == []
    finally:
        server.shutdown()


def test_an_error_that_quotes_the_path_is_scrubbed() -> None:
    import http.client

    url = f"http://h{SLACK_PATH}"
    error = http.client.InvalidURL(
        f"URL can't contain control characters. {SLACK_PATH!r} (found at least ' ')"
    )
    text = describe_failure(error, url)
    assert TOKEN not in text and text.startswith("InvalidURL: URL can't contain control characters.")
    # A spelling the scrubber does not know (the token alone, glued to other text): only the name is kept.
    assert describe_failure(ValueError(f"bad value {TOKEN}x"), url) == "ValueError"
