"""`chaosrunner serve --chat`: two real live gamedays bound to two channels behind one chat endpoint.

Two `chaosrunner run` processes in gameday mode on the real Prometheus, one
Slack app (one signing secret, one bot token) bound to C0ALPHA and C0BRAVO,
its Web API a fake on loopback (``chat.slack.api_url``); one `chaosrunner
serve --chat` with the same variables in its environment. Signed /gameday
commands to each channel land in that run's journal with their author's
display name; a :stopwatch: on a message in C0ALPHA becomes Alpha's note; a
channel without a gameday and a forged signature record nothing; `mitigated`
in each channel ends each run; once they have ended, their channels have no
gameday. A run's own server answers Slack's events URL check too.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from tests.support.fake_slack_web import BOT_TOKEN, FakeSlackWeb

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SECRET = "one-slack-app-for-both-gamedays"
SERVE_LINE = re.compile(r"chaosrunner serve: http://127\.0\.0\.1:(\d+)/#token=")
CHANNELS = {"Alpha gameday": "C0ALPHA", "Bravo gameday": "C0BRAVO"}
NOTED_TS = "1767225600.000100"
PEOPLE = {"UALICE": "Alice Liddell", "UBOB": "Bob Marley", "UCAROL": "Carol Danvers"}


@pytest.fixture
def slack() -> Iterator[FakeSlackWeb]:
    fake = FakeSlackWeb().start()
    for user_id, name in PEOPLE.items():
        fake.person(user_id, name)
    fake.messages["C0ALPHA"] = [{"ts": NOTED_TS, "text": "rolled back checkout to v41"}]
    yield fake
    fake.stop()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if key != "CHAOSRUNNER_TOKEN"}
    return {
        **clean,
        "CHAOSRUNNER_STATE_DIR": str(tmp_path / "state"),
        "PYTHONPATH": str(REPO),
        "GAMEDAY_SLACK_SECRET": SECRET,
        "GAMEDAY_SLACK_BOT": BOT_TOKEN,
    }


def scenario(tmp_path: Path, title: str, rig: dict[str, str]) -> Path:
    path = tmp_path / f"{CHANNELS[title]}.yaml"
    document = {
        "metadata": {"title": title, "owner": "tests", "expected_severity": "P3", "hypothesis": "h"},
        "target": {"prometheus": rig["prometheus"], "pushgateway": rig["pushgateway"]},
        "steady_state": [{"name": "up", "expr": "vector(1)", "comparator": ">=", "threshold": 1}],
        "faults": [{"name": "flag", "kind": "inprocess.flag", "params": {"flag": CHANNELS[title].lower()}}],
        "gameday": {"mode": "gameday", "max_duration": "120s", "check_interval": "200ms"},
        "chat": {
            "slack": {
                "channel": CHANNELS[title],
                "signing_secret_env": "GAMEDAY_SLACK_SECRET",
                "bot_token_env": "GAMEDAY_SLACK_BOT",
                "api_url": rig["slack"],
            }
        },
    }
    path.write_text(yaml.safe_dump(document))
    return path


class Process:
    """A chaosrunner process whose output is read as it comes (a full pipe would stall it)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "chaosrunner", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.popen.stdout, self.popen.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    def wait_for_line(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            if self.popen.poll() is not None and not any(r.is_alive() for r in self._readers):
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in {''.join(self.lines)}")

    def finish(self, timeout: float = 60) -> int:
        code = self.popen.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


@pytest.fixture
def gamedays(
    tmp_path: Path, env: dict[str, str], prometheus_url: str, pushgateway_url: str, slack: FakeSlackWeb
) -> Iterator[dict[str, Process]]:
    rig = {"prometheus": prometheus_url, "pushgateway": pushgateway_url, "slack": slack.api_url}
    started = {
        title: Process(["run", str(scenario(tmp_path, title, rig))], env, tmp_path) for title in CHANNELS
    }
    try:
        for process in started.values():
            process.wait_for_line("injected flag")
        yield started
    finally:
        for process in started.values():
            process.kill()


@pytest.fixture
def serve(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[Process, int]]:
    process = Process(["serve", "--chat"], env, tmp_path)
    try:
        port = int(process.wait_for_line(SERVE_LINE.pattern).group(1))
        yield process, port
    finally:
        process.kill()


def signed_post(
    port: int, path: str, body: bytes, content_type: str, secret: str = SECRET
) -> tuple[int, Any]:
    timestamp = int(time.time())
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {
        "Host": "chat.example.net",  # Slack reaches us through the team's proxy
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={digest}",
    }
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        connection.close()


def slash(port: int, channel: str, text: str, user: str, secret: str = SECRET) -> tuple[int, Any]:
    form = {
        "command": "/gameday",
        "text": text,
        "user_id": "U" + user.upper(),
        "user_name": user,
        "channel_id": channel,
    }
    return signed_post(
        port, "/chat/slack/commands", urlencode(form).encode(), "application/x-www-form-urlencoded", secret
    )


def event(port: int, payload: dict[str, Any]) -> tuple[int, Any]:
    return signed_post(port, "/chat/slack/events", json.dumps(payload).encode(), "application/json")


def journals(state: Path) -> dict[str, list[dict[str, Any]]]:
    by_title = {}
    for folder in (state / "runs").iterdir():
        events = [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()]
        by_title[events[0]["scenario_title"]] = events
    return by_title


def marks(events: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(e["event"], e["value"], e["by"], e["source"]) for e in events if e["type"] == "responder"]


def test_one_chat_endpoint_routes_each_channel_to_its_live_gameday(
    env: dict[str, str], gamedays: dict[str, Process], serve: tuple[Process, int], slack: FakeSlackWeb
) -> None:
    served, port = serve
    state = Path(env["CHAOSRUNNER_STATE_DIR"])
    # Questions record nothing but look their people up: once Slack has answered, the names are
    # cached, so the marks below do not depend on how fast a loaded machine answers within 1.5 s.
    assert slash(port, "C0ALPHA", "status", "alice")[0] == 200
    assert slash(port, "C0BRAVO", "help <@UBOB>", "carol")[0] == 200
    slack.wait_answered("users.info", "user", set(PEOPLE))
    assert slash(port, "C0ALPHA", "sev P2", "alice") == (
        200,
        {"response_type": "ephemeral", "text": "recorded: sev P2 by Alice Liddell"},
    )
    assert (
        slash(port, "C0BRAVO", "ic <@UBOB|bob>", "carol")[1]["text"]
        == "recorded: ic Bob Marley by Carol Danvers"
    )
    assert slash(port, "C0CHARLIE", "sev P1", "dave")[1]["text"] == "no gameday is live in this channel"
    assert slash(port, "C0ALPHA", "sev P1", "mallory", secret="a guess")[0] == 401

    # A :stopwatch: on a message in Alpha's channel: Alpha's note, by the person who reacted.
    reaction = {
        "type": "reaction_added",
        "user": "UCAROL",
        "reaction": "stopwatch",
        "item": {"type": "message", "channel": "C0ALPHA", "ts": NOTED_TS},
        "event_ts": f"{time.time():.6f}",
    }
    assert event(port, {"type": "event_callback", "event": reaction}) == (200, {"ok": "noting"})
    deadline = time.monotonic() + 30
    while len(marks(journals(state)["Alpha gameday"])) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)

    # A run's own server answers Slack's events URL check as well.
    own = gamedays["Bravo gameday"].wait_for_line(r"POST JSON events to http://127\.0\.0\.1:(\d+)")
    assert event(int(own.group(1)), {"type": "url_verification", "challenge": "c-42"}) == (
        200,
        {"challenge": "c-42"},
    )

    assert slash(port, "C0ALPHA", "mitigated", "alice")[1]["text"] == "recorded: mitigated by Alice Liddell"
    assert slash(port, "C0BRAVO", "mitigated", "bob")[1]["text"] == "recorded: mitigated by Bob Marley"
    for title, process in gamedays.items():
        assert process.finish() == 0, "".join(process.lines)
        assert any("the team mitigated" in line for line in process.lines), title

    by_title = journals(state)
    assert marks(by_title["Alpha gameday"]) == [
        ("severity", "P2", "Alice Liddell", "slack"),
        ("note", "rolled back checkout to v41", "Carol Danvers", "slack"),
        ("mitigated", "", "Alice Liddell", "slack"),
    ]
    assert marks(by_title["Bravo gameday"]) == [
        ("ic", "Bob Marley", "Carol Danvers", "slack"),
        ("mitigated", "", "Bob Marley", "slack"),
    ]

    # The runs are over: nothing is live in their channels any more.
    assert slash(port, "C0ALPHA", "note late", "alice")[1]["text"] == "no gameday is live in this channel"
    assert len(marks(journals(state)["Alpha gameday"])) == 3

    served.popen.send_signal(signal.SIGTERM)
    assert served.finish() == 0
    output = "".join(served.lines)
    assert "chat for every live gameday at http://127.0.0.1:" in output
    assert SECRET not in output and BOT_TOKEN not in output and "Traceback" not in output
